"""Gates and logs through `alula`: list an execution's signals, reject a bad value, set one,
approve one (the execution then finishes), reject another; read a finished attempt's logs and
follow a running one with `logs -f`."""

from __future__ import annotations

import subprocess
import time

from conftest import ALULA, DOMAIN, PROJECT, Cli

from alula.remote import Execution, ExecutionFailed


def _signals(cli: Cli, execution: Execution, count: int) -> dict[str, dict[str, object]]:
    """The execution's signals, once its gates have created `count` of them."""
    deadline = time.monotonic() + 30
    while True:
        listed = cli.json("get", "signals", execution.name)
        signals = {s["id"]["signalId"]: s for s in listed.get("signals", [])}
        if len(signals) >= count:
            return signals
        assert time.monotonic() < deadline, listed
        time.sleep(0.2)


def test_set_and_approve_gates(cli: Cli) -> None:
    execution = cli.remote.execute("gated", {"x": 4})
    signals = _signals(cli, execution, 2)
    assert signals["factor"]["type"] == {"simple": "INTEGER"}
    assert "value" not in signals["ship-it"]
    table = cli.ok("get", "signals", execution.name)
    assert "ship-it" in table and "(waiting)" in table
    assert "expected an integer" in cli.fails("set-signal", execution.name, "factor", "lots")
    assert "not an approval" in cli.fails("approve", execution.name, "factor")
    assert "no signal 'nope'" in cli.fails("approve", execution.name, "nope", code=1)
    assert "required" in cli.fails("approve", execution.name)
    cli.ok("set-signal", execution.name, "factor", "3")
    out = cli.ok("approve", f"{PROJECT}:{DOMAIN}:{execution.name}", "ship-it")
    assert "approved" in out
    assert cli.remote.wait(execution, timeout=60) == 15  # (4 + 1) * 3


def test_reject_fails_the_execution(cli: Cli) -> None:
    execution = cli.remote.execute("gated", {"x": 1})
    _signals(cli, execution, 2)
    cli.ok("set-signal", execution.name, "factor", "2")
    assert "rejected" in cli.ok("reject", execution.name, "ship-it")
    try:
        cli.remote.wait(execution, timeout=60)
    except ExecutionFailed as e:
        assert e.phase in ("FAILED", "ABORTED")
    else:
        raise AssertionError("a rejected gate let the execution succeed")


def test_logs_of_a_finished_attempt(cli: Cli) -> None:
    ok = cli.remote.execute("adder", {"a": 20, "b": 22})
    cli.remote.wait(ok, timeout=60)
    assert cli.ok("logs", ok.name, "n0") == "adding 20 and 22\n"
    failed = cli.remote.execute("failing", {"x": 5})
    try:
        cli.remote.wait(failed, timeout=60)
    except ExecutionFailed:
        pass
    done = cli.run("logs", failed.name)  # no NODE: the failed one
    assert done.returncode == 0, done.stderr
    assert "ValueError: ctl explode 6" in done.stderr
    assert "# node n1" in done.stderr
    assert "no attempt 3" in cli.fails("logs", ok.name, "n0", "--attempt", "3", code=1)
    assert "invalid int" in cli.fails("logs", ok.name, "n0", "--attempt", "x")


def test_logs_follow_a_running_task(cli: Cli) -> None:
    execution = cli.remote.execute("ticker", {"seconds": 5})
    follower = subprocess.Popen(
        [str(ALULA), "logs", execution.name, "n0", "-f"],
        env=cli.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert follower.stdout is not None
    first = follower.stdout.readline()
    # The first line arrives while the task still runs: it is followed, not read at the end.
    assert first == "ctl tick 1\n"
    assert cli.remote.phase(execution) == "RUNNING"
    rest, _ = follower.communicate(timeout=60)
    assert follower.returncode == 0
    lines = [first, *rest.splitlines(keepends=True)]
    assert lines == [f"ctl tick {i}\n" for i in range(1, 6)]
    assert cli.remote.phase(execution) == "SUCCEEDED"
