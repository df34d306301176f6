"""Execution data in an S3-compatible bucket: alula-server with `ALULA_STORAGE_URL=s3://...`
against moto's server runs flytekit workflows (`pyflyte-execute` reads its inputs from the bucket
and writes its outputs there), and admin keeps a >1 MiB input and output in the bucket rather
than in the database, while FlyteRemote still gets the values."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer, _free_port, _wait_for_port, pyflyte_register, start_server
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.remote import FlyteRemote

FLOWS = Path(__file__).parent / "flows"
MOTO = Path(sys.executable).parent / "moto_server"
PROJECT, DOMAIN, VERSION = "flytesnacks", "development", "s3-v1"
PREFIX = "alula"
TIMEOUT_S = 180


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The S3 endpoint scripts/test started, or a moto server of this module's own."""
    given = os.environ.get("ALULA_TEST_S3_ENDPOINT")
    if given:
        yield given.rstrip("/")
        return
    port = _free_port()
    log_file = tmp_path_factory.mktemp("moto") / "moto.log"
    with log_file.open("wb") as log:
        proc = subprocess.Popen(
            [MOTO, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_for_port(port, proc, log_file)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def bucket(s3_endpoint: str) -> str:
    name = f"alula-e2e-{uuid.uuid4().hex[:12]}"
    urllib.request.urlopen(urllib.request.Request(f"{s3_endpoint}/{name}", method="PUT"))
    return name


def keys(s3_endpoint: str, bucket: str, prefix: str) -> set[str]:
    """The bucket's keys under `prefix`, listed over S3's HTTP API (moto needs no signature)."""
    found: set[str] = set()
    token = ""
    while True:
        url = f"{s3_endpoint}/{bucket}?list-type=2&prefix={prefix}"
        if token:
            url += f"&continuation-token={urllib.request.quote(token)}"
        with urllib.request.urlopen(url) as response:
            root = ET.fromstring(response.read())
        ns = {"s3": root.tag.split("}")[0].strip("{")}
        found |= {k.text or "" for k in root.findall("s3:Contents/s3:Key", ns)}
        token = root.findtext("s3:NextContinuationToken", default="", namespaces=ns)
        if not token:
            return found


@pytest.fixture(scope="module")
def cluster(
    s3_endpoint: str, bucket: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, Path]]:
    work = tmp_path_factory.mktemp("alula-s3")
    src = work / "src"
    src.mkdir()
    # flytekit's workflows only (the package's Alula ones need no bucket to be tested).
    (src / "flows").mkdir()
    for name in ("__init__.py", "flytekit_flows.py"):
        shutil.copy(FLOWS / name, src / "flows" / name)
    aws = {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    running = start_server(
        work,
        propeller=True,
        extra_env={
            "ALULA_STORAGE_URL": f"s3://{bucket}/{PREFIX}",
            **aws,
            # Registered without a code bundle: the tasks import the workflows from here.
            "PYTHONPATH": str(src),
        },
    )
    try:
        yield running, src
    finally:
        code = running.stop()
    assert code == 0, f"alula-server exited with {code}:\n{running.server.log_file.read_text()}"


@pytest.fixture(scope="module")
def remote(cluster: tuple[RunningServer, Path]) -> FlyteRemote:
    running, src = cluster
    return pyflyte_register(
        running.server.config_file, src, "flows", VERSION, extra_args=("--copy", "none")
    )


def run(remote: FlyteRemote, name: str, **inputs: Any) -> dict[str, Any]:
    lp = remote.fetch_launch_plan(name=f"flows.flytekit_flows.{name}", version=VERSION)
    execution = remote.execute(lp, inputs=inputs, wait=False)
    done = remote.wait(execution, timeout=TIMEOUT_S, poll_interval=0.2)
    assert done.closure.phase == WorkflowExecutionPhase.SUCCEEDED, done.error
    return {"name": execution.id.name, **dict(done.outputs)}


def local(name: str, **inputs: Any) -> Any:
    sys.path.insert(0, str(FLOWS.parent))
    try:
        from flows import flytekit_flows

        return getattr(flytekit_flows, name)(**inputs)
    finally:
        sys.path.remove(str(FLOWS.parent))


def test_tasks_read_and_write_the_bucket(
    remote: FlyteRemote,
    cluster: tuple[RunningServer, Path],
    s3_endpoint: str,
    bucket: str,
) -> None:
    result = run(remote, "chain", x=4, label="sum")
    assert result["o0"] == local("chain", x=4, label="sum")
    # The propeller's inputs and the tasks' outputs are objects in the bucket, not files.
    execution = f"{PREFIX}/metadata/{PROJECT}/{DOMAIN}/{result['name']}/"
    stored = keys(s3_endpoint, bucket, execution)
    assert any(k.endswith("/inputs.pb") for k in stored), stored
    assert any(k.endswith("/0/outputs.pb") for k in stored), stored
    # Only local state (the database, attempt folders) stays on disk.
    assert not (cluster[0].server.storage_root / "metadata").exists()


def test_map_task_in_the_bucket(remote: FlyteRemote) -> None:
    xs = [3, 1, 4, 1, 5]
    assert run(remote, "mapped", xs=xs)["o0"] == local("mapped", xs=xs) == 52


def test_large_inputs_and_outputs_are_offloaded(
    remote: FlyteRemote, s3_endpoint: str, bucket: str
) -> None:
    label = "L" * (3 << 19)  # 1.5 MiB: above admin's 1 MiB inline limit
    result = run(remote, "chain", x=2, label=label)
    # FlyteRemote got the whole output back through GetExecutionData.
    assert result["o0"] == local("chain", x=2, label=label)
    assert len(result["o0"]) > len(label)
    execution = f"{PREFIX}/metadata/{PROJECT}/{DOMAIN}/{result['name']}/"
    stored = keys(s3_endpoint, bucket, execution)
    # Admin keeps large maps once each, named by their content (issue 12: a copy per role made
    # 2 x 64 MB inputs take 1.1 GB): the inputs (also the user inputs) and the outputs.
    offloaded = {k for k in stored if k.startswith(execution + "literals/")}
    assert 2 <= len(offloaded) <= 3, stored
    assert not {execution + "inputs.pb", execution + "user_inputs.pb"} & stored, stored


def test_alula_execute_reads_and_writes_the_bucket(
    s3_endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alula's `alula-execute` (run by the process plugin when data is in a bucket) reaches
    inputs and outputs through fsspec with flytekit's S3 settings."""
    from alula import execute

    monkeypatch.setenv("FLYTE_AWS_ENDPOINT", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    prefix = f"s3://{bucket}/execute-test/0"
    execute._write(prefix, "outputs.pb", b"\x0a\x00")
    assert execute._read(f"{prefix}/outputs.pb") == b"\x0a\x00"
    assert "execute-test/0/outputs.pb" in keys(s3_endpoint, bucket, "execute-test/")
