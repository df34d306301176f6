"""Crash test: kill -9 the server while an execution with many tasks runs, start it again, and
the execution finishes with correct outputs; no task attempt starts twice under the same
attempt number, and no node gets a second terminal event."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import RunningServer, start_server
from flytekit.configuration import Config
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.remote import FlyteRemote

FLOWS = Path(__file__).parent / "flows"
PYFLYTE = Path(sys.executable).parent / "pyflyte"
VERSION = "crash-v1"
ELEMENTS = 12
# flyteidl NodeExecution.Phase: SUCCEEDED, FAILED, ABORTED, SKIPPED, TIMED_OUT, RECOVERED.
TERMINAL_NODE_PHASES = {3, 5, 6, 7, 8, 10}


@pytest.fixture
def crashing(tmp_path: Path) -> Iterator[tuple[RunningServer, Path]]:
    log = tmp_path / "attempts.log"
    env = {
        "ALULA_TEST_ATTEMPT_LOG": str(log),
        # Tasks get only the variables the server passes on (`task_env`).
        "ALULA_TASK_ENV": "ALULA_TEST_ATTEMPT_LOG",
        "RUST_LOG": "info,sqlx=warn,alula_propeller::driver=debug",
    }
    running = start_server(tmp_path, propeller=True, extra_env=env)
    try:
        yield running, log
    finally:
        if running.proc.poll() is None:
            running.stop()


def test_kill_9_and_restart(crashing: tuple[RunningServer, Path], tmp_path: Path) -> None:
    running, log = crashing
    src = tmp_path / "src"
    shutil.copytree(FLOWS, src / "flows")
    config = running.server.config_file
    done = subprocess.run(
        [PYFLYTE, "--config", config, "register", "--version", VERSION, "flows"],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    remote = FlyteRemote(
        Config.auto(config_file=str(config)),
        default_project="flytesnacks",
        default_domain="development",
    )
    lp = remote.fetch_launch_plan(name="flows.flytekit_flows.many", version=VERSION)
    xs = list(range(1, ELEMENTS + 1))
    execution = remote.execute(lp, inputs={"xs": xs}, wait=False)

    # Kill it mid-flight: once some elements have started, before all are done.
    deadline = time.monotonic() + 120
    while not log.exists() or len(log.read_text().splitlines()) < 3:
        assert time.monotonic() < deadline, running.server.log_file.read_text()
        time.sleep(0.1)
    assert running.stop(signal.SIGKILL) == -signal.SIGKILL
    started_before = len(log.read_text().splitlines())
    assert started_before < ELEMENTS + 1

    running.restart()
    done_execution = remote.wait(execution, timeout=300, poll_interval=0.5)
    assert done_execution.closure.phase == WorkflowExecutionPhase.SUCCEEDED, done_execution.error
    assert done_execution.outputs["o0"] == sum(x * 10 for x in xs)

    attempts = Counter(tuple(line.split()) for line in log.read_text().splitlines())
    assert set(x for x, _ in attempts) == {str(x) for x in xs}
    assert all(n == 1 for n in attempts.values()), attempts  # no (element, attempt) twice

    # Every node's terminal event was delivered once, across both server lives.
    delivered = Counter(
        (m.group(1), int(m.group(2)))
        for m in re.finditer(
            r'delivering node event node="?([\w-]+)"? phase=(\d+)',
            re.sub(r"\x1b\[[0-9;]*m", "", running.server.log_file.read_text()),
        )
    )
    terminal = {k: n for k, n in delivered.items() if k[1] in TERMINAL_NODE_PHASES}
    assert terminal, "no terminal node events were logged"
    assert all(n == 1 for n in terminal.values()), terminal
