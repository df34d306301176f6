"""Workflows written with the real flytekit for test_k8s_field.py: every kind of value a task
hands to the next (files, folders, data frames, pickled objects) and the platform features a task
reaches through its pod (secrets, pod templates, resources, container tasks, caching, recovery).
They run as pods that share nothing with the server: data goes through the S3 bucket."""

from __future__ import annotations

import hashlib
import os
import time

import pandas as pd
from flytekit import (
    ContainerTask,
    FlyteContextManager,
    Resources,
    Secret,
    current_context,
    kwtypes,
    task,
    workflow,
)
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile

CHUNK = 1 << 20
SECRET_GROUP, SECRET_KEY = "field-secret", "token"
POD_TEMPLATE = "field-template"


def scratch(name: str) -> str:
    return os.path.join(current_context().working_directory, name)


@task
def write_file(text: str) -> FlyteFile:
    path = scratch("note.txt")
    with open(path, "w") as f:
        f.write(text)
    return FlyteFile(path)


@task
def read_file(f: FlyteFile) -> str:
    with open(f) as fh:
        return fh.read()


@task
def write_dir(n: int) -> FlyteDirectory:
    path = scratch("parts")
    os.makedirs(os.path.join(path, "sub"), exist_ok=True)
    for i in range(n):
        with open(os.path.join(path, "sub" if i % 2 else "", f"part-{i}.txt"), "w") as f:
            f.write(str(i * i))
    return FlyteDirectory(path)


@task
def read_dir(d: FlyteDirectory) -> list[str]:
    local = d.download()
    found = []
    for root, _, files in os.walk(local):
        for name in files:
            with open(os.path.join(root, name)) as f:
                found.append(f"{os.path.relpath(os.path.join(root, name), local)}={f.read()}")
    return sorted(found)


@task
def make_frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": list(range(n)), "y": [f"row{i}" for i in range(n)]})


@task
def sum_frame(df: pd.DataFrame) -> int:
    return int(df["x"].sum()) + len(df["y"].unique())


class Box:
    """A plain class: flytekit pickles it."""

    def __init__(self, items: dict[str, int]) -> None:
        self.items = items


@task
def make_box(x: int) -> Box:
    return Box({"x": x, "twice": 2 * x})


@task
def open_box(b: Box) -> int:
    return b.items["x"] + b.items["twice"]


@workflow
def passing(text: str = "hello", n: int = 4) -> tuple[str, list[str], int, int]:
    return (
        read_file(f=write_file(text=text)),
        read_dir(d=write_dir(n=n)),
        sum_frame(df=make_frame(n=n)),
        open_box(b=make_box(x=n)),
    )


def big_chunk(i: int) -> bytes:
    """The i-th MiB of the big file: cheap to make, different per chunk."""
    return hashlib.sha256(str(i).encode()).digest() * (CHUNK // 32)


# flytekit's upload of a 200 MB file peaks above 512 MiB (s3fs buffers): room for it.
@task(requests=Resources(mem="256Mi"), limits=Resources(mem="1Gi"))
def make_big(mb: int) -> FlyteFile:
    path = scratch("big.bin")
    with open(path, "wb") as f:
        for i in range(mb):
            f.write(big_chunk(i))
    return FlyteFile(path)


@task(requests=Resources(mem="256Mi"), limits=Resources(mem="1Gi"))
def digest_big(f: FlyteFile) -> str:
    h = hashlib.sha256()
    with open(f, "rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


@workflow
def big(mb: int = 200) -> str:
    return digest_big(f=make_big(mb=mb))


@task
def read_env(name: str) -> str:
    return os.environ.get(name, "")


@workflow
def env_wf(name: str = "FIELD_ENV") -> str:
    return read_env(name=name)


@task(secret_requests=[Secret(group=SECRET_GROUP, key=SECRET_KEY)])
def read_secret() -> str:
    return current_context().secrets.get(SECRET_GROUP, SECRET_KEY)


@workflow
def secret_wf() -> str:
    return read_secret()


@task(pod_template_name=POD_TEMPLATE)
def templated() -> str:
    return os.environ.get("FROM_TEMPLATE", "")


@workflow
def template_wf() -> str:
    return templated()


@task
def plain(x: int) -> int:
    return x + 1


@workflow
def plain_wf(x: int = 1) -> int:
    return plain(x=x)


shell = ContainerTask(
    name="field_shell",
    image="docker.io/library/busybox:1.36",
    input_data_dir="/var/inputs",
    output_data_dir="/var/outputs",
    inputs=kwtypes(a=int, text=str),
    outputs=kwtypes(total=int, shout=str),
    command=[
        "sh",
        "-c",
        "a=$(cat /var/inputs/a); echo $((a * 2)) > /var/outputs/total; "
        "tr a-z A-Z < /var/inputs/text | tr -d '\\n' > /var/outputs/shout",
    ],
)


@workflow
def shell_wf(a: int = 21, text: str = "quiet") -> tuple[int, str]:
    return shell(a=a, text=text)


@task(cache=True, cache_version="1", cache_serialize=True)
def slow_square(x: int, run: str) -> int:
    time.sleep(4)
    return x * x


@workflow
def cached_wf(x: int, run: str) -> int:
    return slow_square(x=x, run=run)


@task
def first_step(x: int) -> int:
    return x * 10


@task
def needs_marker(y: int, marker: str) -> int:
    """Fails unless the object `marker` (an s3:// URI) exists: the test creates it between the
    execution and its recovery."""
    fs = FlyteContextManager.current_context().file_access.get_filesystem_for_path(marker)
    if not fs.exists(marker):
        raise ValueError(f"{marker} does not exist yet")
    return y + 1


@workflow
def recoverable(x: int, marker: str) -> int:
    return needs_marker(y=first_step(x=x), marker=marker)
