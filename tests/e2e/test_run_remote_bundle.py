"""`alula start` run in a workflow folder, then `alula run --remote` from that folder, twice: the
server's data folder (`./alula-data`, which then holds the first run's bundle, unpacked by its
warm workers) stays out of the second bundle, so the second run re-uses the version and the
upload of the first, and the bundle holds the workflow file only. The bundle's warm workers
stop once idle."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import _free_port, _wait_for_port

ALULA = Path(sys.executable).parent / "alula"
WORKFLOW = """from alula import task, workflow


@task
def greet(name: str) -> str:
    return f"Hello, {name}!"


@workflow
def wf(name: str = "world") -> str:
    return greet(name=name)
"""


@pytest.fixture
def started_here(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A workflow folder with `alula start` running in it on its default data folder."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "flows.py").write_text(WORKFLOW)
    grpc, http = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALULA_")}
    env["ALULA_WARM_IDLE_SECONDS"] = "3"
    log = tmp_path / "start.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [ALULA, "start", "--grpc-port", str(grpc), "--http-port", str(http)],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_port(grpc, proc, log)
        yield folder, grpc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def workers_in(folder: Path) -> list[int]:
    """Processes working in `folder` (warm workers run in their unpacked bundle)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and Path(os.readlink(proc / "cwd")).is_relative_to(folder):
                found.append(int(proc.name))
        except OSError:
            continue  # gone, or not ours to look at
    return found


def run_remote(folder: Path, grpc: int) -> str:
    """`alula run --remote` of flows.py from `folder`; returns the registered version."""
    result = subprocess.run(
        [ALULA, "run", "--remote", "flows.py", "wf", "--name", "bundle"],
        cwd=folder,
        env={**os.environ, "ALULA_ENDPOINT": f"127.0.0.1:{grpc}"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Hello, bundle!" in result.stdout
    found = re.search(r"version (\S+)", result.stdout)
    assert found, result.stdout
    return found.group(1)


def test_run_remote_twice_from_the_server_folder_reuses_the_bundle(
    started_here: tuple[Path, int],
) -> None:
    folder, grpc = started_here
    data = folder / "alula-data"
    assert (
        (data / "CACHEDIR.TAG")
        .read_text()
        .startswith("Signature: 8a477f597d28d172789f06886806bc55")
    )

    first = run_remote(folder, grpc)
    # The warm workers unpacked the first bundle inside the data folder, beside the upload.
    assert list((data / "work").rglob("flows.py"))
    second = run_remote(folder, grpc)
    assert second == first
    running = workers_in(data / "work")
    assert running, "the warm workers that ran the task are still warm"

    uploads = sorted(data.rglob("fast*.tar.gz"))
    assert len(uploads) == 1, uploads
    assert uploads[0].stat().st_size < 1024
    with tarfile.open(uploads[0]) as tar:
        assert tar.getnames() == ["flows.py"]

    # The bundle's warm workers stop once idle for ALULA_WARM_IDLE_SECONDS.
    deadline = time.monotonic() + 30
    while workers_in(data / "work") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not set(workers_in(data / "work")) & set(running)
