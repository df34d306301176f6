"""Local runs through the Rust engine: every node kind, retries, timeouts, errors, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import local_samples as s
import pytest

from alula.core.local import TaskExecutionError, run

HERE = os.path.dirname(os.path.abspath(__file__))


def test_chain_and_defaults() -> None:
    assert s.chain() == 10
    assert s.chain(x=5) == 15


def test_multiple_outputs_and_shared_upstreams() -> None:
    assert s.diamond(x=2) == (9, 12)


@pytest.mark.parametrize("parallelism", [1, 4])
def test_map_tasks(parallelism: int) -> None:
    assert run(s.mapped, xs=[1, 2, 3, 4], parallelism=parallelism) == 30
    assert run(s.mapped_partial, xs=[1, 2], y=10, parallelism=parallelism) == [11, 12]
    assert s.mapped(xs=[]) == 0


def test_map_failures_below_and_above_the_success_ratio() -> None:
    assert s.tolerant_map(xs=[1, -1, 2, -2]) == 2
    with pytest.raises(TaskExecutionError) as info:
        s.strict_map(xs=[1, -1])
    assert "1 of 2 elements failed" in str(info.value)
    assert "negative input -1" in str(info.value)


def test_branches() -> None:
    assert s.branch(x=3) == 9
    assert s.branch(x=0) == 1
    with pytest.raises(TaskExecutionError, match="x must not be negative"):
        s.branch(x=-1)


def test_dynamic_subworkflow_and_launch_plan() -> None:
    assert s.dyn(n=4) == 0 + 1 + 4 + 9
    assert s.sub(x=1) == 12
    assert s.via_launch_plan() == 111  # the launch plan fixes x=100


def test_gates_with_local_answers() -> None:
    assert run(s.gates, x=3, signals={"factor": 5, "approve-y": True}) == 14
    with pytest.raises(TaskExecutionError, match="rejected"):
        run(s.gates, x=3, signals={"factor": 5, "approve-y": False})
    with pytest.raises(TaskExecutionError, match="nobody answered"):
        run(s.gates, x=3, signals={"approve-y": True})


def test_user_errors_are_retried_then_reported_with_the_call_site() -> None:
    assert s.retried(key="ok") == 3  # two failures, retries=2
    with pytest.raises(TaskExecutionError) as info:
        s.exhausted(key="bad")
    assert s.ATTEMPTS["bad"] == 2  # retries=1: two attempts
    message = str(info.value)
    assert "node n0" in message and "local_samples.py" in message and "(attempt 1)" in message
    assert "RuntimeError: broken bad" in message and "Traceback" in message
    assert isinstance(info.value.__cause__, RuntimeError)


def test_timeouts_fail_the_attempt_in_threaded_runs() -> None:
    with pytest.raises(TaskExecutionError, match="timeout"):
        run(s.times_out, x=1, parallelism=2)


def test_dataclasses_and_dataframes_cross_task_boundaries() -> None:
    assert s.points(p=s.Point(1.0, 2.0)) == s.Point(4.5, 2.0)
    assert s.frames(n=5) == 10


def test_inputs_are_checked() -> None:
    with pytest.raises(TypeError, match="missing inputs"):
        run(s.diamond)
    with pytest.raises(TypeError, match="unexpected inputs"):
        run(s.chain, y=1)
    with pytest.raises(TypeError, match="keyword arguments only"):
        s.chain(1)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alula.cli", "run", *args],
        capture_output=True,
        text=True,
        cwd=HERE,
        timeout=120,
    )


def test_cli_runs_a_workflow_with_typed_inputs() -> None:
    out = _cli("local_samples.py", "mapped", "--xs", "[1, 2, 3]")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "14"
    out = _cli("local_samples.py", "points", "--p", '{"x": 1, "y": 2}')
    assert out.stdout.strip() == "Point(x=4.5, y=2.0)", out.stderr
    out = _cli("local_samples.py", "mapped", "--help")
    assert "--xs XS" in out.stdout and "list[int]" in out.stdout


def test_cli_reports_failures_and_bad_input() -> None:
    out = _cli("local_samples.py", "branch", "--x", "-5")
    assert out.returncode == 1
    assert "x must not be negative" in out.stderr
    out = _cli("local_samples.py", "branch", "--x", "five")
    assert out.returncode == 2 and "--x" in out.stderr
    out = _cli("local_samples.py", "nope")
    assert out.returncode == 2 and "no workflow or task 'nope'" in out.stderr


def test_cacheable_tasks_run_once_per_input(monkeypatch: pytest.MonkeyPatch, tmp_path: str) -> None:
    monkeypatch.setenv("ALULA_CACHE_DIR", str(tmp_path))
    s.CALLS.clear()
    assert s.cached(x=2) == 6
    assert s.cached(x=2) == 6
    assert s.CALLS == [2], "the second run was a cache hit"
    assert s.cached(x=3) == 9
    assert run(s.cached, x=2, overwrite_cache=True) == 6
    assert s.CALLS == [2, 3, 2]
    out = subprocess.run(
        [sys.executable, "-m", "alula.cli", "cache", "clear"],
        capture_output=True,
        text=True,
        env={**os.environ, "ALULA_CACHE_DIR": str(tmp_path)},
        timeout=60,
    )
    assert "removed 2 cached outputs" in out.stdout, out.stderr
    assert s.cached(x=2) == 6
    assert s.CALLS == [2, 3, 2, 2]


def test_runs_longer_than_a_second_show_progress() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "alula.cli", "run", "local_samples.py", "sleepy_map", "--n", "45"],
        capture_output=True,
        text=True,
        cwd=HERE,
        env={**os.environ, "ALULA_PROGRESS": "1"},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    final = out.stderr.strip().split("\r")[-1]
    assert "2 succeeded" in final and "map elements: 45/45" in final, out.stderr


def test_process_pool_runs_task_bodies_in_worker_processes() -> None:
    pids = run(s.pids, xs=list(range(8)), parallelism=2, processes=True)
    assert len(pids) == 8
    assert os.getpid() not in pids
    assert run(s.mapped, xs=[1, 2, 3], parallelism=2, processes=True) == 14
