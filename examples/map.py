"""A map task: `alula run examples/map.py wf --xs '[1, 2, 3, 4]'`."""

from alula import map_task, task, workflow


@task
def square(x: int) -> int:
    return x * x


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@workflow
def wf(xs: list[int] = [1, 2, 3]) -> int:  # noqa: B006 - a workflow default, never mutated
    return total(xs=map_task(square, concurrency=4)(x=xs))
