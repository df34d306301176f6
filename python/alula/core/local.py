"""Local execution: the Rust engine runs the workflow; Python runs only the task bodies.

A workflow is compiled once (the same closure a remote run uses) and handed to
`alula._bridge.run_local` with the inputs. The engine calls back for each task
attempt; values of fixed-form types (int, float, str, bool, None and lists / dicts of them)
are converted in Rust, everything else through the type engine.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from collections.abc import Callable, Iterator
from typing import Any

from alula import _bridge
from alula._bridge import LocalRunFailure, LocalRunRequest, ResolvedTask
from alula.core import hooks
from alula.core.errors import WorkflowAuthoringError
from alula.core.launch_plan import LaunchPlan
from alula.core.map_task import MapTask
from alula.core.protojson import Json
from alula.core.settings import SerializationSettings
from alula.core.task import PythonFunctionTask
from alula.core.trace import Node, TraceState, node_json, trace_into, walk_nodes
from alula.core.workflow import Traced, Workflow, WorkflowFailurePolicy
from alula.errors import AlulaError

LOCAL_SETTINGS = SerializationSettings("local", "development", "local", "local")
_NATIVE = {int: "int", float: "float", str: "str", bool: "bool", type(None): "none"}


class TaskExecutionError(AlulaError, RuntimeError):
    """A task of a locally run workflow failed (after its retries)."""

    def __init__(self, workflow: str, node_id: str, site: str, attempt: int, message: str) -> None:
        self.node_id = node_id
        self.attempt = attempt
        where = f" called at {site}" if site else ""
        super().__init__(
            f"workflow '{workflow}' failed: node {node_id}{where} (attempt {attempt}):\n{message}"
        )


def value_kind(py_type: Any) -> Any:
    """How the Rust runner converts values of `py_type` (see rust/py/src/convert.rs)."""
    if py_type in _NATIVE:
        return _NATIVE[py_type]
    origin, args = typing.get_origin(py_type), typing.get_args(py_type)
    if origin is list and len(args) == 1 and args[0] in _NATIVE:
        return ("list", value_kind(args[0]))
    if origin is dict and len(args) == 2 and args[0] is str and args[1] in _NATIVE:
        return ("dict", value_kind(args[1]))
    if isinstance(py_type, type) and dataclasses.is_dataclass(py_type):
        return _dataclass_kind(py_type)
    from alula.types import TypeEngine

    transformer = TypeEngine.get_transformer(py_type)
    expected = TypeEngine.to_literal_type(py_type)

    def to_python(text: str) -> Any:
        return transformer.to_python_value(json.loads(text), py_type)

    def to_literal(value: Any) -> str:
        return json.dumps(transformer.to_literal(value, py_type, expected))

    return ("py", to_python, to_literal)


def _dataclass_kind(cls: type) -> Any:
    """Dataclasses travel as msgpack bytes, exactly as the type engine writes them, without
    the JSON detour of other types."""
    from alula.types.plain import from_plain, to_plain
    from alula.types.transformer import MSGPACK_TAG, msgpack, type_mismatch

    packer = msgpack()

    def loads(data: bytes) -> Any:
        return from_plain(packer.unpackb(data, raw=False, strict_map_key=False), cls)

    def dumps(value: Any) -> bytes:
        if not isinstance(value, cls):
            raise type_mismatch(cls, value)
        packed: bytes = packer.packb(to_plain(value, cls), use_bin_type=True)
        return packed

    return ("binary", MSGPACK_TAG, loads, dumps)


def _kinds(names: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(n, value_kind(t)) for n, t in names.items()]


def _entities(wf: Workflow) -> Iterator[Any]:
    """Every entity the workflow (and its subworkflows) calls."""
    seen: set[int] = set()
    todo = [wf]
    while todo:
        for node in walk_nodes(todo.pop().nodes):
            e = node.entity
            if id(e) in seen:
                continue
            seen.add(id(e))
            yield e
            if isinstance(e, Workflow):
                todo.append(e)


@dataclasses.dataclass(frozen=True)
class _Index:
    """What a local run looks up in its workflow: made once per trace of the workflow (a
    walk of every node), not once per run."""

    tasks: dict[str, PythonFunctionTask | MapTask]
    launch_plans: dict[str, LaunchPlan]
    sites: dict[str, str]
    signal_types: dict[str, Any]
    # How the runner calls each plain task (in this process, not dynamic), made on first use.
    resolved: dict[str, ResolvedTask]


def _index(wf: Workflow) -> _Index:
    # The trace is the cache key: a redefinition (a notebook) traces again, a new list.
    nodes = wf.nodes
    cached: tuple[list[Node], _Index] | None = wf.__dict__.get("_local_index")
    if cached is not None and cached[0] is nodes:
        return cached[1]
    index = _Index({}, {}, {}, {}, {})
    for e in _entities(wf):
        if isinstance(e, (PythonFunctionTask, MapTask)):
            index.tasks[e.name] = e
        elif isinstance(e, LaunchPlan):
            index.launch_plans[e.name] = e
    for node in walk_nodes(nodes):
        index.sites.setdefault(node.id, node.site)
        if "o0" in node.output_py:
            index.signal_types[node.label] = node.output_py["o0"]
    wf.__dict__["_local_index"] = (nodes, index)
    return index


class _Run:
    """The callbacks of one local run."""

    def __init__(self, wf: Workflow, signals: dict[str, Any], pool: Any = None) -> None:
        self.wf = wf
        self.signals = signals
        # A process pool runs task bodies for CPU-bound Python (see `run(processes=True)`).
        self.pool = pool
        self.index = _index(wf)
        self.sites = self.index.sites
        self.signal_types = self.index.signal_types
        # What dynamic task bodies call besides the workflow's own entities: kept apart, so
        # the cached index stays as traced.
        self.dynamic_tasks: dict[str, PythonFunctionTask | MapTask] = {}
        self.dynamic_launch_plans: dict[str, LaunchPlan] = {}

    def resolve(self, name: str) -> ResolvedTask:
        """How the runner calls the task `name`."""
        resolved = self.index.resolved.get(name)
        if resolved is not None and self.pool is None:
            return resolved
        task = self.index.tasks.get(name) or self.dynamic_tasks.get(name)
        if task is None:
            raise WorkflowAuthoringError(f"task '{name}' is not part of this local run")
        if isinstance(task, MapTask):
            task = task.task
        inputs = _kinds(task.interface.inputs)
        if task.dynamic:
            return ResolvedTask(
                self._dynamic_body(task), inputs, [], dynamic=True, positional=False
            )
        outputs = _kinds(task.interface.outputs)
        if self.pool is not None:
            body = self._in_process_pool(task)
            return ResolvedTask(body, inputs, outputs, dynamic=False, positional=False)
        positional = _positional(task.fn, list(task.interface.inputs))
        resolved = ResolvedTask(task.fn, inputs, outputs, dynamic=False, positional=positional)
        if name in self.index.tasks:
            self.index.resolved[name] = resolved
        return resolved

    def _in_process_pool(self, task: PythonFunctionTask) -> Callable[..., Any]:
        pool = self.pool

        def body(**values: Any) -> Any:
            # The worker imports the task's module and calls the function there; only the
            # values cross, pickled.
            return pool.submit(_call_in_worker, task.module, task.short_name, values).result()

        return body

    def _dynamic_body(self, task: PythonFunctionTask) -> Callable[..., bytes]:
        def body(**values: Any) -> bytes:
            spec = dynamic_spec(task, values)
            for e in _entities(_traced_holder(task, spec.nodes)):
                if isinstance(e, (PythonFunctionTask, MapTask)):
                    if e.name not in self.index.tasks:
                        self.dynamic_tasks.setdefault(e.name, e)
                elif isinstance(e, LaunchPlan):  # a launch-plan node the body created
                    if e.name not in self.index.launch_plans:
                        self.dynamic_launch_plans.setdefault(e.name, e)
            return _bridge.message_from_json("flyteidl.core.DynamicJobSpec", json.dumps(spec.json))

        return body

    def run_child(self, name: str, inputs: bytes) -> bytes:
        lp = self.index.launch_plans.get(name) or self.dynamic_launch_plans[name]
        # As admin does at CreateExecution: defaults under the bound values, fixed inputs over.
        values = {**lp.default_inputs, **_decode(inputs, lp.workflow.interface.inputs)}
        outputs = run(lp.workflow, signals=self.signals, **{**values, **lp.fixed_inputs})
        return _encode(_as_dict(lp.workflow, outputs), lp.workflow.interface.outputs)

    def answer_signal(self, signal_id: str, approve: bool) -> bytes | None:
        if signal_id not in self.signals:
            return None
        value = self.signals[signal_id]
        py_type = bool if approve else self.signal_types.get(f"gate '{signal_id}'", type(value))
        from alula.types import TypeEngine

        literal = TypeEngine.to_literal(value, py_type)
        return _bridge.message_from_json("flyteidl.core.Literal", json.dumps(literal))


def _call_in_worker(module: str, name: str, values: dict[str, Any]) -> Any:
    """Runs a task's function in a process-pool worker."""
    import importlib

    task = getattr(importlib.import_module(module), name)
    return task.fn(**values)


