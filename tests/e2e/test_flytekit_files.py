"""FlyteFile inputs with the real flytekit: `pyflyte run --remote` uploads a local file through
CreateUploadLocation (with flytekit's own `filename_root`, a `=`-padded base32 MD5) and the
task, run by propeller, reads it back."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import RunningServer
from flytekit.configuration import Config
from flytekit.remote import FlyteRemote

PYFLYTE = Path(sys.executable).parent / "pyflyte"

WORKFLOW = textwrap.dedent(
    """
    from flytekit import task, workflow
    from flytekit.types.file import FlyteFile


    @task
    def read(f: FlyteFile) -> str:
        with open(f) as fh:
            return fh.read()


    @workflow
    def file_wf(f: FlyteFile) -> str:
        return read(f=f)
    """
)


def test_flytefile_input_from_a_local_file(alula_cluster: RunningServer, tmp_path: Path) -> None:
    (tmp_path / "wf.py").write_text(WORKFLOW)
    content = "hello from a local file\n"
    (tmp_path / "data.txt").write_text(content)
    config = alula_cluster.server.config_file
    done = subprocess.run(
        [PYFLYTE, "--config", config, "run", "--remote", "--wait"]
        + ["wf.py", "file_wf", "--f", "data.txt"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    name = re.search(r"Execution (\w+) has succeeded", done.stdout)
    assert name, done.stdout
    remote = FlyteRemote(
        Config.auto(config_file=str(config)),
        default_project="flytesnacks",
        default_domain="development",
    )
    execution = remote.sync_execution(remote.fetch_execution(name=name.group(1)))
    assert execution.outputs["o0"] == content
    # The upload landed where flytekit placed it: under its base32 root in uploads/.
    uploads = list((alula_cluster.server.storage_root / "uploads").rglob("data.txt"))
    assert len(uploads) == 1, uploads
    assert uploads[0].read_text() == content
    assert uploads[0].parent.name.endswith("="), uploads[0]
