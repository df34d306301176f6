"""End to end with the real flytekit: `pyflyte register` against alula-server, then
FlyteRemote reads, executions and termination, and propeller-style events read back through
`FlyteRemote.sync_execution`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from conftest import AlulaServer
from flyteidl.admin import event_pb2 as admin_event_pb2
from flyteidl.admin import execution_pb2 as admin_execution_pb2
from flyteidl.core import execution_pb2, identifier_pb2, literals_pb2
from flyteidl.event import event_pb2
from flyteidl.service import admin_pb2_grpc
from flytekit.configuration import Config
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.remote import FlyteRemote
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import status_pb2

SAMPLES = Path(__file__).parent / "samples"
PYFLYTE = Path(sys.executable).parent / "pyflyte"
PROJECT, DOMAIN, VERSION = "flytesnacks", "development", "e2e-v1"


@pytest.fixture(scope="module")
def source_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the samples: the tests edit a task in it, and fast registration
    packages the whole source root."""
    root = tmp_path_factory.mktemp("src")
    shutil.copytree(SAMPLES, root / "samples")
    return root


def register(server: AlulaServer, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYFLYTE, "--config", server.config_file, "register", "--version", VERSION, "samples"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def remote(alula_server: AlulaServer) -> FlyteRemote:
    return FlyteRemote(
        Config.auto(config_file=str(alula_server.config_file)),
        default_project=PROJECT,
        default_domain=DOMAIN,
    )


def test_register_twice_then_a_changed_task_is_refused(
    alula_server: AlulaServer, source_root: Path
) -> None:
    first = register(alula_server, source_root)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Successfully registered 9 entities" in first.stdout, first.stdout
    uploads = list((alula_server.storage_root / "uploads").rglob("*.tar.gz"))
    assert len(uploads) == 1, uploads

    # Identical entities: ALREADY_EXISTS, which flytekit counts as success.
    second = register(alula_server, source_root)
    assert second.returncode == 0, second.stdout + second.stderr

    module = source_root / "samples" / "pipeline.py"
    original = module.read_text()
    module.write_text(original.replace("return a + b", "return a * b"))
    try:
        changed = register(alula_server, source_root)
    finally:
        module.write_text(original)
    output = changed.stdout + changed.stderr
    assert changed.returncode != 0, output
    assert "INVALID_ARGUMENT" in output, output
    # Tasks register concurrently, so either one may be the first refused; both changed because
    # the fast-register tarball (in the container args) changed.
    assert re.search(rf"samples\.pipeline\.(add|greet)@{VERSION}", output), output
    assert "template.container.args" in output, output
    assert "already registered with a different definition" in output, output


def test_remote_reads_executes_and_terminates(
    remote: FlyteRemote, alula_server: AlulaServer, source_root: Path
) -> None:
    # Registration is shared with the test above but must not depend on its order.
    register(alula_server, source_root)

    task = remote.fetch_task(name="samples.pipeline.add", version=VERSION)
    assert set(task.interface.inputs) == {"a", "b"}
    wf = remote.fetch_workflow(name="samples.pipeline.pipeline", version=VERSION)
    assert {n.id for n in wf.nodes} >= {"n0", "n1"}
    lp = remote.fetch_launch_plan(name="pipeline_fixed", version=VERSION)
    assert set(lp.fixed_inputs.literals) == {"b"}
    caller = remote.fetch_workflow(name="samples.pipeline.caller", version=VERSION)
    assert caller.id.version == VERSION

    execution = remote.execute(lp, inputs={"a": 2}, wait=False)
    fetched = remote.fetch_execution(name=execution.id.name)
    assert fetched.closure.phase == WorkflowExecutionPhase.QUEUED
    inputs = remote.client.get_execution_data(execution.id).full_inputs.literals
    assert inputs["b"].scalar.primitive.integer == 5
    assert inputs["name"].scalar.primitive.string_value == "flyte"

    recent = {e.id.name for e in remote.recent_executions()}
    assert execution.id.name in recent

    remote.terminate(fetched, cause="end of test")
    aborted = remote.fetch_execution(name=execution.id.name)
    # As flyteadmin: ABORTING until a propeller (none runs here) reports ABORTED.
    assert aborted.closure.phase == WorkflowExecutionPhase.ABORTING
    assert aborted.closure.abort_metadata.cause == "end of test"


def _ts(seconds: int) -> Timestamp:
    return Timestamp(seconds=1_700_000_000 + seconds)


def _primitive(**value: object) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(**value))
    )


def _str_map(name: str, value: str) -> literals_pb2.LiteralMap:
    return literals_pb2.LiteralMap(literals={name: _primitive(string_value=value)})


