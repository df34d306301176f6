"""Fast registration onto an S3-compatible bucket: alula-server with `ALULA_STORAGE_URL=s3://...`
against moto hands out upload URLs presigned by the bucket, so `pyflyte register` and Alula's
own `Remote.register` put their code bundles straight into the bucket; the registered tasks
start with `--additional-distribution s3://...`, which `alula-fast-execute` reads back.

Running the tasks on S3 is test_s3_storage.py's business."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from conftest import RunningServer, s3_env, start_server

from alula import _native
from alula.remote import Remote, bundle

FLOWS = Path(__file__).parent / "flows"
PYFLYTE = Path(sys.executable).parent / "pyflyte"
PROJECT, DOMAIN = "flytesnacks", "development"
PREFIX = "alula"


@pytest.fixture(scope="module")
def bucket(s3_endpoint: str) -> str:
    name = f"alula-register-{uuid.uuid4().hex[:12]}"
    urllib.request.urlopen(urllib.request.Request(f"{s3_endpoint}/{name}", method="PUT"))
    return name


@pytest.fixture(scope="module")
def server(
    s3_endpoint: str, bucket: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("alula-s3-register"),
        propeller=False,
        extra_env={"ALULA_STORAGE_URL": f"s3://{bucket}/{PREFIX}", **s3_env(s3_endpoint)},
    )
    try:
        yield running
    finally:
        code = running.stop()
    assert code == 0, f"alula-server exited with {code}:\n{running.server.log_file.read_text()}"


@pytest.fixture(scope="module")
def s3(s3_endpoint: str) -> Any:
    """The bucket as the tests' own client sees it (signed requests: moto refuses anonymous
    reads of objects)."""
    return fsspec.filesystem(
        "s3",
        key="test",
        secret="test",
        client_kwargs={"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
        skip_instance_cache=True,
    )


def uploads(s3: Any, bucket: str) -> list[str]:
    s3.invalidate_cache()
    return sorted(f"s3://{key}" for key in s3.find(f"{bucket}/{PREFIX}/uploads"))


def task_args(server: RunningServer, name: str, version: str) -> list[str]:
    request = {
        "id": {
            "resourceType": "TASK",
            "project": PROJECT,
            "domain": DOMAIN,
            "name": name,
            "version": version,
        }
    }
    data = _native.message_from_json("flyteidl.admin.ObjectGetRequest", json.dumps(request))
    out = _native.grpc_unary(
        f"127.0.0.1:{server.server.grpc_port}", "/flyteidl.service.AdminService/GetTask", data
    )
    task = json.loads(_native.message_to_json("flyteidl.admin.Task", out))
    args: list[str] = task["closure"]["compiledTask"]["template"]["container"]["args"]
    return args


def distribution(args: list[str]) -> str:
    return args[args.index("--additional-distribution") + 1]


def test_pyflyte_fast_registration_lands_in_the_bucket(
    server: RunningServer, bucket: str, s3: Any, s3_endpoint: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copytree(FLOWS, src / "flows")
    done = subprocess.run(
        [PYFLYTE, "--config", server.server.config_file, "register", "--version", "fast-v1"]
        + ["flows/flytekit_flows.py"],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (uploaded,) = [u for u in uploads(s3, bucket) if u.endswith(".tar.gz")]
    with tarfile.open(fileobj=io.BytesIO(s3.cat(uploaded))) as tar:
        assert "flows/flytekit_flows.py" in tar.getnames()

    # Every registered task unpacks that very object before it runs.
    args = task_args(server, "flows.flytekit_flows.add", "fast-v1")
    assert distribution(args) == uploaded

    # ... which alula-fast-execute reads from the bucket (through fsspec) and unpacks.
    dest = tmp_path / "dest"
    run = subprocess.run(
        [sys.executable, "-m", "alula.fast_execute", "--additional-distribution", uploaded]
        + ["--dest-dir", str(dest), "--", sys.executable, "-c", "import flows.flytekit_flows"],
        cwd=tmp_path,
        env={**os.environ, **s3_env(s3_endpoint)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert (dest / "flows" / "flytekit_flows.py").read_text() == (
        FLOWS / "flytekit_flows.py"
    ).read_text()

    missing = subprocess.run(
        [sys.executable, "-m", "alula.fast_execute", "--additional-distribution"]
        + [f"s3://{bucket}/{PREFIX}/uploads/none.tar.gz", "--", "true"],
        env={**os.environ, **s3_env(s3_endpoint)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode != 0
    assert "none.tar.gz: no such bundle" in missing.stderr


def test_alula_remote_registers_into_the_bucket(
    server: RunningServer, bucket: str, s3: Any
) -> None:
    remote = Remote(f"dns:///127.0.0.1:{server.server.grpc_port}", PROJECT, DOMAIN)
    registration = remote.register(FLOWS / "alula_flows.py")
    native_url = registration.native_url
    assert native_url.startswith(f"s3://{bucket}/{PREFIX}/uploads/{PROJECT}/{DOMAIN}/")
    assert native_url in uploads(s3, bucket)
    assert s3.cat(native_url) == bundle(FLOWS)
    args = task_args(server, "alula_flows.double", registration.version)
    assert distribution(args) == native_url