def _positional(fn: Callable[..., Any], names: list[str]) -> bool:
    """Whether `names` are exactly `fn`'s positional parameters, in order."""
    code = getattr(fn, "__code__", None)
    if code is None or code.co_kwonlyargcount:
        return False
    return list(code.co_varnames[: code.co_argcount]) == names


class _DynamicSpec(typing.NamedTuple):
    nodes: list[Node]
    json: Json


def dynamic_spec(
    task: PythonFunctionTask,
    values: dict[str, Any],
    settings: SerializationSettings = LOCAL_SETTINGS,
) -> _DynamicSpec:
    """Runs a dynamic task's body with real values, tracing the nodes it creates; entity ids
    use `settings` (the registration's, in a container)."""
    state = TraceState(f"dynamic task '{task.short_name}'")
    with trace_into(state):
        result = task.fn(**values)
    shim = Workflow(task.fn, WorkflowFailurePolicy.FAIL_IMMEDIATELY)
    outputs = shim._bind_outputs(result)
    holder = _traced_holder(task, state.nodes)
    tasks: dict[str, Json] = {}
    subworkflows: dict[str, Json] = {}
    for e in _entities(holder):
        if isinstance(e, (PythonFunctionTask, MapTask)):
            tasks[e.name] = e.template_json(settings, "local")
        elif isinstance(e, Workflow):
            subworkflows[e.name] = e.template_json(settings)
    spec: Json = {
        "nodes": [node_json(n, settings) for n in state.nodes],
        "outputs": [{"var": v, "binding": b} for v, b in outputs],
        "tasks": list(tasks.values()),
        "subworkflows": list(subworkflows.values()),
    }
    return _DynamicSpec(state.nodes, spec)


