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
    t, _ = unwrap_annotated(t)
    if is_union(t):
        return _union_to_plain(value, t)
    if t is _NONE or t is None:
        if value is not None:
            raise type_mismatch(_NONE, value)
        return None
    if t is typing.Any:
        return value
    origin = typing.get_origin(t) or t
    if origin in _ATOMS:
        # An int is a valid float (mashumaro keeps it as it is); a bool is no int.
        fits = isinstance(value, origin) or (origin is float and type(value) is int)
        if not fits or (type(value) is bool and origin is not bool):
            raise type_mismatch(t, value)
        return value
    if origin is datetime.datetime or origin is datetime.date:
        if not isinstance(value, origin):
            raise type_mismatch(t, value)
        return value.isoformat()
    if origin is datetime.timedelta:
        if not isinstance(value, datetime.timedelta):
            raise type_mismatch(t, value)
        return value.total_seconds()
    if origin is list:
        if not isinstance(value, list):
            raise type_mismatch(t, value)
        (item,) = typing.get_args(t) or (typing.Any,)
        return [to_plain(v, item) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise type_mismatch(t, value)
        _, item = typing.get_args(t) or (typing.Any, typing.Any)
        return {k: to_plain(v, item) for k, v in value.items()}
    if isinstance(origin, type) and issubclass(origin, enum.Enum):
        if not isinstance(value, origin):
            raise type_mismatch(t, value)
        return value.value
    if isinstance(origin, type) and dataclasses.is_dataclass(origin):
        if not isinstance(value, origin):
            raise type_mismatch(t, value)
        return {f.name: to_plain(getattr(value, f.name), ft) for f, ft in field_types(origin)}
    transformer = TypeEngine.get_transformer(t)
    if hasattr(transformer, "to_plain"):
        return transformer.to_plain(value, t)
    raise TypeTransformerFailedError(f"{t} cannot be a dataclass field (no msgpack form is known)")


def from_plain(data: Any, t: Any) -> Any:
    t, _ = unwrap_annotated(t)
    if is_union(t):
        return _union_from_plain(data, t)
    if t is _NONE or t is None:
        if data is not None:
            raise type_mismatch(_NONE, data)
        return None
    if t is typing.Any:
        return data
    origin = typing.get_origin(t) or t
    try:
        return _from_plain(data, t, origin)
    except (TypeError, ValueError, KeyError) as error:
        if isinstance(error, TypeTransformerFailedError):
            raise
        raise TypeTransformerFailedError(f"Cannot read {data!r} as {t}: {error}") from None


def _from_plain(data: Any, t: Any, origin: Any) -> Any:
    if origin in _ATOMS:
        if origin is float and type(data) is int:
            return float(data)
        if not isinstance(data, origin) or (type(data) is bool and origin is not bool):
            raise type_mismatch(t, data)
        return data
    if origin is datetime.datetime:
        return datetime.datetime.fromisoformat(data)
    if origin is datetime.date:
        return datetime.date.fromisoformat(data)
    if origin is datetime.timedelta:
        return datetime.timedelta(seconds=data)
    if origin is list:
        (item,) = typing.get_args(t) or (typing.Any,)
        return [from_plain(v, item) for v in data]
    if origin is dict:
        _, item = typing.get_args(t) or (typing.Any, typing.Any)
        return {k: from_plain(v, item) for k, v in data.items()}
    if isinstance(origin, type) and issubclass(origin, enum.Enum):
        return origin(data)
    if isinstance(origin, type) and dataclasses.is_dataclass(origin):
        if not isinstance(data, dict):
            raise type_mismatch(dict, data)
        kwargs = {
            f.name: from_plain(data[f.name], ft) for f, ft in field_types(origin) if f.name in data
        }
        return origin(**kwargs)
    transformer = TypeEngine.get_transformer(t)
    if hasattr(transformer, "from_plain"):
        return transformer.from_plain(data, t)
    raise TypeTransformerFailedError(f"{t} cannot be a dataclass field (no msgpack form is known)")


def _union_to_plain(value: Any, t: Any) -> Any:
    for variant in typing.get_args(t):
        try:
            return to_plain(value, variant)
        except (TypeError, ValueError):
            continue
    raise TypeTransformerFailedError(
        f"Value {value!r} of type {type(value)} fits no variant of {t}"
    )


def _union_from_plain(data: Any, t: Any) -> Any:
    for variant in typing.get_args(t):
        try:
            return from_plain(data, variant)
        except (TypeError, ValueError):
            continue
    raise TypeTransformerFailedError(f"Cannot read {data!r} as any variant of {t}")
