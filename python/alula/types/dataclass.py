"""Dataclasses: a STRUCT literal type with their JSON schema, values as msgpack bytes."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from alula.types.plain import field_types, from_plain, to_plain
from alula.types.schema import dataclass_schema
from alula.types.transformer import (
    MSGPACK_ANNOTATION,
    MSGPACK_TAG,
    Json,
    TypeTransformer,
    TypeTransformerFailedError,
    binary_literal,
    binary_value,
    msgpack,
    type_mismatch,
)


class DataclassTransformer(TypeTransformer[Any]):
    def __init__(self) -> None:
        super().__init__("Object-Dataclass-Transformer", object)

    def get_literal_type(self, t: Any) -> Json:
        from alula.types.engine import TypeEngine

        # The per-field literal types let the compiler check `dc.field` promises downstream.
        fields = {f.name: TypeEngine.to_literal_type(ft) for f, ft in field_types(t)}
        return {
            "simple": "STRUCT",
            "metadata": dataclass_schema(t),
            "annotation": MSGPACK_ANNOTATION,
            "structure": {"dataclassType": fields},
        }

    def to_literal(self, value: Any, t: Any, expected: Json) -> Json:
        if not isinstance(value, t):
            raise type_mismatch(t, value)
        packed = msgpack().packb(to_plain(value, t), use_bin_type=True)
        return binary_literal(packed, MSGPACK_TAG)

    def to_python_value(self, literal: Json, t: Any) -> Any:
        scalar = literal.get("scalar", {})
        if "generic" in scalar:  # the pre-msgpack form: the dataclass as a JSON Struct
            return from_plain(json.loads(json.dumps(scalar["generic"])), t)
        if scalar.get("binary", {}).get("tag", MSGPACK_TAG) != MSGPACK_TAG:
            raise TypeTransformerFailedError(
                f"Cannot read {t.__name__} from binary tagged {scalar['binary'].get('tag')!r}: "
                f"expected {MSGPACK_TAG!r}"
            )
        data = msgpack().unpackb(binary_value(literal, t), raw=False, strict_map_key=False)
        return from_plain(data, t)

    def guess_python_type(self, literal_type: Json) -> Any:
        fields = literal_type.get("structure", {}).get("dataclassType")
        if literal_type.get("simple") != "STRUCT" or fields is None:
            return super().guess_python_type(literal_type)
        from alula.types.engine import TypeEngine

        title = literal_type.get("metadata", {}).get("title", "DynamicDataclass")
        return dataclasses.make_dataclass(
            title, [(name, TypeEngine.guess_python_type(lt)) for name, lt in fields.items()]
        )
