"""Builds the wire corpus: real flyteidl messages produced by flytekit from the sample workflows,
plus literals from flytekit's type engine, execution requests and propeller-style events.

Generated during the test run (nothing flytekit produced is committed).
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2
from google.protobuf.message import Message

HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass
class Sample:
    label: str
    message: Message

    @property
    def full_name(self) -> str:
        return self.message.DESCRIPTOR.full_name


def _ts(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def serialized_entities() -> list[Sample]:
    """TaskSpec / WorkflowSpec / LaunchPlan (and the core templates inside) from flytekit."""
    from flytekit import LaunchPlan
    from flytekit.configuration import (
        FastSerializationSettings,
        Image,
        ImageConfig,
        SerializationSettings,
    )
    from flytekit.tools.translator import get_serializable

    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    import flytekit_samples as samples

    settings = SerializationSettings(
        project="flytesnacks",
        domain="development",
        version="v1",
        image_config=ImageConfig(
            default_image=Image(name="default", fqn="ghcr.io/acme/app", tag="v1")
        ),
        env={"FLYTE_SDK_LOGGING_LEVEL": "20"},
        fast_serialization_settings=FastSerializationSettings(
            enabled=True, destination_dir=".", distribution_location="s3://bucket/fast/abc.tar.gz"
        ),
    )
    entity_map: OrderedDict = OrderedDict()
    for wf in samples.WORKFLOWS:
        get_serializable(entity_map, settings, wf)
        get_serializable(entity_map, settings, wf)  # idempotent: same entries
    for lp in samples.LAUNCH_PLANS:
        get_serializable(entity_map, settings, lp)
    for wf in samples.WORKFLOWS:  # the default launch plan `pyflyte register` creates
        get_serializable(entity_map, settings, LaunchPlan.get_or_create(wf))

    out: list[Sample] = []
    for entity, model in entity_map.items():
        name = getattr(entity, "name", type(entity).__name__)
        idl = model.to_flyte_idl()
        out.append(Sample(f"{type(idl).__name__}:{name}", idl))
        if hasattr(idl, "template") and idl.template.ByteSize():
            out.append(Sample(f"template:{name}", idl.template))
    return out


def literals() -> list[Sample]:
    """Literals and LiteralTypes from flytekit's type engine for a spread of Python types."""
    import typing

    import pandas as pd
    from flytekit import FlyteContextManager
    from flytekit.core.type_engine import TypeEngine

    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    import flytekit_samples as samples

    ctx = FlyteContextManager.current_context()
    values: list[tuple[str, object, object]] = [
        ("int", 42, int),
        ("neg", -(2**40), int),
        ("float", 3.25, float),
        ("str", "héllo", str),
        ("bool", True, bool),
        ("bytes", b"\x00\xffdata", bytes),
        ("datetime", datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc), datetime),
        ("timedelta", timedelta(days=1, microseconds=5), timedelta),
        ("list", [1, 2, 3], list[int]),
        ("dict", {"a": [1.5], "b": []}, dict[str, list[float]]),
        ("optional_none", None, typing.Optional[int]),  # noqa: UP045 (flytekit spelling)
        ("union", "x", typing.Union[int, str]),  # noqa: UP007 (flytekit spelling)
        ("enum", samples.Color.GREEN, samples.Color),
        (
            "dataclass",
            samples.Shape("sq", [samples.Point(1, 2)], {"n": 4}, samples.Point(0.5, 0.5)),
            samples.Shape,
        ),
        ("dataframe", pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), pd.DataFrame),
        ("pickle", samples.Opaque(3), samples.Opaque),
    ]
    out: list[Sample] = []
    for label, value, py_type in values:
        lt = TypeEngine.to_literal_type(py_type)
        lit = TypeEngine.to_literal(ctx, value, py_type, lt)
        out.append(Sample(f"literal_type:{label}", lt.to_flyte_idl()))
        out.append(Sample(f"literal:{label}", lit.to_flyte_idl()))
    lm = TypeEngine.dict_to_literal_map(ctx, {"a": 1, "b": "two"}, {"a": int, "b": str})
    out.append(Sample("literal_map", lm.to_flyte_idl()))
    return out


