"""Enums whose values are strings: an `enumType` literal type, the value as a string literal."""

from __future__ import annotations

import enum
from typing import Any

from alula.types.transformer import (
    Json,
    TypeTransformer,
    TypeTransformerFailedError,
    primitive_literal,
    scalar_of,
    type_mismatch,
)


class EnumTransformer(TypeTransformer[enum.Enum]):
    def __init__(self) -> None:
        super().__init__("DefaultEnumTransformer", enum.Enum)

    @staticmethod
    def values(t: Any) -> list[str]:
        values = [member.value for member in t]
        for value in values:
            if not isinstance(value, str):
                raise TypeTransformerFailedError(
                    f"Enum {t.__name__} needs str values (Flyte enums are strings), "
                    f"got {value!r} of type {type(value)}"
                )
        return values

    def get_literal_type(self, t: Any) -> Json:
        return {"enumType": {"values": self.values(t)}}

    def to_literal(self, value: Any, t: Any, expected: Json) -> Json:
        allowed = self.values(t)
        if isinstance(value, t):
            return primitive_literal("stringValue", value.value)
        # A plain string naming one of the values is accepted, as flytekit accepts it.
        if type(value) is str and value in allowed:
            return primitive_literal("stringValue", value)
        if type(value) is str:
            raise TypeTransformerFailedError(
                f"{value!r} is not a value of enum {t.__name__}; expected one of {allowed}"
            )
        raise type_mismatch(t, value)

    def to_python_value(self, literal: Json, t: Any) -> Any:
        value = scalar_of(literal, "primitive", t).get("stringValue")
        try:
            return t(value)
        except ValueError:
            raise TypeTransformerFailedError(
                f"{value!r} is not a value of enum {t.__name__}; expected one of {self.values(t)}"
            ) from None

    def guess_python_type(self, literal_type: Json) -> Any:
        if "enumType" in literal_type:
            values = literal_type["enumType"].get("values", [])
            return enum.Enum("DynamicEnum", {v: v for v in values})
        return super().guess_python_type(literal_type)
