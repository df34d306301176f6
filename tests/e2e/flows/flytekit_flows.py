"""Workflows written with the real flytekit, run remotely on Alula by propeller."""

from __future__ import annotations

import os
import time

from flytekit import conditional, dynamic, map_task, task, workflow


@task
def double(x: int) -> int:
    return x * 2


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def describe(total: int, label: str) -> str:
    return f"{label}={total}"


@workflow
def chain(x: int = 3, label: str = "total") -> str:
    """Several tasks in sequence and in parallel."""
    a = double(x=x)
    b = double(x=a)
    return describe(total=add(a=a, b=b), label=label)


@task
def square(x: int) -> int:
    return x * x


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@workflow
def mapped(xs: list[int] = [1, 2, 3, 4]) -> int:  # noqa: B006 - flytekit defaults
    return total(xs=map_task(square)(x=xs))


@task
def sign(x: int) -> str:
    return "positive" if x > 0 else "not positive"


@workflow
def branching(x: int = 5) -> str:
    return (
        conditional("sign").if_(x > 0).then(sign(x=x)).else_().then(describe(total=x, label="neg"))
    )


@dynamic
def fan_out(n: int) -> list[int]:
    return [double(x=i) for i in range(n)]


@workflow
def dynamic_wf(n: int = 3) -> int:
    return total(xs=fan_out(n=n))


@task(retries=2)
def flaky(marker: str) -> int:
    """Fails (recoverably) until its third attempt, counting attempts in a file."""
    from flytekit.exceptions.user import FlyteRecoverableException

    count = int(open(marker).read()) + 1 if os.path.exists(marker) else 1
    with open(marker, "w") as f:
        f.write(str(count))
    if count < 3:
        raise FlyteRecoverableException(f"attempt {count} failed on purpose")
    return count


@workflow
def retrying(marker: str) -> int:
    return flaky(marker=marker)


@task(retries=2)
def broken(x: int) -> int:
    if x > 0:
        raise ValueError(f"broken on purpose with x={x}")
    return x


@workflow
def failing(x: int = 1) -> int:
    return broken(x=x)


@task(cache=True, cache_version="1")
def expensive(x: int, log: str) -> int:
    with open(log, "a") as f:
        f.write(f"{x}\n")
    return x + 100


@workflow
def cached(x: int, log: str) -> int:
    return expensive(x=x, log=log)


@task
def sleepy(seconds: int) -> int:
    time.sleep(seconds)
    return seconds


@workflow
def slow(seconds: int = 60) -> int:
    return sleepy(seconds=seconds)


@task
def tick(x: int) -> int:
    """Records (element, attempt) where the crash test can see it, then takes a while."""
    with open(os.environ["ALULA_TEST_ATTEMPT_LOG"], "a") as f:
        f.write(f"{x} {os.environ.get('FLYTE_ATTEMPT_NUMBER')}\n")
    time.sleep(1)
    return x * 10


@workflow
def many(xs: list[int]) -> int:
    return total(xs=map_task(tick)(x=xs))
