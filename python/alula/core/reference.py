"""Reference entities: tasks, workflows and launch plans registered elsewhere, used by id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alula.core.errors import WorkflowAuthoringError
from alula.core.interface import from_function
from alula.core.protojson import Json, identifier_json
from alula.core.settings import SerializationSettings
from alula.core.trace import Node, add_call_node, call_site, tracing

_KINDS = {
    "TASK": "reference task",
    "WORKFLOW": "reference workflow",
    "LAUNCH_PLAN": "reference launch plan",
}


class ReferenceEntity:
    """An entity known only by its identifier and the interface of its Python signature."""

    def __init__(
        self, kind: str, fn: Callable[..., Any], project: str, domain: str, name: str, version: str
    ) -> None:
        self.kind = kind
        self.short_name = fn.__name__
        self.name = name
        self.label = f"{_KINDS[kind]} '{name}'"
        self.identifier = identifier_json(kind, project, domain, name, version)
        self.interface = from_function(fn, self.label)

    def __repr__(self) -> str:
        return f"<{_KINDS[self.kind]} {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        site = call_site()
        state = tracing()
        if state is None:
            raise WorkflowAuthoringError(
                f"{self.label} was called outside a workflow ({site}); it runs only remotely"
            )
        if self.kind == "WORKFLOW":
            raise WorkflowAuthoringError(
                f"{self.label} is called as a subworkflow at {site}; Flyte cannot embed a "
                "reference workflow: use reference_launch_plan instead"
            )
        metadata: Json = {"name": self.short_name, "retries": {}}
        return add_call_node(state, self, self.label, self.interface, metadata, args, kwargs, site)

    def target_json(self, node: Node, settings: SerializationSettings) -> Json:
        if self.kind == "TASK":
            return {"taskNode": {"referenceId": self.identifier}}
        return {"workflowNode": {"launchplanRef": self.identifier}}

    def template_json(self) -> Json:
        """A stand-in for the compiler: the entity's id and interface only."""
        if self.kind == "TASK":
            return {
                "id": self.identifier,
                "type": "python-task",
                "interface": self.interface.to_json(),
            }
        iface = self.interface.to_json()
        params = {
            n: {"var": v, "required": True} for n, v in iface["inputs"].get("variables", {}).items()
        }
        return {
            "id": self.identifier,
            "spec": {},
            "closure": {
                "expectedInputs": {"parameters": params} if params else {},
                "expectedOutputs": iface["outputs"],
            },
        }


def _reference(kind: str, project: str, domain: str, name: str, version: str) -> Any:
    def wrap(fn: Callable[..., Any]) -> ReferenceEntity:
        return ReferenceEntity(kind, fn, project, domain, name, version)

    return wrap


def reference_task(project: str, domain: str, name: str, version: str) -> Any:
    """Use a registered task by id; the decorated function gives its interface."""
    return _reference("TASK", project, domain, name, version)


def reference_workflow(project: str, domain: str, name: str, version: str) -> Any:
    """Refer to a registered workflow by id; the decorated function gives its interface."""
    return _reference("WORKFLOW", project, domain, name, version)


def reference_launch_plan(project: str, domain: str, name: str, version: str) -> Any:
    """Use a registered launch plan by id; the decorated function gives its interface."""
    return _reference("LAUNCH_PLAN", project, domain, name, version)