def _traced_holder(task: PythonFunctionTask, nodes: list[Node]) -> Workflow:
    """A workflow object whose nodes are `nodes`, to walk what they call."""
    holder = Workflow(task.fn, WorkflowFailurePolicy.FAIL_IMMEDIATELY)
    holder._traced = Traced(nodes, [])
    return holder


def _encode(values: dict[str, Any], types_: dict[str, Any]) -> bytes:
    return _bridge.encode_values(values, _kinds(types_))


def _decode(data: bytes, types_: dict[str, Any]) -> dict[str, Any]:
    return _bridge.decode_values(data, _kinds(types_))


def _as_dict(wf: Workflow, outputs: Any) -> dict[str, Any]:
    names = list(wf.interface.outputs)
    if not names:
        return {}
    if len(names) == 1:
        return {names[0]: outputs}
    return dict(zip(names, outputs, strict=True))


def _closure(wf: Workflow) -> bytes:
    cached: bytes | None = getattr(wf, "_local_closure", None)
    if cached is None:
        from alula.core.serialize import compile_spec, subworkflows

        spec: Json = {"template": wf.template_json(LOCAL_SETTINGS)}
        subs = [s.template_json(LOCAL_SETTINGS) for s in subworkflows(wf)]
        if subs:
            spec["subWorkflows"] = subs
        cached = compile_spec(wf, spec, LOCAL_SETTINGS)
        wf._local_closure = cached  # type: ignore[attr-defined]
    return cached


