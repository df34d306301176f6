"""Every example in examples/ runs with `alula run` and prints the expected result."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CASES = [
    (["hello.py", "wf", "--name", "Alula"], "Hello, Alula!"),
    (["hello.py", "wf"], "Hello, world!"),
    (["map.py", "wf", "--xs", "[1, 2, 3, 4]"], "30"),
    (["branch.py", "wf", "--temperature", "31.5"], "stay in the shade"),
    (["branch.py", "wf", "--temperature", "1"], "take a coat"),
    (["dynamic.py", "wf", "--n", "10"], str(sum(i**3 for i in range(10)))),
    (["dataframe.py", "wf", "--rows", "1000"], "Pune"),
]


@pytest.mark.parametrize(("args", "expected"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_example(args: list[str], expected: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "alula.cli", "run", os.path.join("examples", args[0]), *args[1:]],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected
