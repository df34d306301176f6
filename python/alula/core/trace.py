"""Tracing a workflow function into a graph of nodes.

Calling a task (or workflow, launch plan, gate) while a workflow is being traced adds a node to
the innermost `TraceState` and returns promises of its outputs. Each node remembers the
`file:line` of its call, so every later error (ours or the compiler's) can point there.
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
import functools
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from alula.core.errors import InputTypeError, UnsupportedTypeError, WorkflowAuthoringError
from alula.core.interface import Interface, castable, type_name
from alula.core.protojson import Json, duration_json, literal_to_binding, primitive_json
from alula.core.resources import Resources, resources_json

if TYPE_CHECKING:
    from typing_extensions import Self

    from alula.core.settings import SerializationSettings


class TraceState:
    """The nodes of one workflow (or of one conditional's cases) in call order."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.nodes: list[Node] = []

    def add(self, node: Node) -> Node:
        node.id = f"n{len(self.nodes)}"
        self.nodes.append(node)
        return node


# The states being traced into, innermost last. Per context (so per thread): the local runner
# traces dynamic tasks on its worker threads at the same time, and a shared stack handed one
# task's nodes to the other's trace. Tuples, so that a context never sees another's changes.
_STACK: contextvars.ContextVar[tuple[TraceState, ...]] = contextvars.ContextVar(
    "alula_trace_stack", default=()
)


def tracing() -> TraceState | None:
    stack = _STACK.get()
    return stack[-1] if stack else None


def push(state: TraceState) -> None:
    """Open `state` (a conditional's cases) inside the current trace; it stays open past the
    call, until `pop`, and `trace_into` closes it if its trace ends first."""
    _STACK.set((*_STACK.get(), state))


def pop(state: TraceState) -> None:
    stack = _STACK.get()
    if not stack or stack[-1] is not state:
        open_ = ", ".join(s.owner for s in stack) or "nothing"
        raise WorkflowAuthoringError(f"{state.owner} is closed while {open_} is being traced")
    _STACK.set(stack[:-1])


@contextlib.contextmanager
def trace_into(state: TraceState) -> Iterator[TraceState]:
    """Trace what runs inside into `state` (a workflow's or a dynamic task's body).

    Whatever happens inside, the stack is the caller's again afterwards: an exception raised
    while a conditional inside was open (a subworkflow's, a branch's) propagates as itself
    instead of leaving states behind for every later trace to trip over. A body that returns
    with a conditional still open never gave its last case: that is the author's error.
    """
    outer = _STACK.get()
    token = _STACK.set((*outer, state))
    ok = False
    try:
        yield state
        ok = True
    finally:
        left_open = _STACK.get()[len(outer) + 1 :] if ok else ()
        _STACK.reset(token)
    if left_open:
        raise WorkflowAuthoringError(
            f"{left_open[0].owner} has no last case: finish it with "
            f".else_().then(...) or .else_().fail(...) inside {state.owner}"
        )


def call_site(depth: int = 2) -> str:
    """`file:line` of the user's call, `depth` frames above the caller of this function."""
    frame = sys._getframe(depth)
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


@dataclass(eq=False)
class Node:
    entity: Any
    label: str  # the entity's name in messages: "task 'square'"
    site: str
    metadata: Json
    output_types: dict[str, Json] = field(default_factory=dict)
    output_py: dict[str, Any] = field(default_factory=dict)
    bindings: list[tuple[str, Json]] = field(default_factory=list)
    upstream: list[Node] = field(default_factory=list)
    overrides: Json = field(default_factory=dict)
    id: str = ""

    def describe(self) -> str:
        return f"{self.id} ({self.label} at {self.site})"

    def depends_on(self, other: Node) -> bool:
        seen: set[int] = set()
        todo = list(self.upstream)
        while todo:
            n = todo.pop()
            if n is other:
                return True
            if id(n) not in seen:
                seen.add(id(n))
                todo.extend(n.upstream)
        return False

    def add_upstream(self, other: Node) -> None:
        if other is not self and other not in self.upstream:
            self.upstream.append(other)

    def outputs(self) -> Any:
        """What a call returns: one promise, a tuple of promises, or `NodeOutputs` of none."""
        promises = [
            Promise(self, v, self.output_types[v], self.output_py[v]) for v in self.output_types
        ]
        if len(promises) == 1:
            return promises[0]
        return _outputs_class(tuple(self.output_types))(self, promises)

    _OVERRIDES = frozenset(
        "name requests limits retries timeout interruptible cache cache_version "
        "cache_serialize container_image".split()
    )

    def apply_overrides(self, site: str, **kw: Any) -> None:
        unknown = sorted(set(kw) - self._OVERRIDES)
        if unknown:
            raise WorkflowAuthoringError(
                f"{self.label} ({site}): with_overrides got unknown argument(s) {unknown}; "
                f"it accepts {sorted(self._OVERRIDES)}"
            )
        md = self.metadata
        if "name" in kw:
            md["name"] = kw["name"]
        if "timeout" in kw:
            md["timeout"] = duration_json(kw["timeout"])
        if "retries" in kw:
            md["retries"] = {"retries": kw["retries"]} if kw["retries"] else {}
        for arg, key in [
            ("interruptible", "interruptible"),
            ("cache", "cacheable"),
            ("cache_version", "cacheVersion"),
            ("cache_serialize", "cacheSerializable"),
        ]:
            if arg in kw:
                md[key] = kw[arg]
        if "requests" in kw or "limits" in kw:
            req: Resources | None = kw.get("requests")
            lim: Resources | None = kw.get("limits")
            self.overrides["resources"] = resources_json(req, lim, for_container=False)
        if "container_image" in kw:
            self.overrides["containerImage"] = kw["container_image"]


def order(before: Any, after: Any, site: str) -> Any:
    """`before >> after`: `after` runs once `before` is done."""
    a, b = _node_of(before, site), _node_of(after, site)
    if a is b or a.depends_on(b):
        raise WorkflowAuthoringError(
            f"`>>` at {site} makes a cycle: {b.describe()} must run before "
            f"{a.describe()}, so {a.id} cannot also run before it"
        )
    b.add_upstream(a)
    return after


def _node_of(value: Any, site: str) -> Node:
    node = getattr(value, "node", None)
    if not isinstance(node, Node):
        raise WorkflowAuthoringError(
            f"`>>` at {site}: {value!r} is not the output of a node in this workflow"
        )
    return node


class Promise:
    """A future value inside a traced workflow: an output of a node, or a workflow input."""

    __slots__ = ("node", "var", "literal_type", "py_type")

    def __init__(self, node: Node | None, var: str, literal_type: Json, py_type: Any) -> None:
        self.node = node
        self.var = var
        self.literal_type = literal_type
        self.py_type = py_type

    def describe(self) -> str:
        if self.node is None:
            return f"workflow input '{self.var}'"
        return f"output '{self.var}' of {self.node.describe()}"

    def binding(self) -> Json:
        if self.node is None:
            return {"promise": {"var": self.var}}
        return {"promise": {"nodeId": self.node.id, "var": self.var}}

    def with_overrides(self, **kw: Any) -> Promise:
        _node_of(self, call_site()).apply_overrides(call_site(), **kw)
        return self

    def __rshift__(self, other: Any) -> Any:
        return order(self, other, call_site())

    def __bool__(self) -> bool:
        raise WorkflowAuthoringError(
            f"{self.describe()} is not known while the workflow is traced, so it cannot be "
            f"used in `if`/`and`/`or`/`not` (at {call_site()}); use alula.conditional()"
        )

    __hash__ = object.__hash__

    def __eq__(self, other: object) -> Any:
        return compare(self, "EQ", other)

    def __ne__(self, other: object) -> Any:
        return compare(self, "NEQ", other)

    def __gt__(self, other: object) -> Any:
        return compare(self, "GT", other)

    def __ge__(self, other: object) -> Any:
        return compare(self, "GTE", other)

    def __lt__(self, other: object) -> Any:
        return compare(self, "LT", other)

    def __le__(self, other: object) -> Any:
        return compare(self, "LTE", other)

    def is_true(self) -> Any:
        return self.__eq__(True)

    def is_false(self) -> Any:
        return self.__eq__(False)

    def is_none(self) -> Any:
        return self.__eq__(None)


class NodeOutputs(tuple[Promise, ...]):
    """The outputs of a node with zero or several outputs; named outputs read as attributes."""

    node: Node

    def __new__(cls, node: Node, promises: list[Promise]) -> Self:
        self = super().__new__(cls, promises)
        self.node = node
        return self

    def with_overrides(self, **kw: Any) -> NodeOutputs:
        self.node.apply_overrides(call_site(), **kw)
        return self

    def __rshift__(self, other: Any) -> Any:
        return order(self, other, call_site())


@functools.cache
def _outputs_class(names: tuple[str, ...]) -> type[NodeOutputs]:
    """A NodeOutputs subclass whose outputs read as attributes, even `count` and `index`."""

    def getter(i: int) -> property:
        return property(lambda self: self[i])

    return type("NodeOutputs", (NodeOutputs,), {n: getter(i) for i, n in enumerate(names)})


def bind_inputs(
    node: Node, interface: Interface, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Bind call arguments to the entity's inputs, checking names and types at the call site."""
    where = f"{node.label} (called at {node.site})"
    declared = ", ".join(f"{n}: {type_name(t)}" for n, t in interface.inputs.items())
    if args:
        given = ", ".join(_value_type(a) for a in args)
        raise WorkflowAuthoringError(
            f"{where}: inside a workflow, pass inputs by keyword (its inputs are "
            f"{declared or 'none'}); got {len(args)} positional argument(s) of type {given}"
        )
    unknown = [k for k in kwargs if k not in interface.inputs]
    if unknown:
        name = unknown[0]
        raise WorkflowAuthoringError(
            f"{where}: unexpected input '{name}' ({_value_type(kwargs[name])}); "
            f"its inputs are {declared or 'none'}"
        )
    for name, py_type in interface.inputs.items():
        if name in kwargs:
            value = kwargs[name]
        elif name in interface.defaults:
            value = interface.defaults[name]
        else:
            raise WorkflowAuthoringError(
                f"{where}: input '{name}' ({type_name(py_type)}) is missing and has no default"
            )
        expected = interface.literal_type("inputs", name)
        node.bindings.append((name, binding_data(node, where, name, value, py_type, expected)))
    node.bindings.sort()  # flytekit writes bindings sorted by input name


def binding_data(
    node: Node, where: str, name: str, value: Any, py_type: Any, expected: Json
) -> Json:
    if isinstance(value, Promise):
        if not castable(value.literal_type, expected):
            raise InputTypeError(
                f"{where}: input '{name}' expects {type_name(py_type)} but gets "
                f"{type_name(value.py_type)} from {value.describe()}"
            )
        if value.node is not None:
            node.add_upstream(value.node)
        return value.binding()
    if isinstance(value, NodeOutputs):
        raise InputTypeError(
            f"{where}: input '{name}' expects {type_name(py_type)} but gets the "
            f"{len(value)} outputs of {value.node.describe()}; pick one of them"
        )
    if _holds_promise(value):
        import typing

        args = typing.get_args(py_type)
        if isinstance(value, list) and "collectionType" in expected:
            item_type, item_lt = (args[0] if args else Any), expected["collectionType"]
            items = [binding_data(node, where, name, v, item_type, item_lt) for v in value]
            return {"collection": {"bindings": items}}
        if isinstance(value, dict) and "mapValueType" in expected:
            item_type, item_lt = (args[1] if len(args) > 1 else Any), expected["mapValueType"]
            entries = {
                k: binding_data(node, where, name, v, item_type, item_lt) for k, v in value.items()
            }
            return {"map": {"bindings": entries}}
        raise InputTypeError(
            f"{where}: input '{name}' expects {type_name(py_type)} but gets {value!r}"
        )
    from alula.types import TypeEngine

    try:
        literal = TypeEngine.to_literal(value, py_type)
    except Exception as e:
        raise InputTypeError(
            f"{where}: input '{name}' expects {type_name(py_type)} but gets "
            f"{type(value).__name__} value {value!r} ({e})"
        ) from e
    return literal_to_binding(literal)


def _value_type(value: Any) -> str:
    if isinstance(value, Promise):
        return type_name(value.py_type)
    return type(value).__name__


def _holds_promise(value: Any) -> bool:
    if isinstance(value, Promise):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_promise(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_promise(v) for v in value.values())
    return False


def timeout_json(timeout: timedelta | int | None) -> Json:
    return {"timeout": duration_json(timeout)} if timeout else {}


def add_call_node(
    state: TraceState,
    entity: Any,
    label: str,
    interface: Interface,
    metadata: Json,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    site: str,
) -> Any:
    """Add a node calling `entity` with the given arguments; returns its output promises."""
    node = Node(entity, label, site, metadata)
    try:
        bind_inputs(node, interface, args, kwargs)
        for var, py_type in interface.outputs.items():
            node.output_types[var] = interface.literal_type("outputs", var)
            node.output_py[var] = py_type
    except UnsupportedTypeError as e:
        raise UnsupportedTypeError(f"{e}; called at {site}") from None
    state.add(node)
    return node.outputs()


# --- conditions: what comparing promises builds (used by alula.core.condition) ---


def _operand_json(value: Any) -> Json:
    if isinstance(value, Promise):
        return {"var": branch_var(value)}
    if value is None:
        return {"scalar": {"noneType": {}}}
    primitive = primitive_json(value)
    if primitive is not None:
        return {"primitive": primitive}
    from alula.types import TypeEngine

    return {"scalar": TypeEngine.to_literal(value, type(value))["scalar"]}


def branch_var(p: Promise) -> str:
    """How a condition names a promise: "<node id>.<var>" (an empty id for workflow inputs)."""
    return f"{p.node.id if p.node else ''}.{p.var}"


class Expression(abc.ABC):
    def __and__(self, other: Expression) -> Conjunction:
        return Conjunction("AND", self, other)

    def __or__(self, other: Expression) -> Conjunction:
        return Conjunction("OR", self, other)

    def __bool__(self) -> bool:
        raise WorkflowAuthoringError(
            f"conditions cannot use Python's `and`/`or`/`not` (at {call_site()}); "
            "combine them with `&` and `|`"
        )

    @abc.abstractmethod
    def promises(self) -> list[Promise]: ...

    @abc.abstractmethod
    def to_json(self) -> Json: ...


class Comparison(Expression):
    # A plain class, not a dataclass: made when this module loads, which every task
    # definition pays for, and a dataclass costs a code generation.
    def __init__(self, op: str, left: Promise, right: Any) -> None:
        self.op = op
        self.left = left
        self.right = right

    def promises(self) -> list[Promise]:
        return [p for p in (self.left, self.right) if isinstance(p, Promise)]

    def to_json(self) -> Json:
        body: Json = {
            "leftValue": _operand_json(self.left),
            "rightValue": _operand_json(self.right),
        }
        if self.op != "EQ":
            body = {"operator": self.op, **body}
        return {"comparison": body}


class Conjunction(Expression):
    def __init__(self, op: str, left: Expression, right: Expression) -> None:
        self.op = op
        self.left = left
        self.right = right

    def promises(self) -> list[Promise]:
        return self.left.promises() + self.right.promises()

    def to_json(self) -> Json:
        body: Json = {
            "leftExpression": self.left.to_json(),
            "rightExpression": self.right.to_json(),
        }
        if self.op != "AND":
            body = {"operator": self.op, **body}
        return {"conjunction": body}


def compare(left: Promise, op: str, right: Any) -> Comparison:
    return Comparison(op, left, right)


# --- the serialized form of traced nodes ---


def walk_nodes(nodes: list[Node]) -> Iterator[Node]:
    for n in nodes:
        yield n
        inner = getattr(n.entity, "inner_nodes", None)
        if inner is not None:
            yield from walk_nodes(inner())


def node_json(node: Node, settings: SerializationSettings) -> Json:
    """The core.Node of a traced node."""
    out: Json = {"id": node.id, "metadata": node.metadata}
    if node.bindings:
        out["inputs"] = [{"var": v, "binding": b} for v, b in node.bindings]
    if node.upstream:
        out["upstreamNodeIds"] = [u.id for u in node.upstream]
    out.update(node.entity.target_json(node, settings))
    return out
