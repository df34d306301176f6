"""Notebook code run remotely: the time from `Remote.execute` of a workflow defined in
`__main__` (as in a notebook cell) to SUCCEEDED on `alula start`, for an unchanged workflow
(nothing registered or uploaded again; warm workers) and for a changed one (a new version:
pickle, upload, register, and a new warm pool for the new bundle). Prints one table.

    python benchmarks/notebook_remote.py [--runs N] [--changes N]

It uses the `alula` of the Python running it (the SDK and `alula start`).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from alula import task, workflow
from alula.remote import Execution, Remote


@task
def double(x: int) -> int:
    return 2 * x


@workflow
def notebook_flow(x: int) -> int:
    return double(x=x)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def until_done(remote: Remote, execution: Execution) -> None:
    while (phase := remote.phase(execution)) not in ("SUCCEEDED", "FAILED", "ABORTED"):
        time.sleep(0.002)
    assert phase == "SUCCEEDED", execution


def timed_run(remote: Remote, x: int) -> float:
    started = time.perf_counter()
    until_done(remote, remote.execute(notebook_flow, {"x": x}))
    return time.perf_counter() - started


def count_writes(remote: Remote) -> list[str]:
    """Wraps the client's calls; the returned list collects the names of those that write."""
    writes: list[str] = []
    plain = remote.call

    def call(rpc: str, request: Any) -> Any:
        if not rpc.startswith(("Get", "List")):
            writes.append(rpc)
        return plain(rpc, request)

    remote.call = call  # type: ignore[method-assign]
    return writes


def redefine(step: int) -> None:
    """What running an edited cell does: `double` defined again, with other content."""
    source = f"@task\ndef double(x: int) -> int:\n    return 2 * x + {step}\n"
    exec(source, globals())  # noqa: S102 - the benchmark's own source


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=30, help="executions of the unchanged workflow")
    p.add_argument("--changes", type=int, default=5, help="executions after an edit each")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="alula-notebook-bench-"))
    grpc = free_port()
    log_path = work / "server.log"
    alula = Path(sys.executable).parent / "alula"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [alula, "start", "--data", work / "data", "--grpc-port", str(grpc)]
            + ["--http-port", str(free_port())],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        while "Stop with Ctrl-C" not in log_path.read_text():
            assert server.poll() is None, log_path.read_text()
            time.sleep(0.1)
        remote = Remote(f"127.0.0.1:{grpc}")
        writes = count_writes(remote)
        first = timed_run(remote, 1)  # registers, uploads, starts the bundle's warm pool
        first_writes = sorted(set(writes))
        writes.clear()
        unchanged = [timed_run(remote, i) for i in range(args.runs)]
        unchanged_writes = sorted(set(writes))
        changed = []
        for step in range(1, args.changes + 1):
            redefine(step)
            changed.append(timed_run(remote, step))
        rows = [
            ("first execute (registers, uploads, new warm pool)", f"{first * 1000:.0f} ms", ""),
            (
                f"unchanged workflow, execute -> SUCCEEDED ({args.runs} runs)",
                f"p50 {percentile(unchanged, 0.5) * 1000:.0f} ms, "
                f"p90 {percentile(unchanged, 0.9) * 1000:.0f} ms",
                "< 100 ms",
            ),
            ("  calls that wrote, unchanged runs", ", ".join(unchanged_writes), "CreateExecution"),
            ("  calls that wrote, first run", ", ".join(first_writes), ""),
            (
                f"changed task, execute -> SUCCEEDED ({args.changes} edits)",
                f"p50 {percentile(changed, 0.5) * 1000:.0f} ms, max {max(changed) * 1000:.0f} ms",
                "",
            ),
        ]
        width = max(len(r[0]) for r in rows)
        for what, measured, target in rows:
            print(f"{what:<{width}}  {measured:<28}  {target}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
