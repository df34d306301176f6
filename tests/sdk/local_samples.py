"""Workflows run locally by test_local_run.py (one module, so call sites are stable)."""

from __future__ import annotations

import functools
import os
import time
import typing
from dataclasses import dataclass
from datetime import timedelta

import pandas as pd

from alula import (
    LaunchPlan,
    approve,
    conditional,
    dynamic,
    map_task,
    sleep,
    task,
    wait_for_input,
    workflow,
)

ATTEMPTS: dict[str, int] = {}


@dataclass
class Point:
    x: float
    y: float


@task
def inc(x: int) -> int:
    return x + 1


@task
def square(x: int) -> int:
    return x * x


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@task
def count_present(xs: list[typing.Optional[int]]) -> int:  # noqa: UP045 - flytekit spelling
    return sum(1 for x in xs if x is not None)


@task
def fragile(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative input {x}")
    return x * 10


@task(retries=2)
def flaky(key: str) -> int:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] < 3:
        raise ConnectionError(f"attempt {ATTEMPTS[key]} lost")
    return ATTEMPTS[key]


@task(retries=1)
def always_fails(key: str) -> int:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    raise RuntimeError(f"broken {key}")


@task(timeout=timedelta(milliseconds=200))
def slow(x: int) -> int:
    time.sleep(1.0)
    return x


CALLS: list[int] = []


@task(cache=True, cache_version="1")
def expensive(x: int) -> int:
    CALLS.append(x)
    return x * 3


@workflow
def cached(x: int) -> int:
    return expensive(x=x)


@task
def move(p: Point, dx: float) -> Point:
    return Point(p.x + dx, p.y)


@task
def make_frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"a": list(range(n))})


@task
def frame_sum(df: pd.DataFrame) -> int:
    return int(df["a"].sum())


@workflow
def chain(x: int = 0) -> int:
    for _ in range(10):
        x = inc(x=x)
    return x


@workflow
def diamond(x: int) -> tuple[int, int]:
    a = inc(x=x)
    return square(x=a), add(x=a, y=square(x=a))


@workflow
def mapped(xs: list[int]) -> int:
    return total(xs=map_task(square, concurrency=2)(x=xs))


@workflow
def mapped_partial(xs: list[int], y: int) -> list[int]:
    return map_task(functools.partial(add, y=y))(x=xs)


@workflow
def tolerant_map(xs: list[int]) -> int:
    return count_present(xs=map_task(fragile, min_success_ratio=0.5)(x=xs))


@workflow
def strict_map(xs: list[int]) -> list[int]:
    return map_task(fragile)(x=xs)


@workflow
def branch(x: int) -> int:
    return (
        conditional("sign")
        .if_(x > 0)
        .then(square(x=x))
        .elif_(x == 0)
        .then(inc(x=x))
        .else_()
        .fail("x must not be negative")
    )


@dynamic
def fan_out(n: int) -> list[int]:
    return [square(x=i) for i in range(n)]


@workflow
def dyn(n: int) -> int:
    return total(xs=fan_out(n=n))


@workflow
def sub(x: int) -> int:
    return inc(x=chain(x=x))


chain_lp = LaunchPlan.get_or_create(chain, name="chain_lp", fixed_inputs={"x": 100})


@workflow
def via_launch_plan() -> int:
    return inc(x=chain_lp())


@workflow
def gates(x: int) -> int:
    y = square(x=x)
    s = sleep(timedelta(milliseconds=50))
    factor = wait_for_input("factor", timeout=timedelta(minutes=1), expected_type=int)
    ok = approve(y, "approve-y", timeout=timedelta(minutes=1))
    s >> factor
    return add(x=ok, y=factor)


@workflow
def retried(key: str) -> int:
    return flaky(key=key)


@workflow
def exhausted(key: str) -> int:
    return always_fails(key=key)


@workflow
def times_out(x: int) -> int:
    return slow(x=x)


@workflow
def points(p: Point) -> Point:
    return move(p=move(p=p, dx=1.5), dx=2.0)


@workflow
def frames(n: int) -> int:
    return frame_sum(df=make_frame(n=n))


@task
def nap(x: int) -> int:
    time.sleep(0.03)
    return x


@workflow
def sleepy_map(n: int) -> list[int]:
    return map_task(nap)(x=list_of_ones(n=n))


@task
def list_of_ones(n: int) -> list[int]:
    return [1] * n


@task
def whoami(x: int) -> int:
    return os.getpid() + 0 * x


@workflow
def pids(xs: list[int]) -> list[int]:
    return map_task(whoami)(x=xs)
