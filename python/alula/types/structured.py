"""`StructuredDataset` and pandas DataFrames: tables stored as parquet under raw output.

pandas and pyarrow are optional; they are imported only when a data frame is written or read.
`Annotated[StructuredDataset, kwtypes(a=int)]` declares (and selects) a subset of columns.
"""

from __future__ import annotations

import collections
import os
from typing import Any, ClassVar

from alula.extras import require
from alula.types.context import fetch_local, new_raw_output_path, uploader
from alula.types.engine import unwrap_annotated
from alula.types.transformer import Json, TypeTransformer, TypeTransformerFailedError, scalar_of

PARQUET = "parquet"
# The file flytekit writes inside a data set's folder; matched so either side can read it.
_PARQUET_FILE = "00000"


def kwtypes(**columns: Any) -> collections.OrderedDict[str, Any]:
    """Named column types, in order: `Annotated[StructuredDataset, kwtypes(a=int, b=str)]`."""
    return collections.OrderedDict(columns)


def is_dataframe_type(t: Any) -> bool:
    """Whether t is pandas.DataFrame, decided without importing pandas."""
    return getattr(t, "__name__", "") == "DataFrame" and getattr(t, "__module__", "").startswith(
        "pandas"
    )


class StructuredDataset:
    """A table: either a data frame in memory or a URI of stored data in some format."""

    def __init__(
        self, dataframe: Any = None, uri: str | None = None, file_format: str = PARQUET
    ) -> None:
        self.dataframe = dataframe
        self.uri = uri
        self.file_format = file_format
        self._columns: list[str] | None = None

    def open(self, dataframe_type: type) -> StructuredDataset:
        """Choose the in-memory type `all()` returns (only pandas.DataFrame so far)."""
        if not is_dataframe_type(dataframe_type):
            raise TypeTransformerFailedError(
                f"Cannot open a StructuredDataset as {dataframe_type}: "
                "only pandas.DataFrame is supported"
            )
        return self

    def all(self) -> Any:
        """The whole table as a pandas.DataFrame."""
        if self.dataframe is None:
            if self.uri is None:
                raise TypeTransformerFailedError(
                    "StructuredDataset has neither a dataframe nor a uri"
                )
            self.dataframe = read_parquet(self.uri, self._columns)
        return self.dataframe

    def __repr__(self) -> str:
        return f"StructuredDataset(uri={self.uri!r}, file_format={self.file_format!r})"


def columns_of(t: Any) -> collections.OrderedDict[str, Any] | None:
    for annotation in unwrap_annotated(t)[1]:
        if isinstance(annotation, collections.OrderedDict):
            return annotation
    return None


def write_parquet(dataframe: Any, columns: list[str] | None) -> str:
    if not hasattr(dataframe, "to_parquet"):
        raise TypeTransformerFailedError(
            f"Expected a pandas.DataFrame but got {dataframe!r} of type {type(dataframe)}"
        )
    if columns is not None:
        dataframe = dataframe[columns]
    folder = new_raw_output_path()
    os.makedirs(folder)
    require("pyarrow", "writing a DataFrame as parquet")
    dataframe.to_parquet(os.path.join(folder, _PARQUET_FILE))
    upload = uploader()
    if upload is None:
        return folder
    # Remote raw output: the local folder was only the way there.
    import shutil

    uri = upload(folder, True)
    shutil.rmtree(folder, ignore_errors=True)
    return uri


def read_parquet(uri: str, columns: list[str] | None) -> Any:
    pandas = require("pandas", "reading a StructuredDataset as a DataFrame")
    require("pyarrow", "reading parquet")

    local = fetch_local(uri)
    try:
        return pandas.read_parquet(local, columns=columns)
    finally:
        if local != uri.removeprefix("file://"):
            import shutil  # a download of a remote data set: the frame is what we keep

            if os.path.isdir(local):
                shutil.rmtree(local, ignore_errors=True)
            else:
                os.remove(local)


class StructuredDatasetTransformer(TypeTransformer[Any]):
    # Receives Annotated[...] itself, to read the kwtypes column declaration.
    reads_annotations = True

    plain_schema: ClassVar[Json] = {
        "type": "object",
        "title": "StructuredDataset",
        "properties": {
            "uri": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            "file_format": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": ""},
        },
        "additionalProperties": False,
    }

    def __init__(self) -> None:
        super().__init__("StructuredDataset Transformer", StructuredDataset)

    def _column_types(self, t: Any) -> list[Json]:
        from alula.types.engine import TypeEngine

        columns: dict[str, Any] = columns_of(t) or {}
        return [
            {"name": n, "literalType": TypeEngine.to_literal_type(ct)} for n, ct in columns.items()
        ]

    def get_literal_type(self, t: Any) -> Json:
        columns = self._column_types(t)
        return {"structuredDatasetType": {"columns": columns} if columns else {}}

    def _uri(self, value: Any, t: Any) -> tuple[str, str]:
        columns = columns_of(t)
        selected = list(columns) if columns else None
        if isinstance(value, StructuredDataset):
            if value.uri is not None and value.dataframe is None:
                return value.uri, value.file_format
            return write_parquet(value.dataframe, selected), PARQUET
        return write_parquet(value, selected), PARQUET

    def to_literal(self, value: Any, t: Any, expected: Json) -> Json:
        uri, file_format = self._uri(value, t)
        sd_type: Json = {}
        columns = self._column_types(t)
        if columns:
            sd_type["columns"] = columns
        sd_type["format"] = file_format
        return {
            "scalar": {
                "structuredDataset": {"uri": uri, "metadata": {"structuredDatasetType": sd_type}}
            }
        }

    def to_python_value(self, literal: Json, t: Any) -> Any:
        sd = scalar_of(literal, "structuredDataset", t)
        sd_type = sd.get("metadata", {}).get("structuredDatasetType", {})
        return self.from_plain({"uri": sd.get("uri"), "file_format": sd_type.get("format", "")}, t)

    def to_plain(self, value: Any, t: Any) -> Json:
        uri, file_format = self._uri(value, t)
        return {"uri": uri, "file_format": file_format}

    def from_plain(self, data: Json, t: Any) -> Any:
        columns = columns_of(t)
        selected = list(columns) if columns else None
        if is_dataframe_type(unwrap_annotated(t)[0]):
            return read_parquet(str(data["uri"]), selected)
        dataset = StructuredDataset(uri=data["uri"], file_format=data.get("file_format") or PARQUET)
        dataset._columns = selected
        return dataset

    def guess_python_type(self, literal_type: Json) -> Any:
        if "structuredDatasetType" in literal_type:
            return StructuredDataset
        return super().guess_python_type(literal_type)


STRUCTURED_DATASET = StructuredDatasetTransformer()
