"""pydantic BaseModel: like a dataclass (STRUCT, JSON schema, msgpack), via the model's own JSON.

Only imported once pydantic is, by the engine's lazy lookup; the value goes through
`model_dump_json` so that pydantic's own serializers (enums, custom types) apply.
"""

from __future__ import annotations

import json
from typing import Any

import msgpack  # type: ignore[import-untyped]

from alula.types.transformer import (
    MSGPACK_ANNOTATION,
    MSGPACK_TAG,
    Json,
    TypeTransformer,
    TypeTransformerFailedError,
    binary_literal,
    binary_value,
    type_mismatch,
)


class BaseModelTransformer(TypeTransformer[Any]):
    def __init__(self) -> None:
        super().__init__("Pydantic Transformer", object)

    def get_literal_type(self, t: Any) -> Json:
        from alula.types.engine import TypeEngine

        fields = {}
        for name, info in t.model_fields.items():
            try:
                fields[name] = TypeEngine.to_literal_type(info.annotation)
            except (TypeError, ValueError):
                continue  # the schema in metadata still describes the field
        return {
            "simple": "STRUCT",
            "metadata": t.model_json_schema(),
            "annotation": MSGPACK_ANNOTATION,
            "structure": {"dataclassType": fields},
        }

    def to_literal(self, value: Any, t: Any, expected: Json) -> Json:
        if not isinstance(value, t):
            raise type_mismatch(t, value)
        plain = json.loads(value.model_dump_json())
        return binary_literal(msgpack.packb(plain), MSGPACK_TAG)

    def to_python_value(self, literal: Json, t: Any) -> Any:
        scalar = literal.get("scalar", {})
        if "generic" in scalar:  # the pre-msgpack form, as consoles still send it
            text = json.dumps(scalar["generic"])
        else:
            tag = scalar.get("binary", {}).get("tag")
            if tag != MSGPACK_TAG:
                raise TypeTransformerFailedError(
                    f"Cannot read {t.__name__} from binary tagged {tag!r}: expected {MSGPACK_TAG!r}"
                )
            data = msgpack.unpackb(binary_value(literal, t), strict_map_key=False)
            text = json.dumps(data)
        return t.model_validate_json(text, strict=False, context={"deserialize": True})


BASE_MODEL = BaseModelTransformer()
