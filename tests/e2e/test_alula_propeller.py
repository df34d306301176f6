"""Remote execution of Alula workflows: `Remote.register` a file of workflows, run them against
admin + propeller (Alula tasks run on warm Python workers), and compare with what the same
workflow returns when run locally."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import RunningServer

from alula import _native
from alula.core.local import TaskExecutionError
from alula.core.package import load_module
from alula.remote import Execution, ExecutionFailed, Registration, Remote

REPO = Path(__file__).resolve().parents[2]
FLOWS = Path(__file__).parent / "flows" / "alula_flows.py"
HELLO = REPO / "examples" / "hello.py"
ALULA = Path(sys.executable).parent / "alula"
ADMIN = "/flyteidl.service.AdminService/"
TIMEOUT_S = 60


@pytest.fixture(scope="module")
def remote(alula_cluster: RunningServer) -> Remote:
    return Remote(f"127.0.0.1:{alula_cluster.server.grpc_port}")


@pytest.fixture(scope="module")
def registration(remote: Remote) -> Registration:
    return remote.register(FLOWS)


@pytest.fixture(scope="module")
def flows(registration: Registration) -> ModuleType:
    """The registered module itself (imported by `register`), for local runs."""
    return load_module(str(FLOWS))


@pytest.fixture(autouse=True)
def local_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Local runs cache in a folder of their own."""
    monkeypatch.setenv("ALULA_CACHE_DIR", str(tmp_path / "local-cache"))


def run(remote: Remote, name: str, **inputs: Any) -> Any:
    """Runs the workflow remotely; its outputs as a local run returns them."""
    execution = remote.execute(name, inputs)
    return remote.wait(execution, timeout=TIMEOUT_S)


def call(remote: Remote, rpc: str, request: tuple[str, Any], response: str) -> Any:
    """An admin RPC that `Remote.call` does not know."""
    name, body = request
    data = _native.message_from_json(name, json.dumps(body))
    out = _native.grpc_unary(remote.endpoint, ADMIN + rpc, data, 30.0)
    return json.loads(_native.message_to_json(response, out))


def node_executions(remote: Remote, execution: Execution) -> dict[str, Any]:
    request = {"workflowExecutionId": execution.id_json(), "limit": 100}
    found = call(
        remote,
        "ListNodeExecutions",
        ("flyteidl.admin.NodeExecutionListRequest", request),
        "flyteidl.admin.NodeExecutionList",
    )
    return {n["id"]["nodeId"]: n for n in found.get("nodeExecutions", [])}


def task_executions(remote: Remote, node: dict[str, Any]) -> list[Any]:
    request = {"nodeExecutionId": node["id"], "limit": 100}
    found = call(
        remote,
        "ListTaskExecutions",
        ("flyteidl.admin.TaskExecutionListRequest", request),
        "flyteidl.admin.TaskExecutionList",
    )
    return list(found.get("taskExecutions", []))


def test_several_tasks(remote: Remote, flows: ModuleType) -> None:
    execution = remote.execute("chain", {"x": 4, "label": "sum"}, wait=True)
    assert remote.phase(execution) == "SUCCEEDED"
    assert remote.outputs(execution) == {"o0": "sum=24"}
    assert remote.wait(execution) == flows.chain(x=4, label="sum") == "sum=24"
    # Defaults come from the launch plan.
    assert run(remote, "chain") == flows.chain() == "total=18"


def test_map_task(remote: Remote, flows: ModuleType) -> None:
    xs = [3, 1, 4, 1, 5]
    assert run(remote, "mapped", xs=xs) == flows.mapped(xs=xs) == 52


def test_branch_both_ways(remote: Remote, flows: ModuleType) -> None:
    assert run(remote, "branching", x=5) == flows.branching(x=5) == "positive"
    assert run(remote, "branching", x=-2) == flows.branching(x=-2) == "neg=-2"


def test_dynamic(remote: Remote, flows: ModuleType) -> None:
    assert run(remote, "dynamic_wf", n=4) == flows.dynamic_wf(n=4) == 12


def test_dynamic_without_nodes(remote: Remote) -> None:
    assert run(remote, "dynamic_wf", n=0) == 0


def test_empty_list_input(remote: Remote, flows: ModuleType) -> None:
    assert run(remote, "mapped", xs=[]) == flows.mapped(xs=[]) == 0