def admin_messages() -> list[Sample]:
    """Requests and records as flytekit and flyteadmin send them."""
    from flyteidl.admin import common_pb2, execution_pb2, launch_plan_pb2, project_pb2
    from flyteidl.core import execution_pb2 as core_exec
    from flyteidl.core import identifier_pb2, literals_pb2

    lp_id = identifier_pb2.Identifier(
        resource_type=identifier_pb2.LAUNCH_PLAN,
        project="flytesnacks",
        domain="development",
        name="wf.parent_wf",
        version="v1",
    )
    inputs = literals_pb2.LiteralMap(
        literals={
            "x": literals_pb2.Literal(
                scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=7))
            )
        }
    )
    spec = execution_pb2.ExecutionSpec(
        launch_plan=lp_id,
        metadata=execution_pb2.ExecutionMetadata(
            mode=execution_pb2.ExecutionMetadata.MANUAL, principal="flyteremote", nesting=0
        ),
        labels=common_pb2.Labels(values={"team": "ml"}),
        annotations=common_pb2.Annotations(values={"note": "x"}),
        raw_output_data_config=common_pb2.RawOutputDataConfig(output_location_prefix="s3://b/raw"),
        max_parallelism=25,
        overwrite_cache=True,
        envs=common_pb2.Envs(values=[literals_pb2.KeyValuePair(key="A", value="1")]),
        disable_all=True,
    )
    create = execution_pb2.ExecutionCreateRequest(
        project="flytesnacks", domain="development", name="abc123", spec=spec, inputs=inputs
    )
    wf_exec_id = identifier_pb2.WorkflowExecutionIdentifier(
        project="flytesnacks", domain="development", name="abc123"
    )
    execution = execution_pb2.Execution(
        id=wf_exec_id,
        spec=spec,
        closure=execution_pb2.ExecutionClosure(
            error=core_exec.ExecutionError(
                code="USER:ValueError", message="boom", kind=core_exec.ExecutionError.USER
            ),
            phase=core_exec.WorkflowExecution.FAILED,
            started_at=_ts(1_700_000_000, 5),
            duration=duration_pb2.Duration(seconds=12, nanos=500_000_000),
            created_at=_ts(1_700_000_000),
            updated_at=_ts(1_700_000_012),
            workflow_id=identifier_pb2.Identifier(
                resource_type=identifier_pb2.WORKFLOW,
                project="flytesnacks",
                domain="development",
                name="wf.parent_wf",
                version="v1",
            ),
        ),
    )
    lp_update = launch_plan_pb2.LaunchPlanUpdateRequest(id=lp_id, state=launch_plan_pb2.ACTIVE)
    list_req = common_pb2.ResourceListRequest(
        id=common_pb2.NamedEntityIdentifier(project="flytesnacks", domain="development"),
        limit=100,
        token="20",
        filters="eq(phase,SUCCEEDED)+gte(created_at,2024-01-01T00:00:00Z)",
        sort_by=common_pb2.Sort(key="created_at", direction=common_pb2.Sort.DESCENDING),
    )
    projects = project_pb2.Projects(
        projects=[
            project_pb2.Project(
                id="flytesnacks",
                name="flytesnacks",
                domains=[project_pb2.Domain(id="development", name="development")],
                state=project_pb2.Project.ACTIVE,
            )
        ]
    )
    return [
        Sample("execution_create", create),
        Sample("execution", execution),
        Sample("launch_plan_update", lp_update),
        Sample("resource_list", list_req),
        Sample("projects", projects),
    ]


