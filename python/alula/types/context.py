"""Where the type engine writes the files behind offloaded values (blobs, datasets, pickles).

A module-level setting rather than a context object: the local executor points it at its run's
raw-output folder once, and every transformer reads it. Until then a temporary folder is
created on first use, so importing the SDK never touches the file system.

When the raw output lives in an object store (`alula-execute --raw-output-data-prefix s3://...`)
or must reach a server (`Remote.execute` with local files), an *uploader* is set: values are
still written locally first (a task writes files, pandas writes parquet), then streamed to
their remote place, and the literal carries the remote URI.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_raw_output_dir: str | None = None
_download_dir: str | None = None

Uploader = Callable[[str, bool], str]
"""(local path, is a folder) -> the URI the data was uploaded to."""

_uploader: Uploader | None = None


def raw_output_dir() -> str:
    """The local folder offloaded values are written under (created lazily)."""
    global _raw_output_dir
    if _raw_output_dir is None:
        import tempfile  # lazily: importing the SDK stays fast

        _raw_output_dir = tempfile.mkdtemp(prefix="alula-raw-")
    return _raw_output_dir


def set_raw_output_dir(path: str | os.PathLike[str]) -> None:
    """Point the type engine at another raw-output folder (created if missing)."""
    global _raw_output_dir
    os.makedirs(path, exist_ok=True)
    _raw_output_dir = os.fspath(path)


def new_raw_output_path(name: str | None = None) -> str:
    """A fresh, unique location under the raw-output folder.

    Each value gets its own random sub-folder, as flytekit does, so two outputs with the same
    file name never overwrite each other.
    """
    folder = os.path.join(raw_output_dir(), random_name())
    if name is None:
        return folder
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, name)


def random_name() -> str:
    """128 random bits in hex: a collision-free file or folder name (uuid4's entropy)."""
    return os.urandom(16).hex()


def set_raw_output_prefix(prefix: str) -> None:
    """Where offloaded values go: a local folder, or an object store folder (`s3://...`) that
    each value is uploaded below, in a random sub-folder of its own as flytekit does."""
    from alula import storage

    if not storage.is_remote(prefix):
        # A warm worker runs attempt after attempt: drop a previous attempt's uploader.
        set_uploader(None)
        set_raw_output_dir(storage.local_path(prefix))
        return

    def upload(local: str, is_dir: bool) -> str:
        target = storage.join(prefix, random_name())
        if is_dir:
            return storage.upload_dir(local, target)
        return storage.upload(local, storage.join(target, os.path.basename(local)))

    set_uploader(upload)


def set_uploader(uploader: Uploader | None) -> None:
    global _uploader
    _uploader = uploader


def uploader() -> Uploader | None:
    """The uploader offloaded values go through, None when they stay in the local folder."""
    return _uploader


@contextmanager
def uploading(to: Uploader) -> Iterator[None]:
    """Offloaded values go through `to` inside the block."""
    global _uploader
    before, _uploader = _uploader, to
    try:
        yield
    finally:
        _uploader = before


def new_download_path(name: str) -> str:
    """A fresh local location for a remote input (a temporary folder made on first use)."""
    global _download_dir
    if _download_dir is None:
        import tempfile

        _download_dir = tempfile.mkdtemp(prefix="alula-in-")
    return os.path.join(_download_dir, random_name(), name)


def fetch_local(uri: str, name: str | None = None) -> str:
    """A local path with what `uri` names: the path itself for local data, else a download
    (an object, or a folder of objects) to a fresh temporary location."""
    from alula import storage

    if not storage.is_remote(uri):
        return storage.local_path(uri)
    target = new_download_path(name or uri.rstrip("/").rsplit("/", 1)[-1] or "data")
    return storage.fetch(uri, target)


def local_path(uri: str) -> str:
    """The local file-system path of a URI written by this engine (a path or a file:// URI).

    Remote object stores are reached through the storage layer, not here; naming the URI keeps
    the error actionable until that layer is wired in.
    """
    if uri.startswith("file://"):
        return uri[len("file://") :]
    if "://" in uri:
        raise ValueError(f"Cannot read {uri!r}: only local paths and file:// URIs are supported")
    return uri
