"""What FlyteFile and FlyteDirectory share: blob literals and placing local data in raw output."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from alula.types.context import new_download_path, new_raw_output_path, raw_output_dir, uploader
from alula.types.transformer import Json, TypeTransformerFailedError, scalar_of

SINGLE, MULTIPART = "SINGLE", "MULTIPART"


def blob_type(file_format: str, dimensionality: str) -> Json:
    """A BlobType in proto3 JSON: defaults (empty format, SINGLE) are left out, as protobuf does."""
    blob: Json = {}
    if file_format:
        blob["format"] = file_format
    if dimensionality != SINGLE:
        blob["dimensionality"] = dimensionality
    return blob


def blob_literal(uri: str, file_format: str, dimensionality: str) -> Json:
    metadata = {"type": blob_type(file_format, dimensionality)}
    return {"scalar": {"blob": {"metadata": metadata, "uri": uri}}}


def read_blob(literal: Json, t: Any, dimensionality: str) -> tuple[str, str]:
    """(uri, format) of a blob literal of the given dimensionality."""
    blob = scalar_of(literal, "blob", t)
    blob_meta = blob.get("metadata", {}).get("type", {})
    actual = blob_meta.get("dimensionality", SINGLE)
    if actual != dimensionality:
        raise TypeTransformerFailedError(
            f"Cannot read blob {blob.get('uri')!r} as {t}: expected a {dimensionality} blob, "
            f"got {actual}"
        )
    return str(blob.get("uri", "")), str(blob_meta.get("format", ""))


def is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def place_in_raw_output(path: str, is_dir: bool) -> str:
    """The URI of local data once it is in the raw-output folder (copied there if elsewhere).

    Copying decouples the output from later edits of the user's file, as flytekit's upload does;
    data already under the raw-output folder (a previous task's output) is not copied again.
    With an uploader set (remote raw output) the data is streamed from where it is to its
    remote place instead, without a local copy.
    """
    if is_remote(path):
        return path
    if path.startswith("file://"):
        path = path[len("file://") :]
    source = os.path.abspath(path)
    upload = uploader()
    if upload is not None:
        if not (os.path.isdir(source) if is_dir else os.path.isfile(source)):
            kind = "Directory" if is_dir else "File"
            raise TypeTransformerFailedError(f"{kind} {path!r} does not exist")
        return upload(source, is_dir)
    if source.startswith(os.path.abspath(raw_output_dir()) + os.sep):
        return source
    import shutil  # lazily: only needed once a file is actually copied

    if is_dir:
        if not os.path.isdir(source):
            raise TypeTransformerFailedError(f"Directory {path!r} does not exist")
        target = new_raw_output_path()
        shutil.copytree(source, target)
        return target
    if not os.path.isfile(source):
        raise TypeTransformerFailedError(f"File {path!r} does not exist")
    target = new_raw_output_path(os.path.basename(source))
    shutil.copyfile(source, target)
    return target


_FORMATTED: dict[tuple[type, str], type] = {}


class BlobPath(os.PathLike[str]):
    """What FlyteFile and FlyteDirectory share: a local path, the URI it was read from, and a
    format declared by subscripting (`FlyteFile["csv"]`)."""

    _format: ClassVar[str] = ""
    _is_dir: ClassVar[bool] = False

    def __init__(self, path: str | os.PathLike[str], remote_source: str | None = None) -> None:
        self._path = os.fspath(path)
        self._remote_source = remote_source
        # A value read from an object store is downloaded on first use (as flytekit does):
        # a task that only passes it on never moves its bytes.
        self._fetched = not is_remote(self._path)

    @classmethod
    def extension(cls) -> str:
        return cls._format

    def __class_getitem__(cls, file_format: Any) -> Any:
        # One class per format, so FlyteFile["csv"] is FlyteFile["csv"] (types compare equal).
        file_format = str(file_format).lstrip(".")
        key = (cls, file_format)
        if key not in _FORMATTED:
            _FORMATTED[key] = type(
                f"{cls.__name__}[{file_format}]", (cls,), {"_format": file_format}
            )
        return _FORMATTED[key]

    @property
    def path(self) -> str:
        """The local path (downloading remote data first)."""
        return self.download()

    @property
    def remote_source(self) -> str | None:
        """The URI this value was read from, when it came from a literal."""
        return self._remote_source

    def __fspath__(self) -> str:
        return self.download()

    @property
    def is_fetched(self) -> bool:
        """Whether the data is on the local file system (always, unless read from a store)."""
        return self._fetched

    def download(self) -> str:
        """The local path, after downloading the data when it lives in an object store."""
        if not self._fetched:
            from alula import storage

            uri = self._path
            name = uri.rstrip("/").rsplit("/", 1)[-1] or "data"
            local = new_download_path(name)
            if self._is_dir:
                storage.download_dir(uri, local)
            else:
                storage.download(uri, local)
            self._path, self._fetched = local, True
        return self._path

    def __eq__(self, other: object) -> bool:
        # A file never equals a folder with the same path: compare the kind too.
        if isinstance(other, BlobPath) and self._is_dir == other._is_dir:
            return self._path == other._path and self.extension() == other.extension()
        return False

    def __hash__(self) -> int:
        return hash(self._path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._path!r})"
