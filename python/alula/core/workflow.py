"""`@workflow`: a function traced once into a graph of nodes."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from alula.core import hooks, redefine
from alula.core.errors import WorkflowAuthoringError
from alula.core.interface import Interface, def_site, from_function, type_name
from alula.core.protojson import Json
from alula.core.resolver import is_interactive_module
from alula.core.settings import SerializationSettings
from alula.core.trace import (
    Node,
    NodeOutputs,
    Promise,
    TraceState,
    add_call_node,
    binding_data,
    call_site,
    node_json,
    trace_into,
    tracing,
    walk_nodes,
)

if TYPE_CHECKING:
    from alula.core.launch_plan import LaunchPlan


class WorkflowFailurePolicy(enum.Enum):
    """What a workflow does when a node fails (flyteidl WorkflowMetadata.OnFailurePolicy)."""

    FAIL_IMMEDIATELY = "FAIL_IMMEDIATELY"
    FAIL_AFTER_EXECUTABLE_NODES_COMPLETE = "FAIL_AFTER_EXECUTABLE_NODES_COMPLETE"


@dataclass
class Traced:
    nodes: list[Node]
    outputs: list[tuple[str, Json]]


class Workflow:
    """A workflow; its function runs once, with promises for inputs, when first needed."""

    def __init__(self, fn: Callable[..., Any], failure_policy: WorkflowFailurePolicy) -> None:
        self.fn = fn
        self.failure_policy = failure_policy
        self.module = fn.__module__
        self.short_name = fn.__name__
        self.name = f"{self.module}.{self.short_name}"
        self.label = f"workflow '{self.short_name}'"
        self.interface: Interface = from_function(fn, self.label)
        self._traced: Traced | None = None
        # The redefinition generation the trace was made under; None: set from outside
        # (a dynamic task's nodes), never traced again.
        self._traced_generation: int | None = None
        self.default_launch_plan: LaunchPlan | None = None
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        redefine.defined(self.module)

    def __repr__(self) -> str:
        return f"<workflow {self.name}>"

    def _repr_html_(self) -> str:
        """Jupyter's display: the interface and the graph of nodes (`alula.display`)."""
        from alula.display import workflow_html

        return workflow_html(self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        state = tracing()
        if state is None:
            if args:
                raise TypeError(
                    f"{self.label} takes keyword arguments only, got {len(args)} positional"
                )
            return hooks.local_runner()(self, **kwargs)
        self.trace()
        metadata: Json = {"name": self.short_name, "retries": {}, "interruptible": False}
        return add_call_node(
            state, self, self.label, self.interface, metadata, args, kwargs, call_site()
        )

    def trace(self) -> Traced:
        """The nodes and output bindings of the workflow, traced on first call."""
        if self._traced is None or self._stale():
            self._traced = self._run_trace()
            self._traced_generation = redefine.generation()
            # Compiled and indexed from the old trace.
            self.__dict__.pop("_local_closure", None)
            self.__dict__.pop("_local_index", None)
        return self._traced

    def __getstate__(self) -> dict[str, Any]:
        """The state pickled (a notebook's workflow that a dynamic task calls travels with the
        task): without the traces, which are caches traced again where it is unpickled, so
        that equal workflows pickle to equal bytes whatever ran here before."""
        state = dict(self.__dict__)
        state.update(_traced=None, _traced_generation=None)
        state.pop("_local_closure", None)
        state.pop("_local_index", None)
        return state

    def _stale(self) -> bool:
        """Whether a notebook task or workflow was (re)defined since this one was traced:
        its nodes may call the replaced one."""
        return (
            self._traced_generation is not None
            and self._traced_generation != redefine.generation()
            and is_interactive_module(self.module)
        )

    @property
    def nodes(self) -> list[Node]:
        return self.trace().nodes

    def _run_trace(self) -> Traced:
        state = TraceState(self.label)
        inputs = {
            n: Promise(None, n, self.interface.literal_type("inputs", n), t)
            for n, t in self.interface.inputs.items()
        }
        with trace_into(state):
            result = self.fn(**inputs)
        return Traced(state.nodes, self._bind_outputs(result))

    def _bind_outputs(self, result: Any) -> list[tuple[str, Json]]:
        declared = self.interface.outputs
        where = f"{self.label} (defined at {def_site(self.fn)})"
        if not declared:
            if result is None or (isinstance(result, NodeOutputs) and not result):
                return []
            raise WorkflowAuthoringError(
                f"{where}: returns a value but declares no outputs; add a return type hint"
            )
        if result is None or (isinstance(result, NodeOutputs) and not result):
            wanted = ", ".join(f"{n} ({type_name(t)})" for n, t in declared.items())
            raise WorkflowAuthoringError(f"{where}: declares outputs {wanted} but returns nothing")
        values = [result] if len(declared) == 1 else result
        if len(declared) > 1 and (not isinstance(values, tuple) or len(values) != len(declared)):
            count = len(values) if isinstance(values, tuple) else 1
            raise WorkflowAuthoringError(
                f"{where}: declares {len(declared)} outputs but returns {count}"
            )
        sink = Node(self, f"outputs of {self.label}", def_site(self.fn), {})
        out = []
        for (name, py_type), value in zip(declared.items(), values, strict=True):
            lt = self.interface.literal_type("outputs", name)
            out.append((name, binding_data(sink, where, name, value, py_type, lt)))
        return out

    def all_nodes(self) -> Iterator[Node]:
        """Every node, including those inside conditionals, depth first."""
        return walk_nodes(self.nodes)

    def template_json(self, settings: SerializationSettings) -> Json:
        """The core.WorkflowTemplate of this workflow."""
        traced = self.trace()
        metadata: Json = {}
        if self.failure_policy is not WorkflowFailurePolicy.FAIL_IMMEDIATELY:
            metadata["onFailure"] = self.failure_policy.value
        template: Json = {
            "id": settings.identifier("WORKFLOW", self.name),
            "metadata": metadata,
            "interface": self.interface.to_json(),
            "nodes": [node_json(n, settings) for n in traced.nodes],
            "outputs": [{"var": v, "binding": b} for v, b in traced.outputs],
            "metadataDefaults": {},
        }
        return template

    def target_json(self, node: Node, settings: SerializationSettings) -> Json:
        return {"workflowNode": {"subWorkflowRef": settings.identifier("WORKFLOW", self.name)}}


def workflow(
    _fn: Callable[..., Any] | None = None,
    *,
    failure_policy: WorkflowFailurePolicy = WorkflowFailurePolicy.FAIL_IMMEDIATELY,
) -> Any:
    """Declare a workflow; usable bare (`@workflow`) or with options."""

    def wrap(fn: Callable[..., Any]) -> Workflow:
        return Workflow(fn, failure_policy)

    return wrap(_fn) if _fn is not None else wrap
