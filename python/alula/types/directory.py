"""`FlyteDirectory`: a folder passed between tasks as a MULTIPART blob."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from alula.types.blob import (
    MULTIPART,
    BlobPath,
    blob_literal,
    blob_type,
    is_remote,
    place_in_raw_output,
    read_blob,
)
from alula.types.transformer import Json, TypeTransformer, type_mismatch


class FlyteDirectory(BlobPath):
    """A folder; `FlyteDirectory["csv"]` declares the format of the files inside."""

    _is_dir: ClassVar[bool] = True

    def __class_getitem__(cls, file_format: Any) -> type[FlyteDirectory]:
        formatted: type[FlyteDirectory] = super().__class_getitem__(file_format)
        return formatted

    def listdir(self) -> list[str]:
        """Paths of the entries of this folder, sorted."""
        local = self.download()
        return sorted(os.path.join(local, name) for name in os.listdir(local))


def directory_format_of(t: Any) -> str:
    return t.extension() if isinstance(t, type) and issubclass(t, FlyteDirectory) else ""


class FlyteDirectoryTransformer(TypeTransformer[FlyteDirectory]):
    plain_schema: ClassVar[Json] = {
        "type": "object",
        "title": "FlyteDirectory",
        "properties": {
            "path": {
                "anyOf": [{"type": "string"}, {"type": "string", "format": "path"}],
                "default": None,
            },
        },
        "additionalProperties": False,
    }

    def __init__(self) -> None:
        super().__init__("FlyteDirectory", FlyteDirectory)

    def get_literal_type(self, t: Any) -> Json:
        return {"blob": blob_type(directory_format_of(t), MULTIPART)}

    def _uri(self, value: Any, t: Any) -> str:
        if not isinstance(value, (FlyteDirectory, str, os.PathLike)):
            raise type_mismatch(t, value)
        if isinstance(value, FlyteDirectory):
            # Remote data is passed on by its URI, never downloaded for that; data read from
            # a local literal too, unless it still exists where it was.
            if not value.is_fetched:
                return value._path
            source = value.remote_source
            if source and (is_remote(source) or not os.path.exists(value._path)):
                return source
        path = os.fspath(value)
        return place_in_raw_output(path, is_dir=True)

    def to_literal(self, value: Any, t: Any, expected: Json) -> Json:
        return blob_literal(self._uri(value, t), directory_format_of(t), MULTIPART)

    def to_python_value(self, literal: Json, t: Any) -> FlyteDirectory:
        uri, _ = read_blob(literal, t, MULTIPART)
        return self.from_plain({"path": uri}, t)

    def to_plain(self, value: Any, t: Any) -> Json:
        return {"path": self._uri(value, t)}

    def from_plain(self, data: Json, t: Any) -> FlyteDirectory:
        cls = t if isinstance(t, type) and issubclass(t, FlyteDirectory) else FlyteDirectory
        uri = str(data["path"])
        local = uri if is_remote(uri) else uri.removeprefix("file://")
        return cls(local, remote_source=uri)

    def guess_python_type(self, literal_type: Json) -> Any:
        blob = literal_type.get("blob")
        if blob is not None and blob.get("dimensionality") == MULTIPART:
            return (
                FlyteDirectory.__class_getitem__(blob["format"])
                if blob.get("format")
                else FlyteDirectory
            )
        return super().guess_python_type(literal_type)


# The named formats flytekit users import from flytekit.types.directory.
TFRecordsDirectory = FlyteDirectory.__class_getitem__("tfrecords_dir")
TensorboardLogs = FlyteDirectory.__class_getitem__("tensorboard")
