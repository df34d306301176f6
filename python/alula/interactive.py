"""Remote runs of code no worker can import: tasks, workflows and launch plans defined in a
notebook, a REPL, `python -c` (module `__main__`) or any module without a file.

`Remote.execute(entity)` of such an entity registers it on the fly. The code travels by value:
the tasks are cloudpickled (with everything their functions refer to) into one payload, which
goes into a code bundle together with the local modules the payload imports (files next to the
notebook or elsewhere on `sys.path`, outside site-packages). The tasks' templates name
`PickledTaskResolver`, which finds them in that payload where the bundle is unpacked: a warm
worker's folder, like any fast-registered Alula task.

The version is a digest of the bundle (payload and modules) and of the serialized entities, so
re-running an unchanged cell creates nothing: the launch plan of that version is found (in this
client's memory, else with one Get call) and only the execution is created.
"""

from __future__ import annotations

import io
import os
import pickle
import sys
import sysconfig
import types
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cloudpickle  # type: ignore[import-untyped]

from alula.bundle import archive, sources
from alula.core.errors import WorkflowAuthoringError
from alula.core.interface import Interface
from alula.core.launch_plan import LaunchPlan
from alula.core.map_task import MapTask
from alula.core.resolver import PICKLED_PAYLOAD, is_interactive_module
from alula.core.serialize import Entity
from alula.core.task import PythonFunctionTask
from alula.core.workflow import Workflow
from alula.errors import RpcError

if TYPE_CHECKING:
    from alula.remote import Registration, Remote

# How deep the error for an unpicklable task follows what its function refers to.
_BLAME_DEPTH = 4


class NotPicklableError(WorkflowAuthoringError):
    """A notebook task refers to something that cannot travel to a remote worker."""


def module_of(entity: Any) -> str:
    """The module an entity was defined in (a launch plan's is its workflow's)."""
    if isinstance(entity, LaunchPlan):
        return entity.workflow.module
    return str(getattr(entity, "module", ""))


def is_interactive(entity: Any) -> bool:
    """Whether `entity` was defined where no worker can import it from (see the module doc)."""
    return isinstance(entity, (PythonFunctionTask, MapTask, Workflow, LaunchPlan)) and (
        is_interactive_module(module_of(entity))
    )


def _code_names(code: types.CodeType) -> set[str]:
    """Global names a code object and the functions nested in it use."""
    names: set[str] = set()
    todo = [code]
    while todo:
        c = todo.pop()
        names.update(c.co_names)
        todo.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return names


def referenced(fn: Any) -> Iterator[tuple[str, Any]]:
    """The globals and closure variables function `fn` refers to, by name."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return
    scope = getattr(fn, "__globals__", {})
    for name in sorted(_code_names(code)):
        if name in scope:
            yield name, scope[name]
    for name, cell in zip(code.co_freevars, getattr(fn, "__closure__", None) or (), strict=False):
        try:
            yield name, cell.cell_contents
        except ValueError:  # a cell not filled yet
            continue


class _Reach:
    """What an entity needs remotely: the interactive tasks to pickle (including those a
    dynamic task's body refers to and creates only at run time), the launch plans to register,
    and the modules of the other tasks (which a worker imports)."""

    def __init__(self) -> None:
        self.tasks: dict[str, PythonFunctionTask] = {}
        self.launch_plans: dict[str, LaunchPlan] = {}
        self.modules: set[str] = set()
        self._seen: set[int] = set()

    def add(self, root: Any) -> None:
        todo = [root]
        while todo:
            obj = todo.pop()
            if id(obj) in self._seen:
                continue
            self._seen.add(id(obj))
            if isinstance(obj, PythonFunctionTask):
                if self._task(obj):  # what its body uses (a dynamic's, at run time)
                    todo.extend(value for _, value in referenced(obj.fn))
            elif isinstance(obj, MapTask):
                todo.append(obj.task)
            elif isinstance(obj, Workflow):
                todo.extend(node.entity for node in obj.all_nodes())
            elif isinstance(obj, LaunchPlan):
                if is_interactive(obj):
                    self.launch_plans.setdefault(obj.name, obj)
                todo.append(obj.workflow)

    def _task(self, task: PythonFunctionTask) -> bool:
        """Notes `task`; whether it travels pickled."""
        if not is_interactive_module(task.module):
            self.modules.add(task.module)
            return False
        known = self.tasks.setdefault(task.name, task)
        if known is not task:
            raise WorkflowAuthoringError(
                f"two different tasks named '{task.name}' are in use ({known.fn.__qualname__} "
                f"and {task.fn.__qualname__}): re-run the cells that use the old one, or "
                "give one of them another name"
            )
        return True


class _ModuleRecorder(cloudpickle.Pickler):  # type: ignore[misc]
    """A cloudpickler that notes the module of every function, class and module it pickles by
    reference: those a worker imports, so the local ones must go into the bundle."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.modules: set[str] = set()

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.ModuleType):
            self.modules.add(obj.__name__)
        elif isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
            module = getattr(obj, "__module__", None)
            if isinstance(module, str):
                self.modules.add(module)
        return super().reducer_override(obj)


