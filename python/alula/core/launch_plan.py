"""Launch plans: a workflow with default and fixed inputs, an optional schedule."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from alula.core.errors import WorkflowAuthoringError
from alula.core.interface import Interface
from alula.core.protojson import Json
from alula.core.settings import SerializationSettings
from alula.core.trace import Node, add_call_node, call_site, tracing
from alula.core.workflow import Workflow


@dataclass(frozen=True)
class CronSchedule:
    """Runs on a cron schedule ("0 9 * * *" or "@daily"); `offset` is an ISO 8601 duration."""

    cron_expression: str | None = None
    schedule: str | None = None
    offset: str | None = None
    kickoff_time_input_arg: str | None = None

    def to_json(self) -> Json:
        out: Json = {}
        if self.schedule:
            cron: Json = {"schedule": self.schedule}
            if self.offset:
                cron["offset"] = self.offset
            out["cronSchedule"] = cron
        elif self.cron_expression:
            out["cronExpression"] = self.cron_expression
        else:
            raise WorkflowAuthoringError("CronSchedule needs schedule= (or cron_expression=)")
        if self.kickoff_time_input_arg:
            out["kickoffTimeInputArg"] = self.kickoff_time_input_arg
        return out


@dataclass(frozen=True)
class FixedRate:
    """Runs every `duration` (whole minutes, hours or days)."""

    duration: timedelta
    kickoff_time_input_arg: str | None = None

    def to_json(self) -> Json:
        seconds = int(self.duration.total_seconds())
        if seconds <= 0 or seconds % 60:
            raise WorkflowAuthoringError(
                f"FixedRate needs a positive whole number of minutes, got {self.duration}"
            )
        if seconds % 86400 == 0:
            rate: Json = {"value": seconds // 86400, "unit": "DAY"}
        elif seconds % 3600 == 0:
            rate = {"value": seconds // 3600, "unit": "HOUR"}
        else:
            rate = {"value": seconds // 60, "unit": "MINUTE"}
        out: Json = {"rate": rate}
        if self.kickoff_time_input_arg:
            out["kickoffTimeInputArg"] = self.kickoff_time_input_arg
        return out


@dataclass(eq=False)
class LaunchPlan:
    name: str
    workflow: Workflow
    default_inputs: dict[str, Any] = field(default_factory=dict)
    fixed_inputs: dict[str, Any] = field(default_factory=dict)
    schedule: CronSchedule | FixedRate | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    max_parallelism: int | None = None

    _registry: ClassVar[dict[str, LaunchPlan]] = {}

    @classmethod
    def get_or_create(
        cls,
        workflow: Workflow,
        name: str | None = None,
        default_inputs: dict[str, Any] | None = None,
        fixed_inputs: dict[str, Any] | None = None,
        schedule: CronSchedule | FixedRate | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        max_parallelism: int | None = None,
    ) -> LaunchPlan:
        """The launch plan `name` (the workflow's own name by default), created once."""
        options = (default_inputs, fixed_inputs, schedule, labels, annotations, max_parallelism)
        if name is None and all(o is None for o in options):
            # The default launch plan belongs to its workflow object: workflows of the same
            # name (say, redefined in a notebook) each get their own.
            if workflow.default_launch_plan is None:
                workflow.default_launch_plan = cls(workflow.name, workflow)
            return workflow.default_launch_plan
        lp = cls(
            name or workflow.name,
            workflow,
            dict(default_inputs or {}),
            dict(fixed_inputs or {}),
            schedule,
            dict(labels or {}),
            dict(annotations or {}),
            max_parallelism,
        )
        existing = cls._registry.get(lp.name)
        if existing is not None and existing._key() != lp._key() and _redefinable(existing, lp):
            existing = None  # a notebook cell run again: the new definition replaces the old
        if existing is not None:
            if existing._key() != lp._key():
                raise WorkflowAuthoringError(
                    f"launch plan '{lp.name}' already exists with other settings ({call_site()})"
                )
            return existing
        unknown = sorted(
            (set(lp.default_inputs) | set(lp.fixed_inputs)) - set(workflow.interface.inputs)
        )
        if unknown:
            raise WorkflowAuthoringError(
                f"launch plan '{lp.name}' ({call_site()}): {workflow.label} has no input(s) "
                f"{unknown}; its inputs are: {', '.join(workflow.interface.inputs)}"
            )
        cls._registry[lp.name] = lp
        return lp

    def _repr_html_(self) -> str:
        """Jupyter's display: inputs with defaults and fixed values (`alula.display`)."""
        from alula.display import launch_plan_html

        return launch_plan_html(self)

    def _key(self) -> tuple[Any, ...]:
        return (
            self.workflow,
            repr(self.default_inputs),
            repr(self.fixed_inputs),
            self.schedule,
            self.labels,
            self.annotations,
            self.max_parallelism,
        )

    @property
    def interface(self) -> Interface:
        """The workflow's interface without the fixed inputs, with this plan's defaults."""
        wf = self.workflow.interface
        inputs = {n: t for n, t in wf.inputs.items() if n not in self.fixed_inputs}
        defaults = {n: v for n, v in {**wf.defaults, **self.default_inputs}.items() if n in inputs}
        return Interface(f"launch plan '{self.name}'", wf.site, inputs, wf.outputs, defaults)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        state = tracing()
        if state is None:
            raise WorkflowAuthoringError(
                f"launch plan '{self.name}' was called outside a workflow ({call_site()}); "
                "local execution is not available yet"
            )
        self.workflow.trace()
        metadata: Json = {"name": self.workflow.short_name, "retries": {}, "interruptible": False}
        label = f"launch plan '{self.name}'"
        return add_call_node(
            state, self, label, self.interface, metadata, args, kwargs, call_site()
        )

    def target_json(self, node: Node, settings: SerializationSettings) -> Json:
        return {"workflowNode": {"launchplanRef": settings.identifier("LAUNCH_PLAN", self.name)}}

    def to_json(self, settings: SerializationSettings) -> Json:
        """The admin.LaunchPlan, with the closure's expected inputs and outputs filled in."""
        from alula.types import TypeEngine

        iface = self.interface
        wf = self.workflow.interface
        parameters: Json = {}
        for n, t in iface.inputs.items():
            param: Json = {"var": {"type": iface.literal_type("inputs", n), "description": n}}
            if n in iface.defaults:
                value = iface.defaults[n]
                # flytekit writes a None default as a bare none literal, not as a union value.
                none: Json = {"scalar": {"noneType": {}}}
                param["default"] = none if value is None else TypeEngine.to_literal(value, t)
            else:
                param["required"] = True
            parameters[n] = param
        fixed = {n: TypeEngine.to_literal(v, wf.inputs[n]) for n, v in self.fixed_inputs.items()}
        spec: Json = {
            "workflowId": settings.identifier("WORKFLOW", self.workflow.name),
            "entityMetadata": {"schedule": self.schedule.to_json()} if self.schedule else {},
            "defaultInputs": {"parameters": parameters} if parameters else {},
            "fixedInputs": {"literals": fixed} if fixed else {},
            "labels": {"values": self.labels} if self.labels else {},
            "annotations": {"values": self.annotations} if self.annotations else {},
            "rawOutputDataConfig": {},
        }
        if self.max_parallelism is not None:
            spec["maxParallelism"] = self.max_parallelism
        outputs = iface.to_json()["outputs"]
        closure = {"expectedInputs": spec["defaultInputs"], "expectedOutputs": outputs}
        return {
            "id": settings.identifier("LAUNCH_PLAN", self.name),
            "spec": spec,
            "closure": closure,
        }


def _redefinable(old: LaunchPlan, new: LaunchPlan) -> bool:
    """Whether `new` may replace `old` of the same name: both of a notebook (`__main__` or a
    module without a file), where running a cell again defines everything in it anew."""
    from alula.core.resolver import is_interactive_module

    return is_interactive_module(old.workflow.module) and is_interactive_module(new.workflow.module)
