"""Alula: Flyte, rebuilt in Rust.

Write tasks and workflows as with flytekit; a Rust core compiles and runs them locally or serves
them from a FlyteAdmin-compatible control plane.
"""

from typing import TYPE_CHECKING, Any

from alula.errors import AlulaError

if TYPE_CHECKING:
    from alula.core.condition import conditional
    from alula.core.container_task import ContainerTask
    from alula.core.gate import approve, sleep, wait_for_input
    from alula.core.launch_plan import CronSchedule, FixedRate, LaunchPlan
    from alula.core.map_task import map_task
    from alula.core.reference import reference_launch_plan, reference_task, reference_workflow
    from alula.core.resources import Resources, Secret
    from alula.core.secrets import current_context
    from alula.core.settings import SerializationSettings
    from alula.core.task import Documentation, dynamic, task
    from alula.core.workflow import WorkflowFailurePolicy, workflow

__version__: str
# The authoring surface is imported on first use so that `import alula` stays cheap.
_EXPORTS = {
    "conditional": "alula.core.condition",
    "ContainerTask": "alula.core.container_task",
    "approve": "alula.core.gate",
    "sleep": "alula.core.gate",
    "wait_for_input": "alula.core.gate",
    "CronSchedule": "alula.core.launch_plan",
    "FixedRate": "alula.core.launch_plan",
    "LaunchPlan": "alula.core.launch_plan",
    "map_task": "alula.core.map_task",
    "reference_launch_plan": "alula.core.reference",
    "reference_task": "alula.core.reference",
    "reference_workflow": "alula.core.reference",
    "Resources": "alula.core.resources",
    "Secret": "alula.core.resources",
    "current_context": "alula.core.secrets",
    "SerializationSettings": "alula.core.settings",
    "Documentation": "alula.core.task",
    "dynamic": "alula.core.task",
    "task": "alula.core.task",
    "WorkflowFailurePolicy": "alula.core.workflow",
    "workflow": "alula.core.workflow",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        # The native module's version (the workspace's): loaded only when asked for.
        from alula import _bridge

        globals()[name] = _bridge.__version__
        return _bridge.__version__
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'alula' has no attribute '{name}'")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AlulaError",
    "ContainerTask",
    "CronSchedule",
    "Documentation",
    "FixedRate",
    "LaunchPlan",
    "Resources",
    "Secret",
    "SerializationSettings",
    "WorkflowFailurePolicy",
    "__version__",
    "approve",
    "conditional",
    "current_context",
    "dynamic",
    "map_task",
    "reference_launch_plan",
    "reference_task",
    "reference_workflow",
    "sleep",
    "task",
    "wait_for_input",
    "workflow",
]
