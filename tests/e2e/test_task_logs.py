"""Logs per attempt: what a failing task prints to stdout and stderr is kept per attempt and
read back through admin's log route (`Remote.logs`, which follows the links task events carry),
for Alula tasks on warm workers and as plain processes (warm workers off)."""

from __future__ import annotations

import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import RunningServer, start_server

from alula.remote import ExecutionFailed, Remote

TIMEOUT_S = 90

FLOW = """
import os
import sys

from alula import task, workflow


@task(retries=1)
def noisy(x: int) -> int:
    attempt = os.environ.get("FLYTE_ATTEMPT_NUMBER")
    print(f"stdout of attempt {attempt}")
    print(f"stderr of attempt {attempt}", file=sys.stderr)
    # Written below Python too: a child process inherits the descriptors.
    os.system(f"echo child-stderr-{attempt} >&2")
    raise ValueError(f"broken on purpose in attempt {attempt}")


@workflow
def noisy_wf(x: int = 1) -> int:
    return noisy(x=x)
"""


@pytest.fixture(scope="module", params=["warm", "process"])
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """Admin and propeller; Alula tasks on warm workers, or as processes (no warm workers)."""
    env = {"ALULA_WARM_WORKERS": "0"} if request.param == "process" else {}
    running = start_server(tmp_path_factory.mktemp(f"logs-{request.param}"), True, env)
    try:
        yield running
    finally:
        code = running.stop()
    assert code == 0, f"alula-server exited with {code}:\n{running.server.log_file.read_text()}"


def test_failed_attempts_stderr_is_read_through_the_api(
    cluster: RunningServer, tmp_path: Path
) -> None:
    flow = tmp_path / "noisy_flow.py"
    flow.write_text(textwrap.dedent(FLOW))
    remote = Remote(f"127.0.0.1:{cluster.server.grpc_port}")
    remote.register(flow)
    execution = remote.execute("noisy_wf", {"x": 1})
    with pytest.raises(ExecutionFailed):
        remote.wait(execution, timeout=TIMEOUT_S)

    for attempt in (0, 1):
        stderr = remote.logs(execution, "n0", attempt=attempt)
        assert f"stderr of attempt {attempt}" in stderr
        assert f"child-stderr-{attempt}" in stderr
        # The task's traceback is in its stderr log too, not only in error.pb.
        assert f"ValueError: broken on purpose in attempt {attempt}" in stderr
        # Only this attempt's output, and no stdout.
        other = 1 - attempt
        assert f"of attempt {other}" not in stderr
        assert f"stdout of attempt {attempt}" not in stderr
        stdout = remote.logs(execution, "n0", attempt=attempt, stream="stdout")
        assert f"stdout of attempt {attempt}" in stdout
        assert "stderr of attempt" not in stdout
    # The default is the last attempt.
    assert "stderr of attempt 1" in remote.logs(execution, "n0")

    # The route itself: 404 for an attempt that never ran.
    missing = (
        f"http://127.0.0.1:{cluster.server.http_port}/api/v1/logs/flytesnacks/development/"
        f"{execution.name}/n0/7/stderr"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(missing, timeout=10)
    assert refused.value.code == 404


MAP_FLOW = """
import sys

from alula import map_task, task, workflow


@task
def shout(x: int) -> int:
    print(f"stdout of element {x}")
    print(f"stderr of element {x}", file=sys.stderr)
    if x == 1:
        raise ValueError("element 1 fails on purpose")
    return x


@workflow
def shout_wf(xs: list[int]) -> None:
    map_task(shout, min_successes=2)(x=xs)
"""


def test_a_map_elements_logs_are_read_by_index(cluster: RunningServer, tmp_path: Path) -> None:
    flow = tmp_path / "shout_flow.py"
    flow.write_text(textwrap.dedent(MAP_FLOW))
    remote = Remote(f"127.0.0.1:{cluster.server.grpc_port}")
    remote.register(flow)
    execution = remote.execute("shout_wf", {"xs": [0, 1, 2]})
    remote.wait(execution, timeout=TIMEOUT_S)

    for index in (0, 1, 2):
        stdout = remote.logs(execution, "n0", stream="stdout", index=index)
        assert f"stdout of element {index}" in stdout
        assert "stdout of element" not in stdout.replace(f"stdout of element {index}", "")
        stderr = remote.logs(execution, "n0", index=index)
        assert f"stderr of element {index}" in stderr
    assert "ValueError: element 1 fails on purpose" in remote.logs(execution, "n0", index=1)
    with pytest.raises(LookupError, match="no element 3"):
        remote.logs(execution, "n0", index=3)