def test_events_are_read_back_by_sync_execution(
    remote: FlyteRemote, alula_server: AlulaServer, source_root: Path
) -> None:
    """Sends what propeller would for `greet` (node n1) through a raw gRPC client, then checks
    that flytekit sees the phase, the workflow outputs and the node's data."""
    register(alula_server, source_root)
    lp = remote.fetch_launch_plan(name="pipeline_fixed", version=VERSION)
    started = remote.execute(lp, inputs={"a": 1}, wait=False)
    exec_id = identifier_pb2.WorkflowExecutionIdentifier(
        project=PROJECT, domain=DOMAIN, name=started.id.name
    )
    node_id = identifier_pb2.NodeExecutionIdentifier(node_id="n1", execution_id=exec_id)
    task_id = identifier_pb2.Identifier(
        resource_type=identifier_pb2.TASK,
        project=PROJECT,
        domain=DOMAIN,
        name="samples.pipeline.greet",
        version=VERSION,
    )
    greeting = "hello flyte hello flyte hello flyte hello flyte hello flyte hello flyte"
    wf_phase = execution_pb2.WorkflowExecution
    node_phase = execution_pb2.NodeExecution
    task_phase = execution_pb2.TaskExecution

    def wf_event(phase: int, t: int, **kw: object) -> admin_event_pb2.WorkflowExecutionEventRequest:
        event = event_pb2.WorkflowExecutionEvent(
            execution_id=exec_id, producer_id="propeller", phase=phase, occurred_at=_ts(t), **kw
        )
        return admin_event_pb2.WorkflowExecutionEventRequest(event=event)

    def node_event(phase: int, t: int, **kw: object) -> admin_event_pb2.NodeExecutionEventRequest:
        event = event_pb2.NodeExecutionEvent(
            id=node_id,
            producer_id="propeller",
            phase=phase,
            occurred_at=_ts(t),
            spec_node_id="n1",
            **kw,
        )
        return admin_event_pb2.NodeExecutionEventRequest(event=event)

    def task_event(phase: int, t: int, **kw: object) -> admin_event_pb2.TaskExecutionEventRequest:
        event = event_pb2.TaskExecutionEvent(
            task_id=task_id,
            parent_node_execution_id=node_id,
            phase=phase,
            producer_id="propeller",
            occurred_at=_ts(t),
            **kw,
        )
        return admin_event_pb2.TaskExecutionEventRequest(event=event)

    with grpc.insecure_channel(f"127.0.0.1:{alula_server.grpc_port}") as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        admin.CreateWorkflowEvent(wf_event(wf_phase.RUNNING, 1))
        inputs = literals_pb2.LiteralMap(
            literals={"name": _primitive(string_value="flyte"), "times": _primitive(integer=6)}
        )
        admin.CreateNodeEvent(node_event(node_phase.RUNNING, 2, input_data=inputs))
        admin.CreateTaskEvent(task_event(task_phase.RUNNING, 3))
        admin.CreateTaskEvent(
            task_event(task_phase.SUCCEEDED, 4, output_data=_str_map("o0", greeting))
        )
        admin.CreateNodeEvent(
            node_event(node_phase.SUCCEEDED, 5, output_data=_str_map("o0", greeting))
        )
        admin.CreateWorkflowEvent(
            wf_event(wf_phase.SUCCEEDED, 6, output_data=_str_map("o0", greeting))
        )

        # A finished execution refuses further events, with the reason as a status detail.
        with pytest.raises(grpc.RpcError) as refused:
            admin.CreateWorkflowEvent(wf_event(wf_phase.RUNNING, 7))
        err = refused.value
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err
        assert "SUCCEEDED" in err.details(), err.details()
        trailers = dict(err.trailing_metadata() or ())
        status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
        reason = admin_event_pb2.EventFailureReason()
        assert status.details[0].Unpack(reason)
        assert reason.already_in_terminal_state.current_phase == "SUCCEEDED"

        # Archiving is recorded in the closure.
        admin.UpdateExecution(
            admin_execution_pb2.ExecutionUpdateRequest(
                id=exec_id, state=admin_execution_pb2.EXECUTION_ARCHIVED
            )
        )

    fetched = remote.fetch_execution(name=started.id.name)
    assert fetched.closure.phase == WorkflowExecutionPhase.SUCCEEDED
    synced = remote.sync_execution(fetched, sync_nodes=True)
    assert synced.is_successful
    assert synced.outputs["o0"] == greeting
    node = synced.node_executions["n1"]
    assert node.closure.phase == node_phase.SUCCEEDED
    assert node.inputs["times"] == 6
    assert node.outputs["o0"] == greeting
    assert len(node.task_executions) == 1
    assert node.task_executions[0].closure.phase == task_phase.SUCCEEDED
