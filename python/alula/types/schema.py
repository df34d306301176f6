"""JSON schemas of dataclasses, put in a STRUCT literal type's `metadata`.

Consoles and clients read the schema to build input forms; it follows the draft 2020-12 shape
that flytekit's mashumaro emits (inline nested objects, `anyOf` for unions, `title` and
`additionalProperties: false` on objects).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import typing
from typing import Any

from alula.types.engine import TypeEngine, is_union, unwrap_annotated
from alula.types.plain import field_types, to_plain
from alula.types.transformer import Json

_SIMPLE: dict[Any, Json] = {
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
    bytes: {"type": "string", "format": "base64"},
    type(None): {"type": "null"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
    datetime.timedelta: {"type": "number", "format": "time-delta"},
}


def dataclass_schema(t: type) -> Json:
    properties: Json = {}
    required = []
    for field, field_type in field_types(t):
        schema = type_schema(field_type)
        if field.default is not dataclasses.MISSING:
            schema["default"] = _default(field.default, field_type)
        elif field.default_factory is dataclasses.MISSING:
            required.append(field.name)
        properties[field.name] = schema
    schema = {"type": "object", "title": t.__name__, "properties": properties}
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema


def type_schema(t: Any) -> Json:
    t, _ = unwrap_annotated(t)
    if t in _SIMPLE:
        return dict(_SIMPLE[t])
    if is_union(t):
        return {"anyOf": [type_schema(v) for v in typing.get_args(t)]}
    origin, args = typing.get_origin(t) or t, typing.get_args(t)
    if origin is list:
        return {"type": "array", "items": type_schema(args[0])} if args else {"type": "array"}
    if origin is dict:
        if not args:
            return {"type": "object"}
        return {
            "type": "object",
            "propertyNames": type_schema(args[0]),
            "additionalProperties": type_schema(args[1]),
        }
    if isinstance(origin, type) and issubclass(origin, enum.Enum):
        return {"enum": [member.value for member in origin]}
    if dataclasses.is_dataclass(origin) and isinstance(origin, type):
        return dataclass_schema(origin)
    schema = getattr(TypeEngine.get_transformer(t), "plain_schema", None)
    return dict(schema) if schema is not None else {}


def _default(value: Any, t: Any) -> Any:
    if isinstance(value, bytes):
        import base64

        return base64.encodebytes(value).decode()
    return to_plain(value, t)
