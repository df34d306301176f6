"""The fallback for types with no transformer: the value is pickled to a file (a PythonPickle blob).

cloudpickle is used when installed, so lambdas and locally defined classes survive; plain pickle
otherwise. Either way a pickle only loads under the same Python and library versions.
"""

from __future__ import annotations

import os
from typing import Any, Generic, TypeVar

from alula.types.context import fetch_local, new_raw_output_path, random_name, uploader
from alula.types.transformer import Json, TypeTransformer, TypeTransformerFailedError, scalar_of

T = TypeVar("T")

PICKLE_FORMAT = "PythonPickle"


class FlytePickle(Generic[T]):
    """Marks a type sent as a pickle; every type without a transformer is sent this way."""


def _pickler() -> Any:
    # Imported on first use: pickling is the rare fallback, not worth the SDK's import time.
    try:
        import cloudpickle  # type: ignore[import-untyped]
    except ImportError:
        import pickle

        return pickle
    return cloudpickle


class FlytePickleTransformer(TypeTransformer[Any]):
    def __init__(self) -> None:
        super().__init__("FlytePickle", FlytePickle)

    def get_literal_type(self, t: Any) -> Json:
        return {"blob": {"format": PICKLE_FORMAT}, "metadata": {"python_class_name": str(t)}}

    def to_literal(self, value: Any, t: Any, expected: Json) -> Json:
        import pickle

        path = new_raw_output_path(random_name())
        try:
            with open(path, "wb") as file:
                _pickler().dump(value, file)
        except (pickle.PicklingError, TypeError, AttributeError) as error:
            raise TypeTransformerFailedError(
                f"Cannot pickle {value!r} of type {type(value)} (declared {t}): {error}"
            ) from None
        uri = path
        upload = uploader()
        if upload is not None:
            # Remote raw output: the local file was only the way there.
            uri = upload(path, False)
            os.remove(path)
        return {"scalar": {"blob": {"metadata": {"type": {"format": PICKLE_FORMAT}}, "uri": uri}}}

    def to_python_value(self, literal: Json, t: Any) -> Any:
        blob = scalar_of(literal, "blob", t)
        blob_format = blob.get("metadata", {}).get("type", {}).get("format", "")
        if blob_format != PICKLE_FORMAT:
            raise TypeTransformerFailedError(
                f"Cannot read blob {blob.get('uri')!r} of format {blob_format!r} as {t}: "
                f"expected format {PICKLE_FORMAT!r}"
            )
        uri = str(blob["uri"])
        local = fetch_local(uri)
        try:
            with open(local, "rb") as file:
                return _pickler().load(file)
        finally:
            if local != uri.removeprefix("file://"):
                os.remove(local)  # a download of a remote pickle: the object is what we keep

    def guess_python_type(self, literal_type: Json) -> Any:
        if literal_type.get("blob", {}).get("format") == PICKLE_FORMAT:
            return FlytePickle
        return super().guess_python_type(literal_type)
