"""`from alula import task, workflow` stays cheap: it loads none of the heavy modules.

Deterministic (what is in `sys.modules` of a fresh interpreter), not timed; benchmarks/
import_time.py measures the time.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Needed to run or send a workflow, never to define one.
HEAVY = [
    "alula._native",
    "alula.remote",
    "alula.core.local",
    "botocore",
    "cloudpickle",
    "google.protobuf",
    "grpc",
    "numpy",
    "pandas",
    "pyarrow",
    "pydantic",
    "asyncio",
    "urllib.request",
]

DEFINE = """
from alula import task, workflow

@task
def add(a: int, b: int) -> int:
    return a + b

@workflow
def wf(a: int = 1) -> int:
    return add(a=a, b=a)
"""


def loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `code`."""
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    ["from alula import task, workflow", DEFINE],
    ids=["import", "define a task and a workflow"],
)
def test_authoring_loads_no_heavy_module(code: str) -> None:
    loaded = loaded_after(code)
    heavy = sorted(m for m in loaded if m in HEAVY or m.split(".")[0] in HEAVY)
    assert not heavy, f"`{code.strip().splitlines()[0]}` loads {heavy}"


def test_the_check_sees_a_heavy_import() -> None:
    """The test can fail: running a workflow does load the native module."""
    loaded = loaded_after(DEFINE + "\nwf()\n")
    assert "alula._native" in loaded