def events() -> list[Sample]:
    """Workflow, node and task execution events shaped like propeller's."""
    from flyteidl.admin import event_pb2 as admin_event
    from flyteidl.core import catalog_pb2, identifier_pb2
    from flyteidl.core import execution_pb2 as core_exec
    from flyteidl.event import event_pb2

    exec_id = identifier_pb2.WorkflowExecutionIdentifier(
        project="flytesnacks", domain="development", name="abc123"
    )
    node_id = identifier_pb2.NodeExecutionIdentifier(node_id="n0", execution_id=exec_id)
    task_id = identifier_pb2.Identifier(
        resource_type=identifier_pb2.TASK,
        project="flytesnacks",
        domain="development",
        name="wf.square",
        version="v1",
    )
    wf_event = event_pb2.WorkflowExecutionEvent(
        execution_id=exec_id,
        producer_id="propeller",
        phase=core_exec.WorkflowExecution.SUCCEEDED,
        occurred_at=_ts(1_700_000_100, 42),
        output_uri="s3://bucket/metadata/abc123/end-node/data/0/outputs.pb",
    )
    node_event = event_pb2.NodeExecutionEvent(
        id=node_id,
        producer_id="propeller",
        phase=core_exec.NodeExecution.SUCCEEDED,
        occurred_at=_ts(1_700_000_050),
        input_uri="s3://bucket/metadata/abc123/n0/data/inputs.pb",
        output_uri="s3://bucket/metadata/abc123/n0/data/0/outputs.pb",
        task_node_metadata=event_pb2.TaskNodeMetadata(
            cache_status=catalog_pb2.CACHE_POPULATED,
            catalog_key=catalog_pb2.CatalogMetadata(
                dataset_id=identifier_pb2.Identifier(
                    resource_type=identifier_pb2.DATASET,
                    project="flytesnacks",
                    name="flyte_task-wf.square",
                ),
                artifact_tag=catalog_pb2.CatalogArtifactTag(artifact_id="art", name="tag"),
            ),
        ),
        spec_node_id="n0",
        node_name="square",
        event_version=2,
        reported_at=_ts(1_700_000_051),
        target_entity=task_id,
    )
    custom = struct_pb2.Struct()
    custom.update({"pod": "abc-n0-0", "restarts": 0, "nested": {"ok": True}})
    task_event = event_pb2.TaskExecutionEvent(
        task_id=task_id,
        parent_node_execution_id=node_id,
        retry_attempt=1,
        phase=core_exec.TaskExecution.FAILED,
        producer_id="propeller",
        logs=[
            core_exec.TaskLog(
                uri="http://logs/abc",
                name="Logs",
                message_format=core_exec.TaskLog.JSON,
                ttl=duration_pb2.Duration(seconds=60),
                ShowWhilePending=True,
            )
        ],
        occurred_at=_ts(1_700_000_040),
        error=core_exec.ExecutionError(
            code="USER:ZeroDivisionError",
            message="Traceback ...",
            kind=core_exec.ExecutionError.USER,
            timestamp=_ts(1_700_000_040),
        ),
        custom_info=custom,
        phase_version=3,
        reasons=[event_pb2.EventReason(reason="pod failed", occurred_at=_ts(1_700_000_039))],
        task_type="python-task",
        metadata=event_pb2.TaskExecutionMetadata(
            generated_name="abc123-n0-1",
            external_resources=[
                event_pb2.ExternalResourceInfo(
                    external_id="abc123-n0-1",
                    index=0,
                    retry_attempt=1,
                    phase=core_exec.TaskExecution.FAILED,
                )
            ],
            plugin_identifier="container",
            instance_class=event_pb2.TaskExecutionMetadata.INTERRUPTIBLE,
        ),
        event_version=1,
        reported_at=_ts(1_700_000_041),
    )
    failure = admin_event.EventFailureReason(
        already_in_terminal_state=admin_event.EventErrorAlreadyInTerminalState(
            current_phase="SUCCEEDED"
        )
    )
    return [
        Sample("wf_event", wf_event),
        Sample("node_event", node_event),
        Sample("task_event", task_event),
        Sample(
            "wf_event_request",
            admin_event.WorkflowExecutionEventRequest(request_id="r1", event=wf_event),
        ),
        Sample("event_failure_reason", failure),
    ]


def build_corpus() -> list[Sample]:
    return serialized_entities() + literals() + admin_messages() + events()