def _type_name(value: Any) -> str:
    kind = type(value)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _blame(fn: Any, path: list[str], depth: int) -> tuple[list[str], Any, Exception] | None:
    """The first thing `fn` refers to (following functions) that cannot be pickled."""
    for name, value in referenced(fn):
        if isinstance(value, types.ModuleType):
            continue
        try:
            cloudpickle.dumps(value)
        except Exception as error:  # noqa: BLE001 - any failure names the culprit
            inner = getattr(value, "fn", value)
            if depth > 0 and isinstance(inner, types.FunctionType):
                deeper = _blame(inner, [*path, name], depth - 1)
                if deeper is not None:
                    return deeper
            return [*path, name], value, error
    return None


def pickle_tasks(tasks: dict[str, PythonFunctionTask]) -> tuple[bytes, set[str]]:
    """The payload of `tasks` (name -> task) and the modules it refers to by reference."""
    buffer = io.BytesIO()
    recorder = _ModuleRecorder(buffer)
    try:
        recorder.dump({"tasks": tasks})
    except Exception as error:
        raise _not_picklable(tasks, error) from error
    return buffer.getvalue(), recorder.modules


def _not_picklable(tasks: dict[str, PythonFunctionTask], error: Exception) -> NotPicklableError:
    for task in tasks.values():
        found = _blame(task.fn, [], _BLAME_DEPTH)
        if found is not None:
            path, value, cause = found
            chain = " → ".join(f"`{p}`" for p in path)
            return NotPicklableError(
                f"task `{task.short_name}` refers to {chain} (a {_type_name(value)}), which "
                f"cannot be pickled to run remotely: {cause}. Create it inside the task, or "
                "move it to a module the task imports"
            )
    return NotPicklableError(
        f"the tasks {sorted(tasks)} cannot be pickled to run remotely: {error}"
    )


def _installed_roots() -> list[str]:
    """Folders whose modules every worker has: the standard library and site-packages."""
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    return [os.path.realpath(r) + os.sep for r in roots]


def local_module_files(modules: set[str]) -> list[tuple[str, bytes]]:
    """The files of the local modules among `modules` (outside the standard library,
    site-packages and alula itself) as bundle members named as they are imported: a package
    goes whole, its top folder with every source below it."""
    installed = _installed_roots()
    members: dict[str, bytes] = {}
    for top in sorted({m.split(".")[0] for m in modules}):
        if top in ("__main__", "alula") or top in sys.builtin_module_names:
            continue
        module = sys.modules.get(top)
        file = getattr(module, "__file__", None)
        if not file:
            continue
        real = os.path.realpath(file)
        if any(real.startswith(root) for root in installed) or "site-packages" in real:
            continue
        if hasattr(module, "__path__"):  # a package: its folder, as fast registration takes it
            folder = Path(real).parent
            for path in sources(folder):
                members[f"{top}/{path.relative_to(folder).as_posix()}"] = path.read_bytes()
        elif real.endswith(".py"):
            members[f"{top}.py"] = Path(real).read_bytes()
    return sorted(members.items())


def code_bundle(tasks: dict[str, PythonFunctionTask], modules: set[str]) -> bytes:
    """The bundle: the pickled tasks and the local modules the tasks and the payload need."""
    payload, referenced_modules = pickle_tasks(tasks)
    members = [(PICKLED_PAYLOAD, payload), *local_module_files(modules | referenced_modules)]
    return archive(members)


