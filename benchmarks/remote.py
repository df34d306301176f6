"""Remote execution on `alula start`: latency and throughput of task executions, and a map over
100,000 elements. Runs the control plane (release build, from the benchmark virtualenv), registers
the same one-task workflow with Alula's SDK (warm workers) and with flytekit (`pyflyte register`,
run through `pyflyte-fast-execute` processes as a Flyte pod would), and prints one table.

    benchmarks/run-remote [--executions N] [--map-size N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alula.remote import Execution, Remote

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_all(remote: Remote, executions: list[Execution]) -> None:
    """Waits for each in turn: one poll per execution, not one per execution per round (which
    would load the server more than the executions do)."""
    for e in executions:
        while (phase := remote.phase(e)) not in ("SUCCEEDED", "FAILED", "ABORTED"):
            time.sleep(0.01)
        assert phase == "SUCCEEDED", e


def latency(remote: Remote, entity: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        e = remote.execute(entity, {"x": 1})
        while remote.phase(e) not in ("SUCCEEDED", "FAILED"):
            time.sleep(0.002)
        times.append(time.perf_counter() - t)
    return sorted(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--executions", type=int, default=1000)
    p.add_argument("--map-size", type=int, default=100_000)
    p.add_argument("--flytekit-bin", required=True, help="bin folder of the flytekit virtualenv")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="alula-remote-bench-"))
    grpc = free_port()
    env = {
        **os.environ,
        "ALULA_TASK_PATH": args.flytekit_bin,
        "ALULA_LOG": "warn",
    }
    alula = Path(sys.executable).parent / "alula"
    # The server's output goes to a file: a pipe nobody reads would fill and block its logging.
    log_path = work / "server.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        [
            alula,
            "start",
            "--data",
            work / "data",
            "--grpc-port",
            str(grpc),
            "--http-port",
            str(free_port()),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    while "Stop with Ctrl-C" not in log_path.read_text():
        assert server.poll() is None, log_path.read_text()
        time.sleep(0.1)
    endpoint = f"127.0.0.1:{grpc}"
    rows: list[tuple[str, str, str]] = []
    try:
        remote = Remote(endpoint)
        src = work / "src"
        shutil.copytree(HERE / "remote_flows", src)
        remote.register(src / "alula_flows.py")
        latency(remote, "one", 3)  # warm the workers up
        lat = latency(remote, "one", 30)
        p50, p90 = lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.9)] * 1000
        rows.append(
            (
                "one-task workflow, CreateExecution -> SUCCEEDED (alula, warm workers)",
                f"p50 {p50:.0f} ms, p90 {p90:.0f} ms",
                "< 200 ms",
            )
        )

        config = work / "data" / "flytekit-config.yaml"
        fk_src = work / "fk"
        (fk_src / "remote_flows").mkdir(parents=True)
        for name in ("__init__.py", "flytekit_flows.py"):
            shutil.copy(HERE / "remote_flows" / name, fk_src / "remote_flows" / name)
        done = subprocess.run(
            [
                Path(args.flytekit_bin) / "pyflyte",
                "--config",
                config,
                "register",
                "--version",
                "b1",
                "remote_flows",
            ],
            cwd=fk_src,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        from alula.remote import Execution as Ex

        fk_times = []
        for _ in range(3):
            t = time.perf_counter()
            resp = remote.call(
                "CreateExecution",
                {
                    "project": remote.project,
                    "domain": remote.domain,
                    "spec": {
                        "launchPlan": {
                            "resourceType": "LAUNCH_PLAN",
                            "project": remote.project,
                            "domain": remote.domain,
                            "name": "remote_flows.flytekit_flows.one",
                            "version": "b1",
                        }
                    },
                    "inputs": {"literals": {"x": {"scalar": {"primitive": {"integer": "1"}}}}},
                },
            )
            e = Ex(remote.project, remote.domain, resp["id"]["name"])
            while remote.phase(e) not in ("SUCCEEDED", "FAILED"):
                time.sleep(0.01)
            assert remote.phase(e) == "SUCCEEDED"
            fk_times.append(time.perf_counter() - t)
        fk = sorted(fk_times)[1]
        rows.append(
            (
                "same, flytekit task (pyflyte-fast-execute process per task)",
                f"p50 {fk * 1000:.0f} ms",
                f"alula {fk / lat[len(lat) // 2]:.0f}x faster",
            )
        )

        n = args.executions
        t = time.perf_counter()
        # Several clients, as several users or a scheduler would submit.
        with ThreadPoolExecutor(8) as pool:
            executions = list(pool.map(lambda i: remote.execute("one", {"x": i}), range(n)))
        created = time.perf_counter() - t
        wait_all(remote, executions)
        total = time.perf_counter() - t
        rows.append(
            (
                f"{n} one-task executions (created in {created:.1f} s)",
                f"{n / total * 60:,.0f} task executions/min",
                ">= 10,000/min",
            )
        )

        size = args.map_size
        t = time.perf_counter()
        e = remote.execute("wide", {"xs": list(range(size))})
        out = remote.wait(e, timeout=3600, poll=0.5)
        took = time.perf_counter() - t
        assert out == size, out
        rows.append(
            (
                f"map over {size:,} elements",
                f"{took:.1f} s ({size / took:,.0f} elements/s), "
                f"server peak RSS {rss_peak_mb(server.pid):.0f} MB",
                "< 1 GB",
            )
        )
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
        warnings = [
            line for line in log_path.read_text().splitlines() if "WARN" in line or "ERROR" in line
        ]
        print(f"server log: {len(warnings)} warnings/errors", *warnings[:5], sep="\n  ")
        shutil.rmtree(work, ignore_errors=True)

    width = max(len(r[0]) for r in rows)
    print(f"\n{'workload'.ljust(width)}  result  (target)")
    for name, result, target in rows:
        print(f"{name.ljust(width)}  {result}  ({target})")


if __name__ == "__main__":
    main()
