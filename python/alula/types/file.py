"""`FlyteFile`: a file passed between tasks as a SINGLE blob (a URI plus an optional format)."""

from __future__ import annotations

import os
from typing import IO, Any, ClassVar

from alula.types.blob import (
    SINGLE,
    BlobPath,
    blob_literal,
    blob_type,
    is_remote,
    place_in_raw_output,
    read_blob,
)
from alula.types.transformer import Json, TypeTransformer, type_mismatch


class FlyteFile(BlobPath):
    """A file; `FlyteFile["csv"]` declares its format, which becomes the blob's format."""

    def __class_getitem__(cls, file_format: Any) -> type[FlyteFile]:
        formatted: type[FlyteFile] = super().__class_getitem__(file_format)
        return formatted

    def open(self, mode: str = "r") -> IO[Any]:
        return open(self.download(), mode)


def file_format_of(t: Any) -> str:
    return t.extension() if isinstance(t, type) and issubclass(t, FlyteFile) else ""


class FlyteFileTransformer(TypeTransformer[FlyteFile]):
    """FlyteFile, its formatted subclasses, and os.PathLike annotations."""

    # The JSON schema of a FlyteFile field inside a dataclass (matching flytekit's).
    plain_schema: ClassVar[Json] = {
        "type": "object",
        "title": "FlyteFile",
        "properties": {
            "path": {
                "anyOf": [{"type": "string"}, {"type": "string", "format": "path"}],
                "default": None,
            },
            "metadata": {
                "anyOf": [
                    {
                        "type": "object",
                        "propertyNames": {"type": "string"},
                        "additionalProperties": {"type": "string"},
                    },
                    {"type": "null"},
                ],
                "default": None,
            },
        },
        "additionalProperties": False,
    }

    def __init__(self) -> None:
        super().__init__("FlyteFilePath", FlyteFile)

    def get_literal_type(self, t: Any) -> Json:
        return {"blob": blob_type(file_format_of(t), SINGLE)}

    def _uri(self, value: Any, t: Any) -> str:
        if not isinstance(value, (FlyteFile, str, os.PathLike)):
            raise type_mismatch(t, value)
        if isinstance(value, FlyteFile):
            # Remote data is passed on by its URI, never downloaded for that; data read from
            # a local literal too, unless it still exists where it was.
            if not value.is_fetched:
                return value._path
            source = value.remote_source
            if source and (is_remote(source) or not os.path.exists(value._path)):
                return source
        path = os.fspath(value)
        return place_in_raw_output(path, is_dir=False)

    def to_literal(self, value: Any, t: Any, expected: Json) -> Json:
        return blob_literal(self._uri(value, t), file_format_of(t), SINGLE)

    def to_python_value(self, literal: Json, t: Any) -> FlyteFile:
        uri, _ = read_blob(literal, t, SINGLE)
        return self.from_plain({"path": uri}, t)

    def to_plain(self, value: Any, t: Any) -> Json:
        return {"path": self._uri(value, t)}

    def from_plain(self, data: Json, t: Any) -> FlyteFile:
        cls = t if isinstance(t, type) and issubclass(t, FlyteFile) else FlyteFile
        uri = str(data["path"])
        local = uri if is_remote(uri) else uri.removeprefix("file://")
        return cls(local, remote_source=uri)

    def guess_python_type(self, literal_type: Json) -> Any:
        blob = literal_type.get("blob")
        if blob is not None and blob.get("dimensionality", SINGLE) == SINGLE:
            return FlyteFile.__class_getitem__(blob["format"]) if blob.get("format") else FlyteFile
        return super().guess_python_type(literal_type)


# The named formats flytekit users import from flytekit.types.file (spelled with
# __class_getitem__ because type checkers read FlyteFile["csv"] as a forward reference).
CSVFile = FlyteFile.__class_getitem__("csv")
HDF5EncodedFile = FlyteFile.__class_getitem__("hdf5")
HTMLPage = FlyteFile.__class_getitem__("html")
JPEGImageFile = FlyteFile.__class_getitem__("jpeg")
JSONLFile = FlyteFile.__class_getitem__("jsonl")
JoblibSerializedFile = FlyteFile.__class_getitem__("joblib")
ONNXFile = FlyteFile.__class_getitem__("onnx")
PDFFile = FlyteFile.__class_getitem__("pdf")
PNGImageFile = FlyteFile.__class_getitem__("png")
PythonNotebook = FlyteFile.__class_getitem__("ipynb")
PythonPickledFile = FlyteFile.__class_getitem__("python_pickle")
SVGImageFile = FlyteFile.__class_getitem__("svg")
TFRecordFile = FlyteFile.__class_getitem__("tfrecord")
