"""The workflow the authentication tests register and run with the real flytekit."""

from __future__ import annotations

from flytekit import task, workflow


@task
def shout(name: str) -> str:
    return f"HELLO {name.upper()}"


@task
def count(text: str) -> int:
    return len(text)


@workflow
def greet(name: str = "alula") -> int:
    return count(text=shout(name=name))
