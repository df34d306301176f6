"""Where the type engine writes the files behind offloaded values (blobs, datasets, pickles).

A module-level setting rather than a context object: the local executor points it at its run's
raw-output folder once, and every transformer reads it. Until then a temporary folder is
created on first use, so importing the SDK never touches the file system.
"""

from __future__ import annotations

import os

_raw_output_dir: str | None = None


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
