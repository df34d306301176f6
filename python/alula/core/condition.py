"""`conditional(...)`: a branch node whose cases each run one node.

The nodes passed to `.then(...)` are created while the conditional is open, so they are traced
into the conditional's own `TraceState` (ids n0, n1, ... across its cases, as flytekit numbers
them); the branch node itself joins the workflow when the last case is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alula.core.errors import WorkflowAuthoringError
from alula.core.protojson import Json
from alula.core.settings import SerializationSettings
from alula.core.trace import (
    Expression,
    Node,
    TraceState,
    branch_var,
    call_site,
    node_json,
    pop,
    push,
    tracing,
)


@dataclass(eq=False)
class Case:
    condition: Expression | None  # None for the else case
    node: Node | None = None  # None when the case fails the workflow
    error: str | None = None


@dataclass(eq=False)
class BranchSpec:
    """The entity of a branch node: its cases in order, the else case last."""

    name: str
    cases: list[Case] = field(default_factory=list)

    def inner_nodes(self) -> list[Node]:
        return [c.node for c in self.cases if c.node is not None]

    def target_json(self, node: Node, settings: SerializationSettings) -> Json:
        def case_json(c: Case) -> Json:
            assert c.condition is not None and c.node is not None
            return {"condition": c.condition.to_json(), "thenNode": node_json(c.node, settings)}

        *cases, last = self.cases
        if_else: Json = {"case": case_json(cases[0])}
        if len(cases) > 1:
            if_else["other"] = [case_json(c) for c in cases[1:]]
        if last.node is not None:
            if_else["elseNode"] = node_json(last.node, settings)
        else:
            if_else["error"] = {"failedNodeId": self.name, "message": last.error}
        return {"branchNode": {"ifElse": if_else}}


class Conditional:
    """Builder of `conditional(name).if_(...).then(...)[.elif_(...).then(...)].else_()...`."""

    def __init__(self, name: str, outer: TraceState, site: str) -> None:
        self.spec = BranchSpec(name)
        self.outer = outer
        self.site = site
        self.inner = TraceState(f"conditional '{name}' (at {site})")
        self._condition: Expression | None = None
        self._expect = "if_"
        push(self.inner)

    def _step(self, step: str) -> None:
        if step not in self._expect.split("|"):
            raise WorkflowAuthoringError(
                f"conditional '{self.spec.name}' (at {self.site}): expected "
                f".{self._expect.replace('|', '() or .')}() next, got .{step}()"
            )

    def if_(self, condition: Expression) -> Conditional:
        self._step("if_")
        return self._case(condition)

    def elif_(self, condition: Expression) -> Conditional:
        self._step("elif_")
        return self._case(condition)

    def _case(self, condition: Expression) -> Conditional:
        if not isinstance(condition, Expression):
            raise WorkflowAuthoringError(
                f"conditional '{self.spec.name}' (at {self.site}): a condition must compare "
                f"promises (x > 0, ok.is_true(), ...), got {condition!r}"
            )
        self._condition = condition
        self._expect = "then"
        return self

    def else_(self) -> Conditional:
        self._step("else_")
        self._condition = None
        self._expect = "then|fail"
        return self

    def then(self, outputs: Any) -> Any:
        self._step("then")
        taken = {id(c.node) for c in self.spec.cases}
        new = [n for n in self.inner.nodes if id(n) not in taken]
        node = getattr(outputs, "node", None)
        if len(new) != 1 or node is not new[0]:
            raise WorkflowAuthoringError(
                f"conditional '{self.spec.name}' (at {self.site}): .then() takes the result "
                f"of exactly one call made inside it, e.g. .then(square(x=x)); got {outputs!r}"
            )
        self.spec.cases.append(Case(self._condition, node))
        return self._after_case()

    def fail(self, message: str) -> Any:
        self._step("fail")
        self.spec.cases.append(Case(None, None, message))
        return self._after_case()

    def _after_case(self) -> Any:
        if self._condition is not None:
            self._expect = "elif_|else_"
            return self
        pop(self.inner)
        return self._finish()

    def _finish(self) -> Any:
        branch = Node(self.spec, f"conditional '{self.spec.name}'", self.site, {})
        branch.metadata = {"name": self.spec.name, "retries": {}}
        seen: set[str] = set()
        for case in self.spec.cases:
            for p in case.condition.promises() if case.condition is not None else []:
                var = branch_var(p)
                if var not in seen:
                    seen.add(var)
                    branch.bindings.append((var, p.binding()))
                    if p.node is not None:
                        branch.add_upstream(p.node)
        branch.bindings.sort()
        inner = self.spec.inner_nodes()
        for n in inner:
            for up in n.upstream:
                if not any(up is i for i in inner):
                    branch.add_upstream(up)
        first = inner[0]
        branch.output_types = dict(first.output_types)
        branch.output_py = dict(first.output_py)
        self.outer.add(branch)
        return branch.outputs()


def conditional(name: str) -> Conditional:
    """Start a branch named `name` in the workflow being traced."""
    state = tracing()
    if state is None:
        raise WorkflowAuthoringError(
            f"conditional('{name}') at {call_site()} is only allowed inside a @workflow"
        )
    return Conditional(name, state, call_site())