def test_failures_are_retried(remote: Remote, flows: ModuleType, tmp_path: Path) -> None:
    marker = tmp_path / "attempts"
    execution = remote.execute("retrying", {"marker": str(marker)})
    assert remote.wait(execution, timeout=TIMEOUT_S) == 3
    assert marker.read_text() == "3"
    attempts = task_executions(remote, node_executions(remote, execution)["n0"])
    phases = sorted(
        (t["id"]["retryAttempt"] if "retryAttempt" in t["id"] else 0, t["closure"]["phase"])
        for t in attempts
    )
    assert phases == [(0, "RETRYABLE_FAILED"), (1, "RETRYABLE_FAILED"), (2, "SUCCEEDED")]
    local_marker = tmp_path / "local-attempts"
    assert flows.retrying(marker=str(local_marker)) == 3
    assert local_marker.read_text() == "3"


def test_failure_reaches_the_client(remote: Remote, flows: ModuleType) -> None:
    execution = remote.execute("failing", {"x": 7})
    with pytest.raises(ExecutionFailed) as raised:
        remote.wait(execution, timeout=TIMEOUT_S)
    assert raised.value.phase == "FAILED"
    assert "broken on purpose with x=7" in raised.value.message
    assert "broken on purpose with x=7" in str(raised.value)
    with pytest.raises(TaskExecutionError, match="broken on purpose with x=7"):
        flows.failing(x=7)
    # Alula retries any exception: retries=1 makes two attempts.
    node = node_executions(remote, execution)["n0"]
    assert node["closure"]["phase"] == "FAILED"
    phases = sorted(t["closure"]["phase"] for t in task_executions(remote, node))
    assert phases == ["FAILED", "RETRYABLE_FAILED"]
    assert run(remote, "failing", x=0) == flows.failing(x=0) == 0


def test_cached_task_runs_once(remote: Remote, flows: ModuleType, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    first = remote.execute("cached", {"x": 5, "log": str(log)})
    assert remote.wait(first, timeout=TIMEOUT_S) == 105
    second = remote.execute("cached", {"x": 5, "log": str(log)})
    assert remote.wait(second, timeout=TIMEOUT_S) == 105
    assert log.read_text().splitlines() == ["5"]
    status = node_executions(remote, first)["n0"]["closure"]["taskNodeMetadata"]["cacheStatus"]
    assert status == "CACHE_POPULATED"
    status = node_executions(remote, second)["n0"]["closure"]["taskNodeMetadata"]["cacheStatus"]
    assert status == "CACHE_HIT"
    # Other inputs miss the cache.
    assert run(remote, "cached", x=6, log=str(log)) == 106
    assert log.read_text().splitlines() == ["5", "6"]
    local_log = tmp_path / "local.log"
    assert flows.cached(x=5, log=str(local_log)) == 105
    assert local_log.read_text().splitlines() == ["5"]


def _alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_terminate_kills_the_worker(remote: Remote, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    execution = remote.execute("slow", {"seconds": 300, "pid_file": str(pid_file)})
    deadline = time.monotonic() + TIMEOUT_S
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, remote.phase(execution)
        time.sleep(0.1)
    pid = int(pid_file.read_text())
    # The task runs in a warm worker, not a process of its own.
    assert "alula.worker" in Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    assert remote.phase(execution) == "RUNNING"
    remote.terminate(execution, "enough waiting")
    deadline = time.monotonic() + 30
    while (phase := remote.phase(execution)) != "ABORTED":
        assert phase in ("RUNNING", "ABORTING"), phase
        assert time.monotonic() < deadline, phase
        time.sleep(0.1)
    with pytest.raises(ExecutionFailed) as raised:
        remote.wait(execution, timeout=5)
    assert raised.value.phase == "ABORTED"
    assert raised.value.message == "enough waiting"
    # The worker running the attempt was killed...
    deadline = time.monotonic() + 10
    while _alive(pid):
        assert time.monotonic() < deadline, f"worker {pid} survived the abort"
        time.sleep(0.1)
    # ... and the pool runs the next attempts on a fresh one.
    next_pid = tmp_path / "next-pid"
    assert run(remote, "slow", seconds=0, pid_file=str(next_pid)) == 0
    assert int(next_pid.read_text()) != pid
    assert run(remote, "chain", x=1) == "total=6"


def test_cli_run_remote(alula_cluster: RunningServer) -> None:
    endpoint = f"127.0.0.1:{alula_cluster.server.grpc_port}"
    result = subprocess.run(
        [ALULA, "run", "--remote", "--endpoint", endpoint, str(HELLO), "wf", "--name", "X"],
        env={k: v for k, v in os.environ.items() if k != "ALULA_ENDPOINT"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "Hello, X!"
