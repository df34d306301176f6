"""A dynamic workflow, shaped at run time: `alula run examples/dynamic.py wf --n 10`."""

from alula import dynamic, task, workflow


@task
def cube(x: int) -> int:
    return x**3


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@dynamic
def cubes(n: int) -> list[int]:
    return [cube(x=i) for i in range(n)]


@workflow
def wf(n: int = 5) -> int:
    return total(xs=cubes(n=n))
