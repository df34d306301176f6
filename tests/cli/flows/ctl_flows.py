"""Workflows the `alula` verbs are tested on (tests/cli/test_ctl_*.py)."""

from __future__ import annotations

import time
from datetime import timedelta

from alula import approve, dynamic, map_task, task, wait_for_input, workflow


@task
def add(a: int, b: int) -> int:
    print(f"adding {a} and {b}", flush=True)
    return a + b


@task
def tick(seconds: int) -> int:
    for i in range(1, seconds + 1):
        print(f"ctl tick {i}", flush=True)
        time.sleep(1)
    return seconds


@task
def explode(x: int) -> int:
    raise ValueError(f"ctl explode {x}")


@task
def scale(x: int, factor: int) -> int:
    return x * factor


@workflow
def adder(a: int, b: int = 2) -> int:
    return add(a=a, b=b)


@workflow
def ticker(seconds: int = 6) -> int:
    return tick(seconds=seconds)


@workflow
def failing(x: int = 1) -> int:
    return explode(x=add(a=x, b=1))


@workflow
def gated(x: int = 3) -> int:
    y = add(a=x, b=1)
    factor = wait_for_input("factor", timeout=timedelta(minutes=10), expected_type=int)
    approved = approve(y, "ship-it", timeout=timedelta(minutes=10))
    return scale(x=approved, factor=factor)


@task
def square(x: int) -> int:
    return x * x


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@dynamic
def squares(xs: list[int], n: int) -> list[int]:
    return [square(x=x) for x in xs[:n]]


@workflow
def shapes(n: int = 3) -> int:
    """A map task's 4 elements, then a dynamic node squaring the first n of them."""
    mapped = map_task(square, concurrency=2)(x=[1, 2, 3, 4])
    return total(xs=squares(xs=mapped, n=n))
