"""The workflows the console's browser tests (tests/e2e/test_console.py) run remotely and then
look at: one per thing the console draws (a chain, a branch, a map, a dynamic workflow, retries
of a failing task, a gate, a task to terminate) and one with typed inputs for the launch form.

Tasks print marker lines so the tests can find them in the logs the console shows."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

from alula import approve, conditional, dynamic, map_task, task, workflow


@task
def first(x: int) -> int:
    print(f"console-test first got {x}")
    return x + 1


@task
def second(x: int) -> int:
    print(f"console-test second got {x}")
    return x * 10


@task
def third(x: int) -> str:
    print(f"console-test third got {x}")
    return f"chain={x}"


@workflow
def chain(x: int = 1) -> str:
    """Three tasks, one after the other."""
    return third(x=second(x=first(x=x)))


@task
def hot(t: float) -> str:
    return f"hot at {t}"


@task
def cold(t: float) -> str:
    return f"cold at {t}"


@workflow
def branch(t: float = 31.5) -> str:
    """A conditional with one case taken and the other skipped."""
    return conditional("weather").if_(t > 20.0).then(hot(t=t)).else_().then(cold(t=t))


@task
def square(x: int) -> int:
    return x * x


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@workflow
def mapped(xs: list[int]) -> int:
    """A map task over every element of `xs` (the test gives 1,000)."""
    return total(xs=map_task(square, concurrency=16)(x=xs))


@task
def cube(x: int) -> int:
    return x**3


@dynamic
def cubes(n: int) -> list[int]:
    return [cube(x=i) for i in range(n)]


@workflow
def dynamic_wf(n: int = 3) -> int:
    """A dynamic workflow whose nodes exist only once it runs."""
    return total(xs=cubes(n=n))


@task(retries=2)
def flaky(x: int) -> int:
    raise ValueError(f"console-test broken on purpose with x={x}")


@workflow
def failing(x: int = 7) -> int:
    """A task that fails on each of its three attempts."""
    return flaky(x=x)


@task
def propose(x: int) -> int:
    return x + 100


@task
def publish(x: int) -> str:
    return f"published {x}"


@workflow
def gated(x: int = 1) -> str:
    """Waits for someone to approve the proposal before publishing it."""
    return publish(x=approve(propose(x=x), "ship-it", timeout=timedelta(minutes=10)))


@task
def nap(seconds: int) -> int:
    print("console-test napping", flush=True)
    time.sleep(seconds)
    return seconds


@workflow
def sleeper(seconds: int = 600) -> int:
    """Runs until someone terminates it."""
    return nap(seconds=seconds)


class Color(Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


@dataclass
class Point:
    x: int
    y: int


@task
def describe(
    count: int, ratio: float, title: str, loud: bool, color: Color, values: list[int], point: Point
) -> str:
    text = (
        f"{title}: count={count} ratio={ratio} color={color.value} "
        f"sum={sum(values)} point=({point.x},{point.y})"
    )
    return text.upper() if loud else text


@workflow
def typed(
    count: int = 1,
    ratio: float = 0.5,
    title: str = "hello",
    loud: bool = False,
    color: Color = Color.RED,
    values: list[int] = [1, 2],  # noqa: B006 - a workflow default, never mutated
    point: Point = Point(x=0, y=0),  # noqa: B008 - a workflow default, never mutated
) -> str:
    """Inputs of every kind the launch form offers."""
    return describe(
        count=count, ratio=ratio, title=title, loud=loud, color=color, values=values, point=point
    )
