"""`map_task(...)`: run a task over lists of inputs as one ArrayNode, as flytekit 1.16 does."""

from __future__ import annotations

import functools
import hashlib
import typing
from typing import Any

from alula.core.errors import WorkflowAuthoringError
from alula.core.interface import Interface, def_site
from alula.core.protojson import Json
from alula.core.resolver import DEFAULT_RESOLVER, default_task_resolver, load_resolver
from alula.core.settings import MAP_EXECUTE_ENTRYPOINT, SerializationSettings, execute_args
from alula.core.task import PythonFunctionTask
from alula.core.trace import Node, add_call_node, call_site, tracing

MAP_RESOLVER = "alula.core.map_task.map_task_resolver"


class MapTask:
    """A task mapped over its unbound inputs; each becomes a list of the original type."""

    task_type = "python-task"

    def __init__(
        self,
        target: PythonFunctionTask | functools.partial[Any],
        concurrency: int | None,
        min_success_ratio: float,
        min_successes: int | None,
    ) -> None:
        bound: dict[str, Any] = {}
        mapped: Any = target
        if isinstance(target, functools.partial):
            if target.args:
                raise WorkflowAuthoringError("map_task: bind partial inputs by keyword")
            bound, mapped = dict(target.keywords), target.func
        if not isinstance(mapped, PythonFunctionTask) or mapped.dynamic:
            raise WorkflowAuthoringError(
                f"map_task maps a @task (not @dynamic or a workflow), got {mapped!r}"
            )
        self.task = mapped
        self.bound = bound
        self.concurrency = concurrency
        self.min_success_ratio = min_success_ratio
        self.min_successes = min_successes
        src = mapped.interface
        if len(src.outputs) > 1:
            raise WorkflowAuthoringError(
                f"map_task: task '{mapped.short_name}' ({def_site(mapped.fn)}) has "
                f"{len(src.outputs)} outputs; a mapped task must have at most one"
            )
        # flytekit derives the name from these settings, so equal map tasks share one entity.
        digest = hashlib.md5(
            f"{','.join(sorted(bound))}{concurrency}{min_successes}{min_success_ratio}".encode()
        ).hexdigest()
        self.short_name = f"map_{mapped.short_name}_{digest}-arraynode"
        self.name = f"{mapped.module}.{self.short_name}"
        self.module = mapped.module
        inputs = {n: (t if n in bound else list[t]) for n, t in src.inputs.items()}  # type: ignore[valid-type]
        partial_outputs = min_success_ratio != 1 or min_successes is not None
        outputs = {
            n: list[typing.Optional[t]] if partial_outputs else list[t]  # type: ignore[valid-type]  # noqa: UP045
            for n, t in src.outputs.items()
        }
        self.interface = Interface(f"map task '{self.short_name}'", src.site, inputs, outputs)

    def __repr__(self) -> str:
        return f"<map task {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        state = tracing()
        if state is None:
            raise WorkflowAuthoringError(
                f"map task of '{self.task.short_name}' was called outside a workflow "
                f"(at {call_site()}); local map execution is not available yet"
            )
        label = f"map task of '{self.task.short_name}'"
        metadata: Json = {"name": self.name, "retries": {}}
        values = {**self.bound, **kwargs}
        return add_call_node(
            state, self, label, self.interface, metadata, args, values, call_site()
        )

    def target_json(self, node: Node, settings: SerializationSettings) -> Json:
        sub: Json = {
            "id": self.name,
            "metadata": self.task.options.node_metadata(self.name),
            "inputs": [{"var": v, "binding": b} for v, b in node.bindings],
            "taskNode": {"referenceId": settings.identifier("TASK", self.name), "overrides": {}},
        }
        array: Json = {"node": sub}
        if self.concurrency is not None:
            array["parallelism"] = self.concurrency
        if self.min_successes is not None:
            array["minSuccesses"] = self.min_successes
        else:
            array["minSuccessRatio"] = self.min_success_ratio
        array["isOriginalSubNodeInterface"] = False
        if self.bound:
            array["boundInputs"] = sorted(self.bound)
        return {"arrayNode": array}

    def template_json(self, settings: SerializationSettings, runtime_version: str) -> Json:
        template = self.task.template_json(settings, runtime_version)
        loader = ["vars", ",".join(sorted(self.bound)), "resolver", self.task.resolver()]
        args = execute_args(
            MAP_EXECUTE_ENTRYPOINT,
            MAP_RESOLVER,
            loader + self.task.loader_args(),
            settings.fast_distribution,
        )
        template["id"] = settings.identifier("TASK", self.name)
        template["interface"] = self.interface.to_json()
        template["container"]["args"] = args
        template["taskTypeVersion"] = 1
        return template


class MapTaskResolver:
    """Finds the mapped task in the container: `vars <bound,...> resolver <r> <its args>`."""

    def load_task(self, loader_args: list[str]) -> tuple[PythonFunctionTask, list[str]]:
        if len(loader_args) < 4 or loader_args[0] != "vars" or loader_args[2] != "resolver":
            raise WorkflowAuthoringError(
                f"map task loader args {loader_args!r} need 'vars <names> resolver <resolver> ...'"
            )
        bound = [v for v in loader_args[1].split(",") if v]
        # The mapped task's own resolver: a module's, or the pickle of a notebook's task.
        inner = loader_args[3]
        resolver = default_task_resolver if inner == DEFAULT_RESOLVER else load_resolver(inner)
        return resolver.load_task(loader_args[4:]), bound


map_task_resolver = MapTaskResolver()


def map_task(
    target: PythonFunctionTask | functools.partial[Any],
    concurrency: int | None = None,
    min_success_ratio: float = 1.0,
    min_successes: int | None = None,
) -> MapTask:
    """Map `target` (a task, or a `functools.partial` of one binding some inputs) over lists."""
    return MapTask(target, concurrency, min_success_ratio, min_successes)
