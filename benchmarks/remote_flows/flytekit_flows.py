"""The same one-task workflow written with flytekit (run through pyflyte-fast-execute)."""

from flytekit import task, workflow


@task
def inc(x: int) -> int:
    return x + 1


@workflow
def one(x: int = 1) -> int:
    return inc(x=x)
