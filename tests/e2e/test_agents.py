"""Agent tasks end to end: flytekit's own agent server (`pyflyte serve agent`, with flytekit's
built-in FileSensor agent) and the test agent of tests/agents/counting_agent.py, both real gRPC
servers, called by a real alula-server configured with their endpoints; workflows registered
with `pyflyte register` and run with FlyteRemote."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from conftest import RunningServer, start_server
from flyteidl.admin import agent_pb2
from flyteidl.service import agent_pb2_grpc
from flytekit.configuration import Config
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.remote import FlyteRemote
from flytekit.remote.executions import FlyteWorkflowExecution

HERE = Path(__file__).parent
PYFLYTE = Path(sys.executable).parent / "pyflyte"
COUNTING_AGENT = HERE.parent / "agents" / "counting_agent.py"
VERSION = "agents-v1"
WAIT_S = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the agent exited early:\n{log.read_text()}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the agent did not listen on {port}:\n{log.read_text()}")


def _start(argv: list[str | Path], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    _wait_for_port(port, proc, log)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


class Agents:
    def __init__(self, work: Path) -> None:
        self.state = work / "agent-state"
        self.flytekit_port = _free_port()
        self.counting_port = _free_port()
        self.flytekit = _start(
            [
                PYFLYTE,
                "serve",
                "agent",
                "--port",
                str(self.flytekit_port),
                "--prometheus_port",
                str(_free_port()),
            ],
            self.flytekit_port,
            work / "flytekit-agent.log",
        )
        self.counting = _start(
            [sys.executable, COUNTING_AGENT, str(self.counting_port), self.state],
            self.counting_port,
            work / "counting-agent.log",
        )

    def lines(self, name: str) -> list[str]:
        path = self.state / name
        return path.read_text().splitlines() if path.exists() else []

    def settings(self) -> str:
        return (
            "[plugins.agent]\n"
            "poll_interval_ms = 200\n"
            "discovery_interval_seconds = 5\n"
            "[plugins.agent.agents.flytekit]\n"
            f'endpoint = "http://127.0.0.1:{self.flytekit_port}"\n'
            "[plugins.agent.agents.counting]\n"
            f'endpoint = "dns:///127.0.0.1:{self.counting_port}"\n'
        )


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agents]:
    running = Agents(tmp_path_factory.mktemp("agents"))
    try:
        yield running
    finally:
        _stop(running.flytekit)
        _stop(running.counting)


@pytest.fixture(scope="module")
def server(agents: Agents, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    work = tmp_path_factory.mktemp("agent-server")
    running = start_server(work, propeller=True, settings=agents.settings())
    try:
        src = work / "src"
        shutil.copytree(HERE / "agent_flows", src / "agent_flows")
        done = subprocess.run(
            [
                PYFLYTE,
                "--config",
                running.server.config_file,
                "register",
                "--version",
                VERSION,
                "agent_flows",
            ],
            cwd=src,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr + running.server.log_file.read_text()
        yield running
    finally:
        if running.proc.poll() is None:
            running.stop()


def _remote(server: RunningServer) -> FlyteRemote:
    return FlyteRemote(
        Config.auto(config_file=str(server.server.config_file)),
        default_project="flytesnacks",
        default_domain="development",
    )


def _launch(server: RunningServer, workflow: str, **inputs: object) -> FlyteWorkflowExecution:
    remote = _remote(server)
    lp = remote.fetch_launch_plan(name=f"agent_flows.agent_flows.{workflow}", version=VERSION)
    return remote.execute(lp, inputs=inputs, wait=False)


def _wait(server: RunningServer, execution: FlyteWorkflowExecution) -> FlyteWorkflowExecution:
    return _remote(server).wait(execution, timeout=WAIT_S, poll_interval=0.5)


def _until(what: str, check: object, server: RunningServer) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}:\n{server.server.log_file.read_text()[-5000:]}"
        time.sleep(0.2)


def test_admin_lists_the_configured_agents(server: RunningServer) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.server.grpc_port}") as channel:
        stub = agent_pb2_grpc.AgentMetadataServiceStub(channel)
        listed = stub.ListAgents(agent_pb2.ListAgentsRequest(), timeout=30)
        names = {a.name for a in listed.agents}
        categories = {c.name for a in listed.agents for c in a.supported_task_categories}
        assert {"Counting Agent", "Echo Agent"} <= names, names
        assert {"sensor", "counting_task", "echo_task"} <= categories, categories
        echo = stub.GetAgent(agent_pb2.GetAgentRequest(name="Echo Agent"), timeout=30)
        assert echo.agent.is_sync
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetAgent(agent_pb2.GetAgentRequest(name="No Such Agent"), timeout=30)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_file_sensor_waits_for_the_file_then_the_workflow_continues(
    server: RunningServer, tmp_path: Path
) -> None:
    path = tmp_path / "arrives-later.txt"
    execution = _launch(server, "sensor_wf", path=str(path))
    remote = _remote(server)
    # The sensor runs on flytekit's agent and keeps waiting while the file is missing.
    time.sleep(5)
    waiting = remote.sync_execution(remote.fetch_execution(name=execution.id.name), sync_nodes=True)
    assert waiting.closure.phase == WorkflowExecutionPhase.RUNNING, waiting.error
    path.write_text("hello from the test\n")
    done = _wait(server, execution)
    assert done.closure.phase == WorkflowExecutionPhase.SUCCEEDED, done.error
    assert done.outputs["o0"] == "read: hello from the test"


def test_sync_agent_answers_in_one_call(server: RunningServer, agents: Agents) -> None:
    done = _wait(server, _launch(server, "echo_wf", x=41))
    assert done.closure.phase == WorkflowExecutionPhase.SUCCEEDED, done.error
    assert done.outputs["o0"] == 42
    assert any("agent_flows.echo" in line for line in agents.lines("sync_calls"))


def test_a_failing_agent_tasks_message_reaches_the_client(
    server: RunningServer, agents: Agents
) -> None:
    (agents.state / "release").touch()
    try:
        done = _wait(server, _launch(server, "failing_wf", x=3))
    finally:
        (agents.state / "release").unlink()
    assert done.closure.phase == WorkflowExecutionPhase.FAILED
    assert done.error is not None
    assert "quota exceeded" in done.error.message, done.error.message


def test_abort_deletes_the_agent_task(server: RunningServer, agents: Agents) -> None:
    execution = _launch(server, "counting_wf", x=5)
    name = execution.id.name
    _until(
        "CreateTask was called",
        lambda: any(name in line for line in agents.lines("creates")),
        server,
    )
    remote = _remote(server)
    remote.terminate(execution, cause="the test aborts it")
    _until(
        "DeleteTask was called",
        lambda: any(name in line for line in agents.lines("deletes")),
        server,
    )
    done = _wait(server, execution)
    assert done.closure.phase == WorkflowExecutionPhase.ABORTED


def test_kill_9_while_an_agent_task_runs_creates_it_once(
    server: RunningServer, agents: Agents
) -> None:
    execution = _launch(server, "counting_wf", x=20)
    name = execution.id.name
    _until(
        "CreateTask was called",
        lambda: any(name in line for line in agents.lines("creates")),
        server,
    )
    time.sleep(1)  # polling has begun
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    server.restart()
    (agents.state / "release").touch()
    try:
        done = _wait(server, execution)
    finally:
        (agents.state / "release").unlink()
    assert done.closure.phase == WorkflowExecutionPhase.SUCCEEDED, done.error
    assert done.outputs["o0"] == 20 * 2 + 1
    creates = [line for line in agents.lines("creates") if name in line]
    assert len(creates) == 1, creates


def test_a_task_no_plugin_runs_is_refused_at_registration(
    server: RunningServer, tmp_path: Path
) -> None:
    shutil.copytree(HERE / "unserved_flows", tmp_path / "unserved_flows")
    done = subprocess.run(
        [
            PYFLYTE,
            "--config",
            server.server.config_file,
            "register",
            "--version",
            VERSION,
            "unserved_flows",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "warehouse_query" in out and "no plugin" in out, out
