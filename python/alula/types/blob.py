"""What FlyteFile and FlyteDirectory share: blob literals and placing local data in raw output."""

from __future__ import annotations

import os
from typing import Any

from alula.types.context import new_raw_output_path, raw_output_dir
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
    """
    if is_remote(path):
        return path
    if path.startswith("file://"):
        path = path[len("file://") :]
    source = os.path.abspath(path)
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
