"""Dataclass fields to and from msgpack-able "plain" values, the way flytekit's mashumaro does.

The encoded bytes must equal flytekit's so that cache keys and stored outputs agree: fields in
declaration order, enums as their values, datetimes and dates as ISO text, timedeltas as float
seconds, files and directories as {"path": uri}, data sets as {"uri", "file_format"}.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import typing
from typing import Any

from alula.types.engine import TypeEngine, is_union, unwrap_annotated
from alula.types.transformer import TypeTransformerFailedError, type_mismatch

_NONE = type(None)
_ATOMS = (bool, int, float, str, bytes)


@functools.lru_cache(maxsize=512)
@functools.cache
def field_types(t: type) -> tuple[tuple[dataclasses.Field[Any], Any], ...]:
    """A dataclass's fields with their resolved types (postponed annotations included).

    Cached: resolving type hints costs more than converting a small dataclass.
    """
    hints = typing.get_type_hints(t, include_extras=True)
    return tuple((f, hints[f.name]) for f in dataclasses.fields(t) if f.init)


def to_plain(value: Any, t: Any) -> Any:
    return _compiled(_to_plain_of, t)(value)


def from_plain(data: Any, t: Any) -> Any:
    return _compiled(_from_plain_of, t)(data)


Converter = typing.Callable[[Any], Any]


def _compiled(build: typing.Callable[[Any], Converter], t: Any) -> Converter:
    """The converter of `t`, built once per type: a dataclass task converts the same types on
    every call, and deciding what a type is costs more than converting a small value."""
    try:
        return _cached(build, t)
    except TypeError:  # an unhashable annotation: build it afresh
        return build(t)


@functools.lru_cache(maxsize=2048)
def _cached(build: typing.Callable[[Any], Converter], t: Any) -> Converter:
    return build(t)


def _to_plain_of(t: Any) -> Converter:
    t, _ = unwrap_annotated(t)
    if is_union(t):
        variants = [_compiled(_to_plain_of, v) for v in typing.get_args(t)]
        return lambda value: _first_variant(
            variants, value, lambda: f"Value {value!r} of type {type(value)} fits no variant of {t}"
        )
    if t is _NONE or t is None:

        def none(value: Any) -> Any:
            if value is not None:
                raise type_mismatch(_NONE, value)
            return None

        return none
    if t is typing.Any:
        return lambda value: value
    origin = typing.get_origin(t) or t
    if origin in _ATOMS:

        def atom(value: Any) -> Any:
            # An int is a valid float (mashumaro keeps it as it is); a bool is no int.
            fits = isinstance(value, origin) or (origin is float and type(value) is int)
            if not fits or (type(value) is bool and origin is not bool):
                raise type_mismatch(t, value)
            return value

        return atom
    if origin in (datetime.datetime, datetime.date, datetime.timedelta):

        def moment(value: Any) -> Any:
            if not isinstance(value, origin):
                raise type_mismatch(t, value)
            return value.total_seconds() if origin is datetime.timedelta else value.isoformat()

        return moment
    if origin is list:
        (item,) = typing.get_args(t) or (typing.Any,)
        each = _compiled(_to_plain_of, item)

        def items(value: Any) -> Any:
            if not isinstance(value, list):
                raise type_mismatch(t, value)
            return [each(v) for v in value]

        return items
    if origin is dict:
        _, item = typing.get_args(t) or (typing.Any, typing.Any)
        each = _compiled(_to_plain_of, item)

        def entries(value: Any) -> Any:
            if not isinstance(value, dict):
                raise type_mismatch(t, value)
            return {k: each(v) for k, v in value.items()}

        return entries
    if isinstance(origin, type) and issubclass(origin, enum.Enum):

        def member(value: Any) -> Any:
            if not isinstance(value, origin):
                raise type_mismatch(t, value)
            return value.value

        return member
    if isinstance(origin, type) and dataclasses.is_dataclass(origin):
        fields = [(f.name, _compiled(_to_plain_of, ft)) for f, ft in field_types(origin)]

        def record(value: Any) -> Any:
            if not isinstance(value, origin):
                raise type_mismatch(t, value)
            return {name: conv(getattr(value, name)) for name, conv in fields}

        return record
    transformer = TypeEngine.get_transformer(t)
    if hasattr(transformer, "to_plain"):
        return lambda value: transformer.to_plain(value, t)
    raise TypeTransformerFailedError(f"{t} cannot be a dataclass field (no msgpack form is known)")


def _from_plain_of(t: Any) -> Converter:
    t, _ = unwrap_annotated(t)
    if is_union(t):
        variants = [_compiled(_from_plain_of, v) for v in typing.get_args(t)]
        return lambda data: _first_variant(
            variants, data, lambda: f"Cannot read {data!r} as any variant of {t}"
        )
    if t is _NONE or t is None:

        def none(data: Any) -> Any:
            if data is not None:
                raise type_mismatch(_NONE, data)
            return None

        return none
    if t is typing.Any:
        return lambda data: data
    raw = _raw_from_plain_of(t, typing.get_origin(t) or t)

    def checked(data: Any) -> Any:
        try:
            return raw(data)
        except (TypeError, ValueError, KeyError) as error:
            if isinstance(error, TypeTransformerFailedError):
                raise
            raise TypeTransformerFailedError(f"Cannot read {data!r} as {t}: {error}") from None

    return checked


def _raw_from_plain_of(t: Any, origin: Any) -> Converter:
    if origin in _ATOMS:

        def atom(data: Any) -> Any:
            if origin is float and type(data) is int:
                return float(data)
            if not isinstance(data, origin) or (type(data) is bool and origin is not bool):
                raise type_mismatch(t, data)
            return data

        return atom
    if origin is datetime.datetime:
        return datetime.datetime.fromisoformat
    if origin is datetime.date:
        return datetime.date.fromisoformat
    if origin is datetime.timedelta:
        return lambda data: datetime.timedelta(seconds=data)
    if origin is list:
        (item,) = typing.get_args(t) or (typing.Any,)
        each = _compiled(_from_plain_of, item)
        return lambda data: [each(v) for v in data]
    if origin is dict:
        _, item = typing.get_args(t) or (typing.Any, typing.Any)
        each = _compiled(_from_plain_of, item)
        return lambda data: {k: each(v) for k, v in data.items()}
    if isinstance(origin, type) and issubclass(origin, enum.Enum):
        return origin
    if isinstance(origin, type) and dataclasses.is_dataclass(origin):
        fields = [(f.name, _compiled(_from_plain_of, ft)) for f, ft in field_types(origin)]

        def record(data: Any) -> Any:
            if not isinstance(data, dict):
                raise type_mismatch(dict, data)
            return origin(**{name: conv(data[name]) for name, conv in fields if name in data})

        return record
    transformer = TypeEngine.get_transformer(t)
    if hasattr(transformer, "from_plain"):
        return lambda data: transformer.from_plain(data, t)
    raise TypeTransformerFailedError(f"{t} cannot be a dataclass field (no msgpack form is known)")


def _first_variant(variants: list[Converter], value: Any, failure: typing.Callable[[], str]) -> Any:
    for convert in variants:
        try:
            return convert(value)
        except (TypeError, ValueError):
            continue
    raise TypeTransformerFailedError(failure())
