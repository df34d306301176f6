"""`alula-execute` on an S3-backed cluster, without fsspec: a task's inputs.pb, outputs and raw
output all live in a bucket (moto), and the files, folders, data sets and pickles tasks take
and return travel through Alula's native storage layer. The task process runs with fsspec,
s3fs, boto and flytekit made unimportable, as in an image that has only Alula.

A 200 MB file through a task (downloaded as input, uploaded as output) must not cost the task
process 200 MB of memory: both ways stream."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alula import _native, storage
from alula.core.local import _kinds
from alula.types import FlyteDirectory, FlyteFile, StructuredDataset
from alula.types.context import set_uploader, uploading

TASKS = textwrap.dedent(
    '''
    import hashlib
    import os

    import pandas as pd

    from alula import task
    from alula.types import FlyteDirectory, FlyteFile, StructuredDataset


    class Point:
        """No transformer: sent as a pickle."""

        def __init__(self, x: int, y: int) -> None:
            self.x, self.y = x, y


    def _out(name: str) -> str:
        folder = os.path.join(os.getcwd(), "task-out")
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, name)


    @task
    def shout(f: FlyteFile) -> FlyteFile:
        with f.open() as src:
            text = src.read()
        out = _out("shout.txt")
        with open(out, "w") as dst:
            dst.write(text.upper())
        return FlyteFile(out)


    @task
    def count(d: FlyteDirectory) -> FlyteDirectory:
        names = sorted(
            os.path.relpath(os.path.join(r, n), d) for r, _, ns in os.walk(d) for n in ns
        )
        out = _out("counted")
        os.makedirs(os.path.join(out, "deep"), exist_ok=True)
        with open(os.path.join(out, "deep", "names.txt"), "w") as f:
            f.write(",".join(names))
        return FlyteDirectory(out)


    @task
    def bump(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(a=df["a"] + 1)


    @task
    def dataset_rows(sd: StructuredDataset) -> int:
        return len(sd.open(pd.DataFrame).all())


    @task
    def move(p: Point) -> Point:
        return Point(p.x + 1, p.y * 2)


    @task
    def passthrough(f: FlyteFile) -> FlyteFile:
        return f


    @task
    def copy_big(f: FlyteFile) -> FlyteFile:
        digest = hashlib.sha256()
        out = _out("big-copy.bin")
        with open(f, "rb") as src, open(out, "wb") as dst:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                dst.write(chunk)
        with open(out + ".sha256", "w") as note:
            note.write(digest.hexdigest())
        return FlyteFile(out)
    '''
)

# Runs alula-execute with the object-storage libraries a flytekit image would bring made
# unimportable, and records the process's peak memory.
RUNNER = textwrap.dedent(
    """
    import importlib.abc
    import os
    import resource
    import sys

    BLOCKED = {"fsspec", "s3fs", "gcsfs", "adlfs", "boto3", "botocore", "aiobotocore", "flytekit"}


    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: the task image has no {name}")
            return None


    sys.meta_path.insert(0, Block())
    try:
        import importlib

        importlib.import_module(os.environ.get("RUNNER_MODULE", "alula.execute")).main()
    finally:
        with open(os.environ["RSS_FILE"], "w") as f:
            f.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
    """
)


@pytest.fixture(scope="module")
def bucket(s3_endpoint: str) -> str:
    name = f"alula-tasks-{uuid.uuid4().hex[:12]}"
    urllib.request.urlopen(urllib.request.Request(f"{s3_endpoint}/{name}", method="PUT"))
    return name


@pytest.fixture(scope="module")
def aws(s3_endpoint: str) -> Iterator[dict[str, str]]:
    """flytekit's S3 settings, in this process (which writes inputs and reads outputs through
    the same native layer) and for the task processes."""
    env = {
        "FLYTE_AWS_ENDPOINT": s3_endpoint,
        "FLYTE_AWS_ACCESS_KEY_ID": "test",
        "FLYTE_AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
    }
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("task-storage")
    (work / "storage_tasks.py").write_text(TASKS)
    (work / "runner.py").write_text(RUNNER)
    return work


def _encode(values: dict[str, Any], types: dict[str, Any], raw: str) -> bytes:
    """inputs.pb as an executor writes it: offloaded values uploaded below `raw`."""

    def upload(local: str, is_dir: bool) -> str:
        target = storage.join(raw, uuid.uuid4().hex)
        if is_dir:
            return storage.upload_dir(local, target)
        return storage.upload(local, storage.join(target, os.path.basename(local)))

    with uploading(upload):
        return _native.encode_values(values, _kinds(types))


def execute(
    workdir: Path, aws: dict[str, str], task: str, inputs_uri: str, out: str, raw: str
) -> int:
    """Runs `task` in an alula-execute process; returns its peak RSS in KiB."""
    rss = workdir / f"{task}-{uuid.uuid4().hex[:6]}.rss"
    python_path = os.pathsep.join([str(workdir), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, str(workdir / "runner.py"), "--inputs", inputs_uri]
        + ["--output-prefix", out, "--raw-output-data-prefix", raw, "--checkpoint-path", ""]
        + ["--prev-checkpoint", "", "--resolver", "alula.core.resolver.default_task_resolver"]
        + ["--", "task-module", "storage_tasks", "task-name", task],
        env={**os.environ, **aws, "PYTHONPATH": python_path, "RSS_FILE": str(rss)},
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert storage.exists(f"{out}/outputs.pb"), _error(out)
    return int(rss.read_text())


def _error(out: str) -> str:
    if storage.exists(f"{out}/error.pb"):
        return _native.message_to_json(
            "flyteidl.core.ErrorDocument", storage.read(f"{out}/error.pb")
        )
    return "no outputs.pb and no error.pb"


def _outputs(out: str, types: dict[str, Any]) -> dict[str, Any]:
    return _native.decode_values(storage.read(f"{out}/outputs.pb"), _kinds(types))


def _prefixes(bucket: str, name: str) -> tuple[str, str, str]:
    """(inputs.pb URI, output prefix, raw output prefix) of one attempt in the bucket."""
    base = f"s3://{bucket}/{name}-{uuid.uuid4().hex[:8]}"
    return f"{base}/inputs.pb", f"{base}/out/0", f"{base}/raw"


def test_files_round_trip(workdir: Path, aws: dict[str, str], bucket: str) -> None:
    inputs, out, raw = _prefixes(bucket, "file")
    source = workdir / "hello.txt"
    source.write_text("hello from the bucket")
    storage.write(inputs, _encode({"f": FlyteFile(str(source))}, {"f": FlyteFile}, raw))
    execute(workdir, aws, "shout", inputs, out, raw)
    result = _outputs(out, {"o0": FlyteFile})["o0"]
    assert result.remote_source.startswith(raw + "/"), result.remote_source
    assert not result.is_fetched
    with result.open() as f:
        assert f.read() == "HELLO FROM THE BUCKET"


def test_a_passed_on_file_is_not_copied(workdir: Path, aws: dict[str, str], bucket: str) -> None:
    inputs, out, raw = _prefixes(bucket, "pass")
    given = f"s3://{bucket}/elsewhere/{uuid.uuid4().hex}/data.bin"
    storage.write(given, b"12345")
    storage.write(inputs, _encode({"f": FlyteFile(given)}, {"f": FlyteFile}, raw))
    execute(workdir, aws, "passthrough", inputs, out, raw)
    assert _outputs(out, {"o0": FlyteFile})["o0"].remote_source == given


def test_directories_round_trip(workdir: Path, aws: dict[str, str], bucket: str) -> None:
    inputs, out, raw = _prefixes(bucket, "dir")
    folder = workdir / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    storage.write(inputs, _encode({"d": FlyteDirectory(str(folder))}, {"d": FlyteDirectory}, raw))
    execute(workdir, aws, "count", inputs, out, raw)
    result = _outputs(out, {"o0": FlyteDirectory})["o0"]
    assert result.remote_source.startswith(raw + "/"), result.remote_source
    assert [os.path.basename(p) for p in result.listdir()] == ["deep"]
    assert Path(result, "deep", "names.txt").read_text() == "a.txt,sub/b.txt"


def test_data_frames_round_trip(workdir: Path, aws: dict[str, str], bucket: str) -> None:
    import pandas as pd

    inputs, out, raw = _prefixes(bucket, "frame")
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    storage.write(inputs, _encode({"df": frame}, {"df": pd.DataFrame}, raw))
    execute(workdir, aws, "bump", inputs, out, raw)
    literal = _native.message_to_json("flyteidl.core.LiteralMap", storage.read(f"{out}/outputs.pb"))
    assert f'"uri":"{raw}/' in literal, literal
    result = _outputs(out, {"o0": pd.DataFrame})["o0"]
    assert result["a"].tolist() == [2, 3, 4]
    assert result["b"].tolist() == ["x", "y", "z"]

    # A StructuredDataset input read from the bucket.
    inputs, out, raw = _prefixes(bucket, "dataset")
    storage.write(inputs, _encode({"sd": frame}, {"sd": StructuredDataset}, raw))
    execute(workdir, aws, "dataset_rows", inputs, out, raw)
    assert _outputs(out, {"o0": int})["o0"] == 3


def test_pickles_round_trip(workdir: Path, aws: dict[str, str], bucket: str) -> None:
    sys.path.insert(0, str(workdir))
    try:
        import storage_tasks  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(workdir))
    inputs, out, raw = _prefixes(bucket, "pickle")
    point = storage_tasks.Point(2, 5)
    storage.write(inputs, _encode({"p": point}, {"p": storage_tasks.Point}, raw))
    execute(workdir, aws, "move", inputs, out, raw)
    literal = _native.message_to_json("flyteidl.core.LiteralMap", storage.read(f"{out}/outputs.pb"))
    assert f'"uri":"{raw}/' in literal, literal
    moved = _outputs(out, {"o0": storage_tasks.Point})["o0"]
    assert (moved.x, moved.y) == (3, 10)


BIG = 200 << 20
# What the task process may use above a run with a tiny file: a few upload parts in flight
# and the interpreter's buffers, far below the file's 200 MB.
RSS_BUDGET_KIB = 150 << 10


def test_a_large_file_streams_both_ways(workdir: Path, aws: dict[str, str], bucket: str) -> None:
    small_inputs, small_out, raw = _prefixes(bucket, "small")
    tiny = workdir / "tiny.bin"
    tiny.write_bytes(b"x" * 1024)
    storage.write(small_inputs, _encode({"f": FlyteFile(str(tiny))}, {"f": FlyteFile}, raw))
    baseline = execute(workdir, aws, "copy_big", small_inputs, small_out, raw)

    big = workdir / "big.bin"
    digest = hashlib.sha256()
    with big.open("wb") as f:
        for _ in range(BIG >> 20):
            chunk = os.urandom(1 << 20)
            digest.update(chunk)
            f.write(chunk)
    inputs, out, raw = _prefixes(bucket, "big")
    storage.write(inputs, _encode({"f": FlyteFile(str(big))}, {"f": FlyteFile}, raw))
    big.unlink()
    started = time.monotonic()
    peak = execute(workdir, aws, "copy_big", inputs, out, raw)
    elapsed = time.monotonic() - started
    result = _outputs(out, {"o0": FlyteFile})["o0"]
    assert storage.exists(result.remote_source)
    assert _native.storage_size(result.remote_source) == BIG
    # The task saw the bytes that were sent; the copy it uploaded is whole.
    assert (workdir / "task-out" / "big-copy.bin.sha256").read_text() == digest.hexdigest()
    tail = storage.read_range(result.remote_source, BIG - 4096, BIG)
    with open(result, "rb") as f:
        f.seek(BIG - 4096)
        assert f.read() == tail
    print(
        f"\n200 MB through a task: peak RSS {peak / 1024:.0f} MiB "
        f"(baseline {baseline / 1024:.0f} MiB), "
        f"{2 * BIG / (1 << 20) / elapsed:.0f} MiB/s down+up in {elapsed:.1f}s"
    )
    assert peak - baseline < RSS_BUDGET_KIB, (peak, baseline)


def test_a_bundle_is_fetched_without_fsspec(
    workdir: Path, aws: dict[str, str], bucket: str
) -> None:
    """`alula-fast-execute` reads a code bundle a server keeps in a bucket."""
    import io
    import tarfile

    code = b"VALUE = 42\n"
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as tar:
        info = tarfile.TarInfo("shipped.py")
        info.size = len(code)
        tar.addfile(info, io.BytesIO(code))
    uri = f"s3://{bucket}/bundles/{uuid.uuid4().hex}/fast.tar.gz"
    storage.write(uri, packed.getvalue())
    dest = workdir / "unpacked"
    rss = workdir / "bundle.rss"
    done = subprocess.run(
        [sys.executable, str(workdir / "runner.py"), "--additional-distribution", uri]
        + [
            "--dest-dir",
            str(dest),
            "--",
            sys.executable,
            "-c",
            "import shipped; print(shipped.VALUE)",
        ],
        env={**os.environ, **aws, "RUNNER_MODULE": "alula.fast_execute", "RSS_FILE": str(rss)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["42"]
    assert (dest / "shipped.py").read_bytes() == code


def teardown_module() -> None:
    set_uploader(None)
