"""Alula's own remote client against alula-server: native gRPC calls, fast registration through
the data proxy, executions, and the `alula-fast-execute` entrypoint tasks start with.

Executions are only created here: running them needs the propeller."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from conftest import AlulaServer

from alula import _native
from alula.core.serialize import LAUNCH_PLAN, TASK, WORKFLOW
from alula.remote import Execution, Registration, Remote, bundle

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "examples" / "hello.py"
PROJECT, DOMAIN = "flytesnacks", "development"
ADMIN = "/flyteidl.service.AdminService/"
ALULA = Path(sys.executable).parent / "alula"


def call(server: AlulaServer, rpc: str, request: tuple[str, Any], response: str) -> Any:
    name, body = request
    data = _native.message_from_json(name, json.dumps(body))
    out = _native.grpc_unary(f"127.0.0.1:{server.grpc_port}", ADMIN + rpc, data)
    return json.loads(_native.message_to_json(response, out))


def object_get(kind: str, name: str, version: str) -> tuple[str, Any]:
    ident = {"resourceType": kind, "project": PROJECT, "domain": DOMAIN, "name": name}
    return "flyteidl.admin.ObjectGetRequest", {"id": {**ident, "version": version}}


@pytest.fixture(scope="module")
def remote(alula_server: AlulaServer) -> Remote:
    return Remote(f"dns:///127.0.0.1:{alula_server.grpc_port}", PROJECT, DOMAIN)


@pytest.fixture(scope="module")
def registration(remote: Remote) -> Registration:
    return remote.register(HELLO)


def test_register_creates_every_entity(
    alula_server: AlulaServer, registration: Registration
) -> None:
    kinds = {(e.kind, e.name) for e in registration.entities}
    assert kinds == {(TASK, "hello.greet"), (WORKFLOW, "hello.wf"), (LAUNCH_PLAN, "hello.wf")}
    v = registration.version
    task = call(
        alula_server, "GetTask", object_get("TASK", "hello.greet", v), "flyteidl.admin.Task"
    )
    assert task["id"]["version"] == v
    wf = call(
        alula_server,
        "GetWorkflow",
        object_get("WORKFLOW", "hello.wf", v),
        "flyteidl.admin.Workflow",
    )
    assert wf["closure"]["compiledWorkflow"]["primary"]["template"]["id"]["name"] == "hello.wf"
    lp = call(
        alula_server,
        "GetLaunchPlan",
        object_get("LAUNCH_PLAN", "hello.wf", v),
        "flyteidl.admin.LaunchPlan",
    )
    assert lp["spec"]["workflowId"]["version"] == v


def test_tasks_start_with_fast_execute_of_the_uploaded_bundle(
    alula_server: AlulaServer, registration: Registration
) -> None:
    (task,) = [e for e in registration.entities if e.kind == TASK]
    args = task.message["template"]["container"]["args"]
    assert args[:6] == [
        "alula-fast-execute",
        "--additional-distribution",
        registration.native_url,
        "--dest-dir",
        ".",
        "--",
    ]
    assert args[6] == "alula-execute"
    # The native URL is where the server stored the upload, byte for byte the bundle.
    assert registration.native_url.startswith(f"file://{alula_server.storage_root}")
    stored = Path(registration.native_url.removeprefix("file://")).read_bytes()
    assert stored == bundle(HELLO.parent)
    with tarfile.open(fileobj=io.BytesIO(stored)) as tar:
        assert "hello.py" in tar.getnames()


def test_registering_again_is_silent_and_keeps_the_version(
    alula_server: AlulaServer, registration: Registration
) -> None:
    # A client of its own: the shared one keeps executing the fixture's version.
    remote = Remote(f"127.0.0.1:{alula_server.grpc_port}", PROJECT, DOMAIN)
    again = remote.register(HELLO)
    assert again.version == registration.version
    explicit = remote.register(HELLO, version="v-explicit")
    assert explicit.version == "v-explicit"
    assert remote.register(HELLO, version="v-explicit").version == "v-explicit"


def test_unknown_task_is_not_found(alula_server: AlulaServer) -> None:
    with pytest.raises(_native.RpcError) as raised:
        call(alula_server, "GetTask", object_get("TASK", "nope", "v1"), "flyteidl.admin.Task")
    error = raised.value
    assert error.code == "NOT_FOUND"
    assert error.method == ADMIN + "GetTask"
    assert error.message and error.message in str(error)
    assert "GetTask" in str(error)
    assert isinstance(error, RuntimeError)


def test_unreachable_server_and_bad_arguments() -> None:
    with pytest.raises(_native.RpcError) as raised:
        _native.grpc_unary("127.0.0.1:1", ADMIN + "GetTask", b"", 5.0)
    assert raised.value.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED")
    with pytest.raises(ValueError, match="method"):
        _native.grpc_unary("127.0.0.1:1", "GetTask", b"")
    with pytest.raises(ValueError, match="endpoint"):
        _native.grpc_unary("grpc+unix://x", ADMIN + "GetTask", b"")


def test_execute_creates_a_queued_execution(
    alula_server: AlulaServer, remote: Remote, registration: Registration
) -> None:
    execution = remote.execute("wf", {"name": "Alula"}, name="hello-remote-1")
    assert execution == Execution(PROJECT, DOMAIN, "hello-remote-1")
    got = call(
        alula_server,
        "GetExecution",
        ("flyteidl.admin.WorkflowExecutionGetRequest", {"id": execution.id_json()}),
        "flyteidl.admin.Execution",
    )
    # QUEUED until a propeller picks it up; later phases once one runs beside the server.
    assert got["closure"]["phase"] in ("QUEUED", "RUNNING", "SUCCEEDED")
    assert got["spec"]["launchPlan"]["name"] == "hello.wf"
    assert got["spec"]["launchPlan"]["version"] == registration.version
    data = call(
        alula_server,
        "GetExecutionData",
        ("flyteidl.admin.WorkflowExecutionGetDataRequest", {"id": execution.id_json()}),
        "flyteidl.admin.WorkflowExecutionGetDataResponse",
    )
    literal = data["fullInputs"]["literals"]["name"]
    assert literal["scalar"]["primitive"]["stringValue"] == "Alula"

    with pytest.raises(_native.RpcError) as raised:
        remote.execute("wf", {"name": "again"}, name="hello-remote-1")
    assert raised.value.code == "ALREADY_EXISTS"
    with pytest.raises(ValueError, match="no input"):
        remote.execute("wf", {"nope": 1})


def test_terminate(remote: Remote, registration: Registration) -> None:
    execution = remote.execute("hello.wf", {})
    remote.terminate(execution, "changed my mind")
    assert remote.phase(execution) in ("ABORTING", "ABORTED")


def test_cli_run_remote_without_waiting(alula_server: AlulaServer) -> None:
    result = subprocess.run(
        [ALULA, "run", "--remote", "--no-wait", str(HELLO), "wf", "--name", "CLI"],
        env={**os.environ, "ALULA_ENDPOINT": f"127.0.0.1:{alula_server.grpc_port}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"execution {PROJECT}:{DOMAIN}:" in result.stdout


def test_fast_execute_unpacks_then_runs_the_command(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "shipped.py").write_text("VALUE = 42\n")
    archive = tmp_path / "bundle.tar.gz"
    archive.write_bytes(bundle(src))
    dest = tmp_path / "dest"
    command = [sys.executable, "-m", "alula.fast_execute"]
    run = subprocess.run(
        command
        + ["--additional-distribution", f"file://{archive}", "--dest-dir", str(dest), "--"]
        + [sys.executable, "-c", "import os, shipped; print(shipped.VALUE, os.getcwd())"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[0] == "42"
    assert (dest / "shipped.py").read_text() == "VALUE = 42\n"

    refused = subprocess.run(
        command + ["--additional-distribution", "nosuch://bucket/x.tar.gz", "--", "true"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "nosuch://bucket/x.tar.gz: cannot read this kind of URI" in refused.stderr
