"""Remote runs of code defined in `__main__`, as in a notebook: each test runs a `python -c`
script (its `__main__` has no file, like a Jupyter kernel's) that defines tasks and workflows
and executes them on a real alula-server with propeller, where they run pickled on warm
workers. Nothing is written to a file by the scripts; a local module they import goes with them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer

from alula.remote import Remote

COMPOSE = Path(__file__).resolve().parents[1] / "sdk" / "compose_matrix.py"
TIMEOUT_S = 120

# Every script starts with a client whose calls are counted (`CALLS`, by RPC name), so a test
# can tell what reached the server.
PREAMBLE = """
import asyncio, json, sys
from alula import conditional, dynamic, map_task, task, workflow
from alula.remote import Remote

CALLS = []


def counted(remote):
    plain = remote.call

    def call(rpc, request):
        CALLS.append(rpc)
        return plain(rpc, request)

    remote.call = call
    return remote


remote = counted(Remote())


def version(ex):
    got = remote.call("GetExecution", {"id": ex.id_json()})
    return got["spec"]["launchPlan"]["version"]


def writes():
    # What changed something on the server: every call but reads and polls.
    return [c for c in CALLS if not c.startswith(("Get", "List"))]
"""


def run_main(server: RunningServer, script: str, cwd: Path, timeout: float = TIMEOUT_S) -> Any:
    """Runs `script` as `python -c` against `server`; the JSON its last line prints."""
    env = {
        **os.environ,
        "ALULA_ENDPOINT": f"127.0.0.1:{server.server.grpc_port}",
        "PYTHONPATH": "",  # only what the script's folder holds, besides the installed SDK
    }
    done = subprocess.run(
        [sys.executable, "-c", PREAMBLE + textwrap.dedent(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr
    result = json.loads(lines[-1])
    result["_stderr"] = done.stderr
    return result


@pytest.fixture(scope="module")
def remote(alula_cluster: RunningServer) -> Remote:
    return Remote(f"127.0.0.1:{alula_cluster.server.grpc_port}")


def test_a_main_workflow_runs_remotely_and_an_unchanged_one_registers_nothing(
    alula_cluster: RunningServer, remote: Remote, tmp_path: Path
) -> None:
    out = run_main(
        alula_cluster,
        """
        @task
        def greet(name: str) -> str:
            return f"hello {name}"

        @workflow
        def hello(name: str) -> str:
            return greet(name=name)

        out = {"local": hello(name="local")}
        ex = remote.execute(hello, {"name": "first"})
        out["first"] = remote.wait(ex, timeout=60, poll=0.05)
        out["writes1"] = writes()
        CALLS.clear()
        # The cell run again: nothing but the execution is created.
        ex = remote.execute(hello, {"name": "again"})
        out["again"] = asyncio.run(remote.wait_async(ex, timeout=60, poll=0.05))
        out["writes2"] = writes()
        out["version"] = version(ex)
        # A new client (a restarted kernel) asks the server once, and uploads nothing.
        CALLS.clear()
        fresh = counted(Remote())
        ex = fresh.execute(hello, {"name": "fresh"})
        out["fresh"] = fresh.wait(ex, timeout=60, poll=0.05)
        out["calls3"] = [c for c in CALLS if c not in ("GetExecution", "GetExecutionData")]
        # A task of the notebook runs on its own too.
        ex = remote.execute(greet, {"name": "task"})
        out["task"] = remote.wait(ex, timeout=60, poll=0.05)
        print(json.dumps(out))
        """,
        tmp_path,
    )
    assert out["local"] == "hello local"
    assert (out["first"], out["again"], out["fresh"]) == (
        "hello first",
        "hello again",
        "hello fresh",
    )
    assert out["task"] == "hello task"
    assert sorted(set(out["writes1"])) == [
        "CreateExecution",
        "CreateLaunchPlan",
        "CreateTask",
        "CreateUploadLocation",
        "CreateWorkflow",
    ]
    assert out["writes2"] == ["CreateExecution"]
    assert out["calls3"] == ["GetLaunchPlan", "CreateExecution"]
    # The server holds one version of the workflow's launch plan, named by content.
    listed = remote.call(
        "ListLaunchPlans",
        {
            "id": {"project": remote.project, "domain": remote.domain, "name": "__main__.hello"},
            "limit": 100,
        },
    )
    versions = {lp["id"]["version"] for lp in listed.get("launchPlans", [])}
    assert versions == {out["version"]}


def test_a_redefined_task_replaces_the_old_one_locally_and_remotely(
    alula_cluster: RunningServer, tmp_path: Path
) -> None:
    out = run_main(
        alula_cluster,
        """
        @task
        def step(x: int) -> int:
            return x + 1

        @workflow
        def flow(x: int) -> int:
            return step(x=x)

        out = {"local1": flow(x=1)}
        ex1 = remote.execute(flow, {"x": 1})
        out["remote1"] = remote.wait(ex1, timeout=60, poll=0.05)
        # The task's cell edited and run again; the workflow's cell is not.
        exec("@task\\ndef step(x: int) -> int:\\n    return x + 100\\n", globals())
        out["local2"] = flow(x=1)
        ex2 = remote.execute(flow, {"x": 1})
        out["remote2"] = remote.wait(ex2, timeout=60, poll=0.05)
        out["versions"] = [version(ex1), version(ex2)]
        print(json.dumps(out))
        """,
        tmp_path,
    )
    assert (out["local1"], out["remote1"]) == (2, 2)
    assert (out["local2"], out["remote2"]) == (101, 101)
    assert out["versions"][0] != out["versions"][1]


def test_an_unpicklable_reference_is_named_and_nothing_is_sent(
    alula_cluster: RunningServer, tmp_path: Path
) -> None:
    out = run_main(
        alula_cluster,
        """
        import threading
        from alula.interactive import NotPicklableError

        lock = threading.Lock()

        def guarded(x):
            with lock:
                return x

        @task
        def locked(x: int) -> int:
            return guarded(x)

        @workflow
        def flow(x: int) -> int:
            return locked(x=x)

        try:
            remote.execute(flow, {"x": 1})
            print(json.dumps({"error": None}))
        except NotPicklableError as e:
            print(json.dumps({"error": str(e), "calls": CALLS}))
        """,
        tmp_path,
    )
    assert out["error"] is not None, "the lock was pickled?"
    assert "task `locked` refers to `guarded` → `lock` (a _thread.lock)" in out["error"]
    assert out["calls"] == []


def test_map_dynamic_conditional_and_a_local_module(
    alula_cluster: RunningServer, tmp_path: Path
) -> None:
    # A module next to the notebook, which the tasks import: it goes in the code bundle.
    (tmp_path / "helpers.py").write_text("def triple(x):\n    return 3 * x\n")
    out = run_main(
        alula_cluster,
        """
        import helpers

        @task
        def square(x: int) -> int:
            return x * x

        @task
        def total(xs: list[int]) -> int:
            return sum(xs)

        @workflow
        def squares(xs: list[int]) -> int:
            return total(xs=map_task(square)(x=xs))

        @task
        def tripled(x: int) -> int:
            return helpers.triple(x)

        @task
        def one(x: int) -> int:
            return x + 1

        @dynamic
        def chain(n: int) -> int:
            x = tripled(x=n)
            for _ in range(n):
                x = one(x=x)
            return x

        @workflow
        def branchy(n: int) -> int:
            y = chain(n=n)
            return conditional("big").if_(y > 10).then(one(x=y)).else_().then(tripled(x=y))

        xs = list(range(1000))
        out = {"map_local": squares(xs=xs), "branchy_local": [branchy(n=3), branchy(n=1)]}
        started = [remote.execute(squares, {"xs": xs})]
        started += [remote.execute(branchy, {"n": n}) for n in (3, 1)]
        results = [remote.wait(ex, timeout=90, poll=0.1) for ex in started]
        out["map_remote"], out["branchy_remote"] = results[0], results[1:]
        print(json.dumps(out))
        """,
        tmp_path,
    )
    assert out["map_remote"] == out["map_local"] == sum(x * x for x in range(1000))
    assert out["branchy_remote"] == out["branchy_local"] == [13, 12]


def test_interrupting_a_wait_leaves_the_execution_running_and_says_so(
    alula_cluster: RunningServer, tmp_path: Path
) -> None:
    out = run_main(
        alula_cluster,
        """
        import _thread, threading, time

        @task
        def slow(x: int) -> int:
            time.sleep(60)
            return x

        @workflow
        def sleepy(x: int) -> int:
            return slow(x=x)

        ex = remote.execute(sleepy, {"x": 1})
        while remote.phase(ex) != "RUNNING":
            time.sleep(0.05)
        threading.Timer(0.5, _thread.interrupt_main).start()
        out = {"name": ex.name}
        try:
            remote.wait(ex)
        except KeyboardInterrupt:
            out["interrupted"] = True
        out["phase_after_interrupt"] = remote.phase(ex)

        async def cancel_a_waiting_task():
            waiting = asyncio.ensure_future(remote.wait_async(ex, poll=0.05))
            ticks = 0
            for _ in range(10):  # the loop goes on while the wait is in progress
                await asyncio.sleep(0.05)
                ticks += 1
            waiting.cancel()
            try:
                await waiting
            except asyncio.CancelledError:
                return ticks
            return -1

        out["ticks"] = asyncio.run(cancel_a_waiting_task())
        out["phase_after_cancel"] = remote.phase(ex)
        remote.terminate(ex)
        print(json.dumps(out))
        """,
        tmp_path,
    )
    assert out["interrupted"] is True
    assert out["phase_after_interrupt"] == out["phase_after_cancel"] == "RUNNING"
    assert out["ticks"] == 10
    said = out["_stderr"]
    assert said.count(f"execution {out['name']} is still running") == 2, said
    assert f"alula terminate {out['name']}" in said


def test_composition_matrix_to_depth_3_runs_remotely(
    alula_cluster: RunningServer, tmp_path: Path
) -> None:
    started = time.monotonic()
    out = run_main(
        alula_cluster,
        f"""
        source = open({str(COMPOSE)!r}).read()
        exec(compile(source, "<cell>", "exec"), globals())  # the matrix defined in a cell
        combos = [c for c in combinations(3) if len(c) == 3]
        for combo in combos:
            globals()[combo_name(combo)] = build(combo)
        registration = remote.register(sys.modules["__main__"])
        runs = [(c, x, remote.execute(combo_name(c), {{"x": x}})) for c in combos for x in (3, -2)]
        wrong = []
        for combo, x, ex in runs:
            try:
                got = remote.wait(ex, timeout=120, poll=0.1)
            except Exception as e:  # every failing combination is listed, not the first
                got = type(e).__name__ + ": " + str(e)[-80:]
            if got != expected(combo, x):
                wrong.append([combo, x, got, expected(combo, x)])
        print(json.dumps({{"runs": len(runs), "wrong": wrong}}))
        """,
        tmp_path,
        timeout=300,
    )
    assert out["runs"] == 2 * 4**3
    assert out["wrong"] == []
    print(f"composition matrix: {out['runs']} remote runs in {time.monotonic() - started:.1f}s")
