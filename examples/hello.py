"""The smallest workflow: `alula run examples/hello.py wf --name Alula`."""

from alula import task, workflow


@task
def greet(name: str) -> str:
    return f"Hello, {name}!"


@workflow
def wf(name: str = "world") -> str:
    return greet(name=name)
