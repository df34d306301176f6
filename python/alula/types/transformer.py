"""The transformer contract: how one family of Python types maps to flyteidl literals.

Literals and literal types are proto3-JSON dicts (camelCase keys, as protobuf's
`json_format.MessageToDict` renders them); `alula._bridge.message_from_json` turns them into
wire bytes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

from alula.errors import AlulaError

T = TypeVar("T")

Json = dict[str, Any]

# Added to the literal type of every msgpack-encoded STRUCT so that cache keys change if the
# serialization format ever does (flytekit's marker, matched for cache-key compatibility).
MSGPACK_ANNOTATION: Json = {
    "annotations": {"cache-key-metadata": {"serialization-format": "msgpack"}}
}
MSGPACK_TAG = "msgpack"


class TypeTransformerFailedError(AlulaError, TypeError, ValueError):
    """A value or literal does not fit the Python type it was converted with.

    Both a TypeError and a ValueError, so callers catching either (as flytekit users do) see it.
    """


class TypeTransformer(ABC, Generic[T]):
    """Converts values of one Python type (or family of types) to and from literals."""

    def __init__(self, name: str, python_type: type[T] | Any) -> None:
        self._name = name
        self._python_type = python_type

    @property
    def name(self) -> str:
        """Also the `structure.tag` of union variants this transformer handles."""
        return self._name

    @property
    def python_type(self) -> Any:
        return self._python_type

    @abstractmethod
    def get_literal_type(self, t: Any) -> Json:
        """The flyteidl.core.LiteralType of t."""

    @abstractmethod
    def to_literal(self, value: T, t: Any, expected: Json) -> Json:
        """The flyteidl.core.Literal of value, declared as t with literal type expected."""

    @abstractmethod
    def to_python_value(self, literal: Json, t: Any) -> T:
        """The Python value of literal, as type t."""

    def guess_python_type(self, literal_type: Json) -> Any:
        """The Python type for literal_type, when this transformer recognises it."""
        raise ValueError(f"transformer {self.name!r} cannot guess a Python type for {literal_type}")

    def assert_type(self, t: Any, value: Any) -> None:
        """Reject a value that is not a t, naming both (called before to_literal)."""
        if not isinstance(value, t):
            raise type_mismatch(t, value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.python_type!r})"


def type_mismatch(expected: Any, value: Any) -> TypeTransformerFailedError:
    return TypeTransformerFailedError(
        f"Expected value of type {expected} but got {value!r} of type {type(value)}"
    )


def scalar_of(literal: Json, kind: str, t: Any) -> Any:
    """literal["scalar"][kind], or an error naming what was found instead."""
    scalar = literal.get("scalar")
    if not isinstance(scalar, dict) or kind not in scalar:
        raise TypeTransformerFailedError(
            f"Cannot read literal {literal} as {t}: expected a scalar {kind}"
        )
    return scalar[kind]


def primitive_literal(kind: str, value: Any) -> Json:
    return {"scalar": {"primitive": {kind: value}}}


def msgpack() -> Any:
    """The msgpack module, imported on first use so that importing the SDK stays fast."""
    import msgpack as module  # type: ignore[import-untyped]

    return module


def binary_literal(value: bytes, tag: str) -> Json:
    import base64

    return {"scalar": {"binary": {"value": base64.b64encode(value).decode(), "tag": tag}}}


def binary_value(literal: Json, t: Any) -> bytes:
    import base64

    binary = scalar_of(literal, "binary", t)
    return base64.b64decode(binary.get("value", ""))
