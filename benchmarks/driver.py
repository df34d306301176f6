"""Runs every workload on flytekit and on Alula, each in a fresh process, and prints one table.

Started by `benchmarks/run` (which builds the two virtualenvs); `python driver.py --venvs DIR
[WORKLOAD ...]` runs only the rows whose key is named (see ROWS).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
FRAMEWORKS = ("flytekit", "alula")
TIMEOUT_S = 900


@dataclass
class Row:
    key: str  # what `benchmarks/run KEY` selects
    label: str
    unit: str
    # How to obtain each side's figure: ("workload", name, n) runs workloads.py;
    # ("import", module) and ("cli",) time whole processes.
    how: dict[str, tuple[Any, ...]]
    # Figure in `unit` from a workload result (seconds, n, rss_mb).
    scale: str = "total_ms"
    target: tuple[str, float] | None = None  # ("<=" or "<", bound) in `unit`, for Alula
    note: str = ""


def same(*how: Any) -> dict[str, tuple[Any, ...]]:
    return {fw: how for fw in FRAMEWORKS}


ROWS = [
    Row("hello", "hello (1 task)", "ms", same("workload", "hello", 1)),
    Row("chain", "chain of 100 tasks", "µs/task", same("workload", "chain", 100), "per_item_us"),
    Row(
        "chain",
        "chain of 1000 tasks",
        "µs/task",
        same("workload", "chain", 1000),
        "per_item_us",
        ("<=", 10),
    ),
    Row("map", "map over 1000", "µs/elem", same("workload", "map", 1000), "per_item_us"),
    Row(
        "map",
        "map over 10000",
        "µs/elem",
        same("workload", "map", 10000),
        "per_item_us",
        ("<=", 2),
    ),
    Row(
        "dataclass",
        "dataclass chain of 100",
        "µs/task",
        same("workload", "dataclass_chain", 100),
        "per_item_us",
        ("<=", 20),
    ),
    Row("dataframe", "DataFrame 100k rows, 2 tasks", "ms", same("workload", "dataframe", 100_000)),
    Row("dynamic", "dynamic making 100 tasks", "ms", same("workload", "dynamic", 100)),
    Row(
        "import",
        "import (fresh process)",
        "ms",
        {"flytekit": ("import", "import flytekit"), "alula": ("import", "import alula")},
        target=("<=", 30),
        note="`python -c 'import x'` minus `python -c pass`, best of 5",
    ),
    Row(
        "import",
        "from x import task, workflow",
        "ms",
        {
            "flytekit": ("import", "from flytekit import task, workflow"),
            "alula": ("import", "from alula import task, workflow"),
        },
        note="alula imports its authoring surface lazily; this row shows the full cost",
    ),
    Row(
        "cli",
        "whole process: run hello.py wf",
        "s",
        same("cli"),
        target=("<=", 0.10),
        note="`pyflyte run` vs `alula run`, wall time, best of 3",
    ),
    Row("memory", "peak RSS, map of 10,000", "MB", same("workload", "map_memory", 10_000), "rss"),
    Row(
        "memory",
        "peak RSS, map of 100,000",
        "MB",
        {"alula": ("workload", "map_memory", 100_000)},
        "rss",
        ("<", 500),
        note="flytekit not run at 100,000 (too slow); compare the 10,000 row",
    ),
]


class Failed(Exception):
    """A workload did not produce a figure; the message is the tail of its output."""


def python_of(venvs: str, fw: str) -> str:
    return os.path.join(venvs, fw, "bin", "python")


def env_of(fw: str) -> dict[str, str]:
    env = dict(os.environ, BENCH_FRAMEWORK=fw, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    return env


def run_workload(venvs: str, fw: str, name: str, n: int) -> dict[str, Any]:
    cmd = [python_of(venvs, fw), os.path.join(HERE, "workloads.py"), name, str(n)]
    try:
        p = subprocess.run(
            cmd, cwd=HERE, env=env_of(fw), capture_output=True, text=True, timeout=TIMEOUT_S
        )
    except subprocess.TimeoutExpired as e:
        raise Failed(f"timed out after {TIMEOUT_S} s") from e
    for line in p.stdout.splitlines():
        if line.startswith("BENCH "):
            result: dict[str, Any] = json.loads(line[len("BENCH ") :])
            return result
    raise Failed(tail(p.stderr or p.stdout, f"exit code {p.returncode}"))


def tail(text: str, fallback: str, lines: int = 25) -> str:
    kept = text.strip().splitlines()[-lines:]
    return "\n".join(kept) if kept else fallback


def wall(cmd: list[str], fw: str, best_of: int) -> float:
    """Best wall time of a whole process, in seconds; a failing process is an error."""
    best = float("inf")
    for _ in range(best_of):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, cwd=HERE, env=env_of(fw), capture_output=True, text=True)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            raise Failed(tail(p.stderr or p.stdout, f"exit code {p.returncode}"))
        best = min(best, dt)
    return best


def figure(row: Row, venvs: str, fw: str) -> float:
    how = row.how[fw]
    py = python_of(venvs, fw)
    if how[0] == "import":
        base = wall([py, "-c", "pass"], fw, 5)
        return (wall([py, "-c", how[1]], fw, 5) - base) * 1e3
    if how[0] == "cli":
        exe = "pyflyte" if fw == "flytekit" else "alula"
        cmd = [os.path.join(venvs, fw, "bin", exe), "run", "hello.py", "wf"]
        return wall(cmd, fw, 3)
    _, name, n = how
    r = run_workload(venvs, fw, name, n)
    if row.scale == "per_item_us":
        return float(r["seconds"]) / n * 1e6
    if row.scale == "rss":
        return float(r["rss_mb"])
    return float(r["seconds"]) * 1e3


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def target_cell(row: Row, alula: float | None) -> str:
    if row.target is None:
        return ""
    op, bound = row.target
    if alula is None:
        return f"{op} {fmt(bound)}: missed (error)"
    met = alula <= bound if op == "<=" else alula < bound
    return f"{op} {fmt(bound)}: {'met' if met else 'MISSED'}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--venvs", required=True)
    ap.add_argument("only", nargs="*", help=f"row keys: {sorted({r.key for r in ROWS})}")
    args = ap.parse_args()
    rows = [r for r in ROWS if not args.only or r.key in args.only]
    table: list[list[str]] = []
    errors: list[str] = []
    started = time.perf_counter()
    for row in rows:
        got: dict[str, float | None] = {}
        for fw in FRAMEWORKS:
            if fw not in row.how:
                got[fw] = None
                continue
            print(f"  {row.label} on {fw} ...", file=sys.stderr, flush=True)
            try:
                got[fw] = figure(row, args.venvs, fw)
            except Failed as e:
                got[fw] = None
                errors.append(f"{row.label} on {fw}:\n{e}")
        flyte, alula = got["flytekit"], got["alula"]
        ratio = f"{flyte / alula:,.1f}x" if flyte and alula else "-"
        cells = ["ERROR" if fw in row.how and got[fw] is None else fmt(got[fw]) for fw in got]
        table.append([f"{row.label} ({row.unit})", *cells, ratio, target_cell(row, alula)])
    print_table(table)
    notes = [f"{r.label}: {r.note}" for r in rows if r.note]
    print("\nNotes: timings are the best of up to 5 calls after a warm-up call, inside the")
    print("process (perf_counter around the workflow call); each workload runs in a fresh process.")
    for note in notes:
        print(f"  - {note}")
    print(f"Total benchmark time: {time.perf_counter() - started:.0f} s")
    for error in errors:
        print(f"\nERROR {error}")
    return 1 if errors else 0


def print_table(table: list[list[str]]) -> None:
    head = ["workload", "flytekit", "alula", "ratio (flytekit/alula)", "alula target"]
    widths = [max(len(r[i]) for r in [head, *table]) for i in range(len(head))]
    line = "+".join("-" * (w + 2) for w in widths)
    print()
    for i, r in enumerate([head, *table]):
        pairs = enumerate(zip(r, widths, strict=True))
        cells = [c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in pairs]
        print("| " + " | ".join(cells) + " |")
        if i == 0:
            print("|" + line.replace("+", "|") + "|")


if __name__ == "__main__":
    sys.exit(main())