def default_parallelism() -> int:
    return int(os.environ.get("ALULA_PARALLELISM", "1"))


def cache_dir() -> str:
    """Where local runs keep cached task outputs (`ALULA_CACHE_DIR`, else the user's cache)."""
    explicit = os.environ.get("ALULA_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "alula", "local-cache")


def clear_cache() -> int:
    """Deletes every locally cached task output; returns how many entries there were."""
    import shutil

    root = cache_dir()
    if not os.path.isdir(root):
        return 0
    count = sum(len(files) for _, _, files in os.walk(root))
    shutil.rmtree(root)
    return count


def run(
    wf: Workflow,
    *,
    signals: dict[str, Any] | None = None,
    parallelism: int | None = None,
    overwrite_cache: bool = False,
    processes: bool = False,
    **inputs: Any,
) -> Any:
    """Runs `wf` locally with keyword inputs; returns its output(s) like calling the function.

    `parallelism` task attempts run at once: inline on this thread when 1, else on threads;
    with `processes`, task bodies run in that many worker processes (for CPU-bound Python; the
    tasks must be defined at module level, and values are pickled across).
    """
    interface = wf.interface
    unknown = set(inputs) - set(interface.inputs)
    if unknown:
        raise TypeError(f"{wf.label} got unexpected inputs {sorted(unknown)}")
    values = {**interface.defaults, **inputs}
    missing = [n for n in interface.inputs if n not in values]
    if missing:
        raise TypeError(f"{wf.label} is missing inputs {missing}")
    if processes and parallelism is None:
        workers = os.cpu_count() or 2
    else:
        workers = parallelism or default_parallelism()
    pool = _process_pool(workers) if processes else None
    callbacks = _Run(wf, signals or {}, pool)
    try:
        outputs = _run_native(wf, values, callbacks, workers, overwrite_cache)
    finally:
        if pool is not None:
            pool.shutdown()
    if isinstance(outputs, LocalRunFailure):
        failure = outputs
        site = callbacks.sites.get(failure.node_id, "")
        error = TaskExecutionError(
            wf.short_name, failure.node_id, site, failure.attempt, failure.message
        )
        if failure.exception is not None:
            raise error from failure.exception
        raise error
    names = list(interface.outputs)
    if not names:
        return None
    if len(names) == 1:
        return outputs[names[0]]
    result = tuple(outputs[n] for n in names)
    return interface.output_tuple(*result) if interface.output_tuple else result


def _run_native(
    wf: Workflow, values: dict[str, Any], callbacks: _Run, workers: int, overwrite_cache: bool
) -> dict[str, Any] | LocalRunFailure:
    interface = wf.interface
    request = LocalRunRequest(
        closure=_closure(wf),
        inputs=values,
        input_kinds=_kinds(interface.inputs),
        output_kinds=_kinds(interface.outputs),
        resolve_task=callbacks.resolve,
        run_child=callbacks.run_child,
        answer_signal=callbacks.answer_signal,
        max_parallelism=workers,
        cache_dir=cache_dir(),
        overwrite_cache=overwrite_cache,
    )
    return _bridge.run_local(request)


def _process_pool(workers: int) -> Any:
    """Workers started fresh ("spawn"): forking a process whose Rust threads hold locks is
    not safe."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max(workers, 2), mp_context=multiprocessing.get_context("spawn"))


# Calling a workflow outside a trace reaches `run` through this hook (see alula.core.hooks).
hooks.set_local_runner(run)

__all__ = ["TaskExecutionError", "run", "value_kind"]
