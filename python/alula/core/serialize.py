"""Serialization of tasks, workflows and launch plans to flyteidl bytes, as `pyflyte package`
writes them (admin.TaskSpec, admin.WorkflowSpec, admin.LaunchPlan), compiling each workflow.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from alula.core.errors import WorkflowAuthoringError, WorkflowCompileError
from alula.core.launch_plan import LaunchPlan
from alula.core.map_task import MapTask
from alula.core.protojson import Json
from alula.core.reference import ReferenceEntity
from alula.core.settings import SerializationSettings
from alula.core.task import PythonFunctionTask
from alula.core.workflow import Workflow
from alula.errors import CompileError

TASK, WORKFLOW, LAUNCH_PLAN = 1, 2, 3
_MESSAGES = {
    TASK: "flyteidl.admin.TaskSpec",
    WORKFLOW: "flyteidl.admin.WorkflowSpec",
    LAUNCH_PLAN: "flyteidl.admin.LaunchPlan",
}
Entity = PythonFunctionTask | MapTask | Workflow | LaunchPlan


@dataclass(frozen=True)
class Serialized:
    """One serialized entity: its kind (1 task, 2 workflow, 3 launch plan), name and message."""

    kind: int
    name: str
    message: Json

    @property
    def full_name(self) -> str:
        return _MESSAGES[self.kind]

    def to_bytes(self) -> bytes:
        from alula import _bridge

        return _bridge.message_from_json(self.full_name, json.dumps(self.message))


def _runtime_version() -> str:
    from alula import __version__

    return __version__


class _Collector:
    """Walks entities depth first so that each is preceded by what it refers to."""

    def __init__(self, settings: SerializationSettings) -> None:
        self.settings = settings
        self.out: dict[tuple[int, str], Serialized] = {}

    def add(self, entity: Entity) -> None:
        if isinstance(entity, (PythonFunctionTask, MapTask)):
            self._task(entity)
        elif isinstance(entity, Workflow):
            self._workflow(entity)
        elif isinstance(entity, LaunchPlan):
            self._launch_plan(entity)
        else:
            raise WorkflowAuthoringError(f"cannot serialize {entity!r}")

    def _task(self, task: PythonFunctionTask | MapTask) -> None:
        if (TASK, task.name) in self.out:
            return
        template = task.template_json(self.settings, _runtime_version())
        spec: Json = {"template": template}
        if isinstance(task, PythonFunctionTask) and (docs := task.documentation_json()):
            spec["description"] = docs
        self.out[(TASK, task.name)] = Serialized(TASK, task.name, spec)

    def _workflow(self, wf: Workflow) -> None:
        if (WORKFLOW, wf.name) in self.out:
            return
        for node in wf.all_nodes():
            if isinstance(node.entity, (PythonFunctionTask, MapTask, Workflow, LaunchPlan)):
                self.add(node.entity)
        subs = [s.template_json(self.settings) for s in subworkflows(wf)]
        spec: Json = {"template": wf.template_json(self.settings)}
        if subs:
            spec["subWorkflows"] = subs
        spec["description"] = {"longDescription": {"format": "DESCRIPTION_FORMAT_RST"}}
        compile_spec(wf, spec, self.settings)
        self.out[(WORKFLOW, wf.name)] = Serialized(WORKFLOW, wf.name, spec)

    def _launch_plan(self, lp: LaunchPlan) -> None:
        if (LAUNCH_PLAN, lp.name) in self.out:
            return
        self._workflow(lp.workflow)
        self.out[(LAUNCH_PLAN, lp.name)] = Serialized(
            LAUNCH_PLAN, lp.name, lp.to_json(self.settings)
        )


def serialize(entities: Iterable[Entity], settings: SerializationSettings) -> list[Serialized]:
    """The entities and everything they use, each once, dependencies first."""
    collector = _Collector(settings)
    for e in entities:
        collector.add(e)
    return list(collector.out.values())


def subworkflows(wf: Workflow) -> list[Workflow]:
    """Workflows called (directly or deeper) as subworkflows of `wf`, each once."""
    found: dict[str, Workflow] = {}
    todo = [wf]
    while todo:
        for node in todo.pop().all_nodes():
            if isinstance(node.entity, Workflow) and node.entity.name not in found:
                found[node.entity.name] = node.entity
                todo.append(node.entity)
    return list(found.values())


def compile_spec(wf: Workflow, spec: Json, settings: SerializationSettings) -> bytes:
    """Compile the workflow with the Rust compiler; errors name each node's Python call site."""
    from alula import _bridge

    def encode(full_name: str, message: Json) -> bytes:
        return _bridge.message_from_json(full_name, json.dumps(message))

    tasks: dict[str, Json] = {}
    launch_plans: dict[str, Json] = {}
    sites: dict[str, str] = {}
    for w in [wf, *subworkflows(wf)]:
        for node in w.all_nodes():
            sites.setdefault(node.id, f"{node.label} at {node.site}")
            e = node.entity
            if isinstance(e, (PythonFunctionTask, MapTask)):
                tasks[e.name] = e.template_json(settings, _runtime_version())
            elif isinstance(e, LaunchPlan):
                launch_plans[e.name] = e.to_json(settings)
            elif isinstance(e, ReferenceEntity):
                target = tasks if e.kind == "TASK" else launch_plans
                target[e.name] = e.template_json()
    try:
        return _bridge.compile_workflow(
            encode("flyteidl.core.WorkflowTemplate", spec["template"]),
            [encode("flyteidl.core.WorkflowTemplate", s) for s in spec.get("subWorkflows", [])],
            [encode("flyteidl.core.TaskTemplate", t) for t in tasks.values()],
            [encode("flyteidl.admin.LaunchPlan", lp) for lp in launch_plans.values()],
        )
    except CompileError as e:
        lines = [
            f"{node_id or wf.name}: {description} [{code}]"
            + (f" ({sites[node_id]})" if node_id in sites else "")
            for code, node_id, description in e.errors
        ]
        raise WorkflowCompileError(wf.short_name, lines) from e


def entity_of(value: Any) -> Entity | None:
    """The serializable entity a module attribute holds, if any."""
    if isinstance(value, (PythonFunctionTask, MapTask, Workflow, LaunchPlan)):
        return value
    return None
