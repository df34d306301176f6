"""Workflows written with Alula's SDK for test_k8s_field.py: files, folders, data frames and
pickled objects passed between tasks that run as pods sharing nothing with the server (every
value goes through the S3 bucket), and a big file streamed through with bounded memory."""

from __future__ import annotations

import hashlib
import os
import tempfile

import pandas as pd

from alula import Resources, task, workflow
from alula.types import FlyteDirectory, FlyteFile

CHUNK = 1 << 20


@task
def write_file(text: str) -> FlyteFile:
    path = os.path.join(tempfile.mkdtemp(), "note.txt")
    with open(path, "w") as f:
        f.write(text)
    return FlyteFile(path)


@task
def read_file(f: FlyteFile) -> str:
    with open(f.download()) as fh:
        return fh.read()


@task
def write_dir(n: int) -> FlyteDirectory:
    path = tempfile.mkdtemp()
    os.makedirs(os.path.join(path, "sub"))
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
    """A plain class: the SDK pickles it."""

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


@task(requests=Resources(mem="256Mi"), limits=Resources(mem="512Mi"))
def make_big(mb: int) -> FlyteFile:
    path = os.path.join(tempfile.mkdtemp(), "big.bin")
    with open(path, "wb") as f:
        for i in range(mb):
            f.write(big_chunk(i))
    return FlyteFile(path)


@task(requests=Resources(mem="256Mi"), limits=Resources(mem="512Mi"))
def digest_big(f: FlyteFile) -> str:
    h = hashlib.sha256()
    with open(f.download(), "rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


@workflow
def big(mb: int = 200) -> str:
    return digest_big(f=make_big(mb=mb))
