"""flytekit's own notebook path against Alula's server: `FlyteRemote(...,
interactive_mode_enabled=True)` pickles tasks defined in `__main__`, uploads the pickle through
the data proxy and runs them with `pyflyte-fast-execute` and flytekit's notebook task resolver.
A `python -c` script stands in for the notebook (its `__main__` has no file either)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import RunningServer

SCRIPT = """
import json
from flytekit import task, workflow
from flytekit.configuration import Config
from flytekit.remote import FlyteRemote


@task
def double(x: int) -> int:
    return 2 * x


@task
def describe(x: int, label: str) -> str:
    return f"{label}={x}"


@workflow
def notebook_flow(x: int, label: str) -> str:
    return describe(x=double(x=x), label=label)


remote = FlyteRemote(
    Config.auto(config_file=CONFIG),
    default_project="flytesnacks",
    default_domain="development",
    interactive_mode_enabled=True,
)
done = remote.execute(notebook_flow, inputs={"x": 21, "label": "answer"}, wait=True)
print(json.dumps({"phase": done.closure.phase, "outputs": dict(done.outputs),
                  "error": str(done.error) if done.error else None}))
"""


def test_flytekit_interactive_mode_runs_main_code(
    alula_cluster: RunningServer, tmp_path: Path
) -> None:
    config = str(alula_cluster.server.config_file)
    # As IPython does, the cell's source is kept in `linecache` under the cell's name (flytekit
    # reads the task's source); `__main__` still has no file.
    cell = textwrap.dedent(SCRIPT)
    script = (
        f"import linecache\nCONFIG = {config!r}\nCELL = {cell!r}\n"
        "linecache.cache['<cell-1>'] = (len(CELL), None, CELL.splitlines(True), '<cell-1>')\n"
        "exec(compile(CELL, '<cell-1>', 'exec'), globals())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    # 4 is flyteidl's WorkflowExecution.Phase SUCCEEDED.
    assert out["phase"] == 4, out
    assert out["outputs"] == {"o0": "answer=42"}
