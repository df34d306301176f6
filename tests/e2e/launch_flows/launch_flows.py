"""A workflow taking a file, for the launch form's upload (tests/e2e/test_console_launch.py)."""

from __future__ import annotations

from alula import task, workflow
from alula.types import FlyteFile


@task
def size(f: FlyteFile) -> int:
    with open(f.download(), "rb") as data:
        return len(data.read())


@workflow
def sized(f: FlyteFile) -> int:
    """How many bytes the uploaded file has."""
    return size(f=f)
