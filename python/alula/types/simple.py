"""Transformers of the primitive types: int, float, str, bool, None, datetime, date, timedelta."""

from __future__ import annotations

import datetime
import math
from typing import Any

from alula.types.transformer import (
    Json,
    TypeTransformer,
    TypeTransformerFailedError,
    primitive_literal,
    scalar_of,
    type_mismatch,
)

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class _Primitive(TypeTransformer[Any]):
    """A primitive with one simple literal type and one `Primitive` field."""

    def __init__(self, name: str, python_type: type, simple: str, field: str) -> None:
        super().__init__(name, python_type)
        self._simple = simple
        self._field = field

    def get_literal_type(self, t: Any) -> Json:
        return {"simple": self._simple}

    def guess_python_type(self, literal_type: Json) -> Any:
        if literal_type.get("simple") == self._simple:
            return self.python_type
        return super().guess_python_type(literal_type)

    def assert_type(self, t: Any, value: Any) -> None:
        # bool is an int subclass, but True is not an acceptable int (flytekit rejects it too).
        if type(value) is bool and t is not bool:
            raise type_mismatch(t, value)
        super().assert_type(t, value)

    def to_literal(self, value: Any, t: Any, expected: Json) -> Json:
        self.assert_type(t, value)
        return primitive_literal(self._field, self.encode(value))

    def to_python_value(self, literal: Json, t: Any) -> Any:
        primitive = scalar_of(literal, "primitive", t)
        if self._field not in primitive:
            raise TypeTransformerFailedError(
                f"Cannot read {literal} as {t}: expected primitive {self._field!r}"
            )
        return self.decode(primitive[self._field])

    def encode(self, value: Any) -> Any:
        return value

    def decode(self, value: Any) -> Any:
        return value


class _Int(_Primitive):
    def encode(self, value: Any) -> Any:
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise TypeTransformerFailedError(f"Value out of range for a 64-bit integer: {value}")
        # proto3 JSON writes int64 as a string (JavaScript numbers lose precision above 2**53).
        return str(value)

    def decode(self, value: Any) -> Any:
        return int(value)


class _Float(_Primitive):
    def encode(self, value: Any) -> Any:
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value

    def decode(self, value: Any) -> Any:
        return float(value)


class _DateTime(_Primitive):
    def encode(self, value: Any) -> Any:
        return format_timestamp(value)

    def decode(self, value: Any) -> Any:
        return parse_timestamp(value)


class _Date(_Primitive):
    """A date travels as the DATETIME of its midnight in UTC."""

    def encode(self, value: Any) -> Any:
        midnight = datetime.datetime(value.year, value.month, value.day)
        return format_timestamp(midnight)

    def decode(self, value: Any) -> Any:
        return parse_timestamp(value).date()


class _TimeDelta(_Primitive):
    def encode(self, value: Any) -> Any:
        return format_duration(value)

    def decode(self, value: Any) -> Any:
        return parse_duration(value)


class NoneTransformer(TypeTransformer[None]):
    def __init__(self) -> None:
        super().__init__("none", type(None))

    def get_literal_type(self, t: Any) -> Json:
        return {"simple": "NONE"}

    def to_literal(self, value: None, t: Any, expected: Json) -> Json:
        if value is not None:
            raise type_mismatch(type(None), value)
        return {"scalar": {"noneType": {}}}

    def to_python_value(self, literal: Json, t: Any) -> None:
        scalar_of(literal, "noneType", t)
        return None

    def guess_python_type(self, literal_type: Json) -> Any:
        if literal_type.get("simple") == "NONE":
            return type(None)
        return super().guess_python_type(literal_type)


def simple_transformers() -> list[TypeTransformer[Any]]:
    return [
        _Int("int", int, "INTEGER", "integer"),
        _Float("float", float, "FLOAT", "floatValue"),
        _Primitive("str", str, "STRING", "stringValue"),
        _Primitive("bool", bool, "BOOLEAN", "boolean"),
        _DateTime("datetime", datetime.datetime, "DATETIME", "datetime"),
        _Date("date", datetime.date, "DATETIME", "datetime"),
        _TimeDelta("timedelta", datetime.timedelta, "DURATION", "duration"),
        NoneTransformer(),
    ]


def format_timestamp(value: datetime.datetime) -> str:
    """RFC 3339 in UTC, as protobuf's JSON mapping writes a Timestamp.

    A naive datetime is taken to be UTC (protobuf's `Timestamp.FromDatetime` does the same).
    """
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    # isoformat pads the year to four digits (strftime's %Y does not on every libc).
    text = value.replace(microsecond=0).isoformat()
    return text + _fraction(value.microsecond) + "Z"


def parse_timestamp(text: str) -> datetime.datetime:
    """An aware UTC datetime from RFC 3339 text (nanoseconds are truncated to microseconds)."""
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    main, offset = text[:19], text[19:]
    fraction = ""
    if offset.startswith("."):
        digits = len(offset) - len(offset[1:].lstrip("0123456789"))
        fraction, offset = offset[1:digits], offset[digits:]
    micros = int((fraction + "000000")[:6]) if fraction else 0
    try:
        parsed = datetime.datetime.fromisoformat(main + offset).replace(microsecond=micros)
    except ValueError as error:
        raise TypeTransformerFailedError(f"Invalid timestamp {text!r}: {error}") from None
    return parsed.astimezone(datetime.timezone.utc)


def format_duration(value: datetime.timedelta) -> str:
    """Seconds with 0, 3, 6 or 9 fraction digits and an "s", as protobuf writes a Duration."""
    micros = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 1_000_000)
    return f"{sign}{seconds}{_fraction(fraction)}s"


def parse_duration(text: str) -> datetime.timedelta:
    if not text.endswith("s"):
        raise TypeTransformerFailedError(
            f"Invalid duration {text!r}: expected seconds ending in 's'"
        )
    negative = text.startswith("-")
    seconds, _, fraction = text[1 if negative else 0 : -1].partition(".")
    try:
        micros = int(seconds) * 1_000_000 + (int((fraction + "000000")[:6]) if fraction else 0)
    except ValueError:
        raise TypeTransformerFailedError(f"Invalid duration {text!r}") from None
    return datetime.timedelta(microseconds=-micros if negative else micros)


def _fraction(micros: int) -> str:
    if micros == 0:
        return ""
    if micros % 1000 == 0:
        return f".{micros // 1000:03d}"
    return f".{micros:06d}"
