"""Remote execution with the real flytekit: `pyflyte register` a package of workflows, run them
with `FlyteRemote.execute(..., wait=True)` against admin + propeller, and compare with what
flytekit's own local run returns."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer, pyflyte_register
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.remote import FlyteRemote
from flytekit.remote.executions import FlyteWorkflowExecution

FLOWS = Path(__file__).parent / "flows"
PYFLYTE = Path(sys.executable).parent / "pyflyte"
PROJECT, DOMAIN, VERSION = "flytesnacks", "development", "prop-v1"
TIMEOUT_S = 180


@pytest.fixture(scope="module")
def remote(alula_cluster: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> FlyteRemote:
    root = tmp_path_factory.mktemp("src")
    shutil.copytree(FLOWS, root / "flows")
    return pyflyte_register(alula_cluster.server.config_file, root, "flows", VERSION)


def run(remote: FlyteRemote, name: str, **inputs: Any) -> FlyteWorkflowExecution:
    lp = remote.fetch_launch_plan(name=f"flows.flytekit_flows.{name}", version=VERSION)
    execution = remote.execute(lp, inputs=inputs, wait=False)
    return remote.wait(execution, timeout=TIMEOUT_S, poll_interval=0.2)


def local(name: str, **inputs: Any) -> Any:
    """The same workflow run by flytekit locally, in this process."""
    sys.path.insert(0, str(FLOWS.parent))
    try:
        from flows import flytekit_flows

        return getattr(flytekit_flows, name)(**inputs)
    finally:
        sys.path.remove(str(FLOWS.parent))


def succeeded(execution: FlyteWorkflowExecution) -> dict[str, Any]:
    assert execution.closure.phase == WorkflowExecutionPhase.SUCCEEDED, execution.error
    return dict(execution.outputs)


def test_several_tasks(remote: FlyteRemote) -> None:
    assert succeeded(run(remote, "chain", x=4, label="sum"))["o0"] == local(
        "chain", x=4, label="sum"
    )


def test_map_task(remote: FlyteRemote) -> None:
    xs = [3, 1, 4, 1, 5]
    assert succeeded(run(remote, "mapped", xs=xs))["o0"] == local("mapped", xs=xs) == 52


def test_branch_both_ways(remote: FlyteRemote) -> None:
    assert succeeded(run(remote, "branching", x=5))["o0"] == local("branching", x=5)
    assert succeeded(run(remote, "branching", x=-2))["o0"] == local("branching", x=-2)


def test_dynamic(remote: FlyteRemote) -> None:
    assert succeeded(run(remote, "dynamic_wf", n=4))["o0"] == local("dynamic_wf", n=4) == 12


def test_recoverable_failures_are_retried(remote: FlyteRemote, tmp_path: Path) -> None:
    marker = tmp_path / "attempts"
    assert succeeded(run(remote, "retrying", marker=str(marker)))["o0"] == 3
    assert marker.read_text() == "3"


def test_failure_reaches_the_client(remote: FlyteRemote) -> None:
    execution = run(remote, "failing", x=7)
    assert execution.closure.phase == WorkflowExecutionPhase.FAILED
    assert "broken on purpose with x=7" in execution.error.message
    # flytekit marks a plain exception NON_RECOVERABLE: Flyte does not retry it.
    node = remote.client.list_node_executions(execution.id, limit=10)[0]
    tasks = remote.client.list_task_executions_paginated(
        [n for n in node if n.id.node_id == "n0"][0].id, limit=10
    )[0]
    assert len(tasks) == 1


def test_cached_task_runs_once(remote: FlyteRemote, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    first = run(remote, "cached", x=5, log=str(log))
    second = run(remote, "cached", x=5, log=str(log))
    assert succeeded(first) == succeeded(second) == {"o0": 105}
    assert log.read_text().splitlines() == ["5"]
    nodes = {n.id.node_id: n for n in remote.client.list_node_executions(second.id, limit=10)[0]}
    cache_status = nodes["n0"].closure.task_node_metadata.cache_status
    assert cache_status == 2  # CACHE_HIT


def test_terminate_stops_the_task(remote: FlyteRemote, alula_cluster: RunningServer) -> None:
    lp = remote.fetch_launch_plan(name="flows.flytekit_flows.slow", version=VERSION)
    execution = remote.execute(lp, inputs={"seconds": 300}, wait=False)
    deadline = time.monotonic() + TIMEOUT_S
    while (
        remote.fetch_execution(name=execution.id.name).closure.phase
        != WorkflowExecutionPhase.RUNNING
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(3)  # let the task process start
    remote.terminate(execution, cause="enough waiting")
    done = remote.wait(execution, timeout=60, poll_interval=0.2, sync_nodes=False)
    assert done.closure.phase == WorkflowExecutionPhase.ABORTED
    assert done.closure.abort_metadata.cause == "enough waiting"
    # No process of that attempt survives the abort.
    work = alula_cluster.server.storage_root / "work" / "process"
    deadline = time.monotonic() + 10
    while True:
        alive = subprocess.run(["pgrep", "-f", "sleepy"], capture_output=True, text=True).stdout
        if not alive.strip() or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not alive.strip(), alive
    assert any(work.iterdir())


@pytest.mark.parametrize(
    ("entity", "args", "expected"),
    [("chain", ["--x", "2"], "total=12"), ("double", ["--x", "3"], 6)],
    ids=["workflow", "single-task"],
)
def test_pyflyte_run_remote(
    remote: FlyteRemote,
    alula_cluster: RunningServer,
    tmp_path: Path,
    entity: str,
    args: list[str],
    expected: object,
) -> None:
    """`pyflyte run --remote --wait` registers the script (fast), runs it and waits."""
    shutil.copytree(FLOWS, tmp_path / "flows")
    done = subprocess.run(
        [PYFLYTE, "--config", alula_cluster.server.config_file, "run", "--remote", "--wait"]
        + ["flows/flytekit_flows.py", entity, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    name = re.search(r"Execution (\w+) has succeeded", done.stdout)
    assert name, done.stdout
    execution = remote.sync_execution(remote.fetch_execution(name=name.group(1)))
    assert execution.outputs["o0"] == expected
