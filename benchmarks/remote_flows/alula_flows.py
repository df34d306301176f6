"""Workflows for the remote benchmark, written with Alula's SDK."""

from alula import map_task, task, workflow


@task
def inc(x: int) -> int:
    return x + 1


@workflow
def one(x: int = 1) -> int:
    return inc(x=x)


@task
def count(xs: list[int]) -> int:
    return len(xs)


@workflow
def wide(xs: list[int]) -> int:
    return count(xs=map_task(inc)(x=xs))