def _entities(entity: Entity, reach: _Reach) -> list[Entity]:
    found: list[Entity] = [entity]
    if isinstance(entity, Workflow):
        found.append(LaunchPlan.get_or_create(entity))
    found.extend(reach.launch_plans.values())
    return found


def _target(entity: Entity) -> tuple[str, str, Interface]:
    """The resource type, name and interface an execution of `entity` starts."""
    if isinstance(entity, Workflow):
        entity = LaunchPlan.get_or_create(entity)
    if isinstance(entity, LaunchPlan):
        return "LAUNCH_PLAN", entity.name, entity.interface
    if isinstance(entity, MapTask):
        raise WorkflowAuthoringError(
            f"{entity!r} runs only inside a workflow: call it from a @workflow and execute that"
        )
    return "TASK", entity.name, entity.interface


def _exists(remote: Remote, kind: str, name: str, version: str) -> bool:
    ident = {
        "resourceType": kind,
        "project": remote.project,
        "domain": remote.domain,
        "name": name,
        "version": version,
    }
    try:
        remote.call("GetLaunchPlan" if kind == "LAUNCH_PLAN" else "GetTask", {"id": ident})
    except RpcError as e:
        if e.code == "NOT_FOUND":
            return False
        raise
    return True


def ensure_registered(remote: Remote, entity: Entity) -> tuple[str, str, str, Interface]:
    """Registers `entity` (and what it uses) unless this version exists; returns the resource
    type, name and version an execution starts, and the interface."""
    kind, name, interface = _target(entity)
    reach = _Reach()
    reach.add(entity)
    code = code_bundle(reach.tasks, reach.modules)
    entities = _entities(entity, reach)
    version = remote._content_version(code, entities)
    known: set[tuple[str, str, str]] = remote._interactive_registered
    key = (kind, name, version)
    if key not in known and not _exists(remote, kind, name, version):
        remote._publish(entities, code, version)
    known.add(key)
    return kind, name, version, interface


def register_module(remote: Remote, module: types.ModuleType) -> Registration:
    """`Remote.register` of a module without a file (a notebook's `__main__`): every task,
    workflow and launch plan it defines, pickled."""
    from alula.core.package import module_entities

    entities: list[Entity] = [e for e in module_entities(module) if is_interactive(e)]
    if not entities:
        raise ValueError(f"module {module.__name__} defines no tasks, workflows or launch plans")
    reach = _Reach()
    for e in entities:
        reach.add(e)
    entities += [lp for lp in reach.launch_plans.values() if lp not in entities]
    code = code_bundle(reach.tasks, reach.modules)
    return remote._publish(entities, code, remote._content_version(code, entities))


class PickledTaskResolver:
    """Finds a notebook's task in the container: `pickled <payload file> task-name <name>`,
    the payload being in the unpacked bundle (the working folder, or on `sys.path`). Each
    payload is loaded once per process: a warm worker keeps it for the bundle's next tasks."""

    def __init__(self) -> None:
        self._payloads: dict[str, dict[str, Any]] = {}

    def loader_args(self, name: str) -> list[str]:
        return ["pickled", PICKLED_PAYLOAD, "task-name", name]

    def _find(self, file: str) -> str:
        for folder in [os.getcwd(), *sys.path]:
            path = os.path.join(folder or os.getcwd(), file)
            if os.path.isfile(path):
                return os.path.realpath(path)
        raise WorkflowAuthoringError(
            f"pickled tasks {file!r} are in neither the working folder nor on sys.path: "
            "was the task's code bundle unpacked?"
        )

    def load_task(self, loader_args: list[str]) -> Any:
        args = dict(zip(loader_args[::2], loader_args[1::2], strict=False))
        if "pickled" not in args or "task-name" not in args:
            raise WorkflowAuthoringError(
                f"loader args {loader_args!r} need 'pickled <file> task-name <name>'"
            )
        path = self._find(args["pickled"])
        payload = self._payloads.get(path)
        if payload is None:
            with open(path, "rb") as f:
                payload = pickle.load(f)  # noqa: S301 - our own bundle, from our own server
            self._payloads[path] = payload
        tasks: dict[str, Any] = payload["tasks"]
        name = args["task-name"]
        if name not in tasks:
            raise WorkflowAuthoringError(
                f"task {name!r} is not among the pickled tasks {sorted(tasks)} in {path}"
            )
        return tasks[name]


pickled_task_resolver = PickledTaskResolver()
