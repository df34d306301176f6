"""One workload per process: `BENCH_FRAMEWORK=alula|flytekit python workloads.py NAME`.

The same code runs on both frameworks (see fw.py). Each workload builds its workflow, makes a
warm-up call (first calls pay for imports, compilation and caches that a long-lived process pays
once), then times only the workflow call with time.perf_counter and keeps the best repeat: the
steady-state figure, least disturbed by other work on a shared machine. The result is printed as
one `BENCH {json}` line for driver.py; a failure prints its traceback and exits non-zero.
"""

import json
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fw import FRAMEWORK, dynamic, map_task, task, workflow

# Repeats stop at whichever comes first, so slow cases (flytekit's big maps) stay affordable.
MAX_REPEATS = 5
TIME_BUDGET_S = 2.0


@task
def inc(x: int) -> int:
    return x + 1


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@dataclass
class Record:
    id: int
    name: str
    score: float
    tags: list[str] = field(default_factory=list)


@task
def bump(r: Record) -> Record:
    return Record(id=r.id + 1, name=r.name, score=r.score + 0.5, tags=r.tags)


@dynamic
def fan_out(n: int) -> list[int]:
    return [inc(x=i) for i in range(n)]


@workflow
def dyn(n: int) -> int:
    return total(xs=fan_out(n=n))


# Workflows whose shape depends on a size are built by a loop in the workflow body, at
# decoration time, so they are made on demand for the size asked for.
def chain_of(n: int) -> Any:
    @workflow
    def chain(x: int = 0) -> int:
        for _ in range(n):
            x = inc(x=x)
        return x

    return chain


def dataclass_chain_of(n: int) -> Any:
    @workflow
    def dc_chain(r: Record) -> Record:
        for _ in range(n):
            r = bump(r=r)
        return r

    return dc_chain


@workflow
def mapped(xs: list[int]) -> list[int]:
    return map_task(inc)(x=xs)


def timed(call: Callable[[], Any], check: Callable[[Any], bool], warm_up: bool = True) -> float:
    """Best wall time of `call` in seconds, after an optional warm-up; checks every result."""
    if warm_up:
        _checked(call(), check)
    best = float("inf")
    spent = 0.0
    for _ in range(MAX_REPEATS):
        t0 = time.perf_counter()
        result = call()
        dt = time.perf_counter() - t0
        _checked(result, check)
        best = min(best, dt)
        spent += dt
        if spent >= TIME_BUDGET_S:
            break
    return best


def _checked(result: Any, check: Callable[[Any], bool]) -> None:
    if not check(result):
        raise AssertionError(f"wrong result: {str(result)[:200]}")


def hello(_: int) -> float:
    from hello import wf

    return timed(lambda: wf(name="world"), lambda r: r == "hello world")


def chain(n: int) -> float:
    wf = chain_of(n)
    return timed(lambda: wf(x=0), lambda r: r == n)


def map_(n: int) -> float:
    xs = list(range(n))
    return timed(lambda: mapped(xs=xs), lambda r: list(r) == [x + 1 for x in xs])


def dataclass_chain(n: int) -> float:
    wf = dataclass_chain_of(n)
    start = Record(id=0, name="r", score=0.0, tags=["a", "b"])
    return timed(lambda: wf(r=start), lambda r: r.id == n and r.score == n * 0.5)


def dataframe(n: int) -> float:
    from frames import frames

    return timed(lambda: frames(n=n), lambda r: r == n * (n - 1) // 2)


def dynamic_(n: int) -> float:
    return timed(lambda: dyn(n=n), lambda r: r == n * (n + 1) // 2)


def map_memory(n: int) -> float:
    """One cold call: its peak resident set is the figure (reported with the time it took)."""
    xs = list(range(n))
    return timed(lambda: mapped(xs=xs), lambda r: len(r) == n, warm_up=False)


WORKLOADS: dict[str, Callable[[int], float]] = {
    "hello": hello,
    "chain": chain,
    "map": map_,
    "dataclass_chain": dataclass_chain,
    "dataframe": dataframe,
    "dynamic": dynamic_,
    "map_memory": map_memory,
}


def main() -> int:
    name, n = sys.argv[1], int(sys.argv[2])
    if name == "map_memory":
        global MAX_REPEATS
        MAX_REPEATS = 1
    seconds = WORKLOADS[name](n)
    # ru_maxrss is in KiB on Linux.
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"framework": FRAMEWORK, "workload": name, "n": n, "seconds": seconds, "rss_mb": rss_mb}
    print("BENCH " + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
