"""A small package registered by the end-to-end tests: tasks, a subworkflow, a launch plan
with fixed inputs and a workflow that calls that launch plan."""

from flytekit import LaunchPlan, task, workflow


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def greet(name: str, times: int) -> str:
    return " ".join([f"hello {name}"] * times)


@workflow
def inner(a: int, b: int) -> int:
    return add(a=a, b=b)


@workflow
def pipeline(a: int, b: int = 3, name: str = "flyte") -> str:
    total = inner(a=a, b=b)
    return greet(name=name, times=total)


pipeline_fixed = LaunchPlan.get_or_create(pipeline, name="pipeline_fixed", fixed_inputs={"b": 5})


@workflow
def caller(a: int) -> str:
    return pipeline_fixed(a=a)
