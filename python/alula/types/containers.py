"""Transformers of the generic containers: list[T], dict[str, T], untyped dict, and unions."""

from __future__ import annotations

import typing
from typing import Any

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


def _engine() -> Any:
    # Containers convert their elements through the engine, which in turn registers them.
    from alula.types.engine import TypeEngine

    return TypeEngine


def element_type(t: Any) -> Any:
    args = typing.get_args(t)
    if len(args) != 1:
        raise TypeTransformerFailedError(f"{t} needs exactly one element type, as in list[int]")
    return args[0]


class ListTransformer(TypeTransformer[list[Any]]):
    def __init__(self) -> None:
        super().__init__("Typed List", list)

    def get_literal_type(self, t: Any) -> Json:
        return {"collectionType": _engine().to_literal_type(element_type(t))}

    def to_literal(self, value: list[Any], t: Any, expected: Json) -> Json:
        if not isinstance(value, list):
            raise type_mismatch(t, value)
        item_type = element_type(t)
        item_expected = expected.get("collectionType") or _engine().to_literal_type(item_type)
        engine = _engine()
        items = [engine.to_literal(item, item_type, item_expected) for item in value]
        # proto3 JSON leaves out empty repeated fields: an empty list is {"collection": {}}.
        return {"collection": {"literals": items} if items else {}}

    def to_python_value(self, literal: Json, t: Any) -> list[Any]:
        if "collection" not in literal:
            raise TypeTransformerFailedError(f"Cannot read {literal} as {t}: expected a collection")
        item_type = element_type(t)
        engine = _engine()
        items = literal["collection"].get("literals", [])
        return [engine.to_python_value(item, item_type) for item in items]

    def guess_python_type(self, literal_type: Json) -> Any:
        if "collectionType" in literal_type:
            return list[_engine().guess_python_type(literal_type["collectionType"])]  # type: ignore[misc]
        return super().guess_python_type(literal_type)


class DictTransformer(TypeTransformer[dict[Any, Any]]):
    """dict[str, T] is a LiteralMap; any other dict is msgpack bytes in a STRUCT."""

    def __init__(self) -> None:
        super().__init__("Typed Dict", dict)

    @staticmethod
    def value_type(t: Any) -> Any | None:
        """T for dict[str, T]; None for dicts sent untyped."""
        args = typing.get_args(t)
        if len(args) == 2 and args[0] is str:
            return args[1]
        return None

    def get_literal_type(self, t: Any) -> Json:
        value_type = self.value_type(t)
        if value_type is None:
            return {"simple": "STRUCT", "annotation": MSGPACK_ANNOTATION}
        return {"mapValueType": _engine().to_literal_type(value_type)}

    def to_literal(self, value: dict[Any, Any], t: Any, expected: Json) -> Json:
        if not isinstance(value, dict):
            raise type_mismatch(t, value)
        value_type = self.value_type(t)
        if value_type is None:
            return binary_literal(_pack_untyped(value), MSGPACK_TAG)
        for key in value:
            if not isinstance(key, str):
                raise TypeTransformerFailedError(
                    f"{t} needs str keys (a Flyte map is keyed by strings), "
                    f"got key {key!r} of type {type(key)}"
                )
        engine = _engine()
        item_expected = expected.get("mapValueType") or engine.to_literal_type(value_type)
        items = {k: engine.to_literal(v, value_type, item_expected) for k, v in value.items()}
        return {"map": {"literals": items} if items else {}}

    def to_python_value(self, literal: Json, t: Any) -> dict[Any, Any]:
        value_type = self.value_type(t)
        if value_type is None:
            scalar = literal.get("scalar", {})
            if "generic" in scalar:  # the pre-msgpack form: a google.protobuf.Struct
                return dict(scalar["generic"])
            return dict(msgpack().unpackb(binary_value(literal, t), strict_map_key=False))
        if "map" not in literal:
            raise TypeTransformerFailedError(f"Cannot read {literal} as {t}: expected a map")
        engine = _engine()
        items = literal["map"].get("literals", {})
        return {k: engine.to_python_value(v, value_type) for k, v in items.items()}

    def guess_python_type(self, literal_type: Json) -> Any:
        if "mapValueType" in literal_type:
            value_type = _engine().guess_python_type(literal_type["mapValueType"])
            return dict[str, value_type]  # type: ignore[valid-type]
        if literal_type.get("simple") == "STRUCT" and "metadata" not in literal_type:
            return dict
        return super().guess_python_type(literal_type)


def _pack_untyped(value: dict[Any, Any]) -> bytes:
    try:
        packed: bytes = msgpack().packb(value)
    except (TypeError, ValueError) as error:
        raise TypeTransformerFailedError(
            f"An untyped dict must hold only msgpack-able values (str, int, float, bool, None, "
            f"bytes, lists, dicts): {error}"
        ) from None
    return packed


def with_tag(literal_type: Json, tag: str) -> Json:
    """A union variant's type: the variant's literal type, its structure replaced by its tag."""
    return {**literal_type, "structure": {"tag": tag}}


class UnionTransformer(TypeTransformer[Any]):
    """Optional[T] and Union[...]: the literal carries which variant the value took."""

    def __init__(self) -> None:
        super().__init__("Typed Union", typing.Union)

    def get_literal_type(self, t: Any) -> Json:
        engine = _engine()
        variants = [
            with_tag(engine.to_literal_type(v), engine.get_transformer(v).name)
            for v in typing.get_args(t)
        ]
        return {"unionType": {"variants": variants}}

    def to_literal(self, value: Any, t: Any, expected: Json) -> Json:
        engine = _engine()
        matches: list[tuple[Any, Json, Json]] = []
        for variant in typing.get_args(t):
            try:
                literal = engine.to_literal(value, variant)
            except (TypeError, ValueError):
                continue
            variant_type = engine.to_literal_type(variant)
            matches.append(
                (variant, literal, with_tag(variant_type, engine.get_transformer(variant).name))
            )
        if not matches:
            raise TypeTransformerFailedError(
                f"Value {value!r} of type {type(value)} fits none of the variants of {t}"
            )
        if len(matches) > 1:
            # A bare str also fits an enum holding that value: the exact type, str, wins.
            exact = [m for m in matches if m[0] is str] if type(value) is str else []
            if len(exact) != 1:
                names = [m[0] for m in matches]
                raise TypeTransformerFailedError(
                    f"Ambiguous union {t}: value {value!r} fits several variants {names}"
                )
            matches = exact
        _, literal, stored_type = matches[0]
        return {"scalar": {"union": {"value": literal, "type": stored_type}}}

    def to_python_value(self, literal: Json, t: Any) -> Any:
        engine = _engine()
        union = literal.get("scalar", {}).get("union")
        candidates = list(typing.get_args(t))
        if union is not None:
            stored = union.get("type", {})
            tag = stored.get("structure", {}).get("tag")
            literal = union.get("value", {})
            if tag is not None:
                tagged = [v for v in candidates if engine.get_transformer(v).name == tag]
                exact = [v for v in tagged if _same_shape(engine.to_literal_type(v), stored)]
                candidates = exact or tagged
        found: list[Any] = []
        for variant in candidates:
            try:
                found.append(engine.to_python_value(literal, variant))
            except (TypeError, ValueError, KeyError):
                continue
        if len(found) == 1:
            return found[0]
        if not found:
            raise TypeTransformerFailedError(f"Cannot read {literal} as any variant of {t}")
        raise TypeTransformerFailedError(
            f"Ambiguous union {t}: {literal} reads as several variants"
        )

    def guess_python_type(self, literal_type: Json) -> Any:
        if "unionType" in literal_type:
            engine = _engine()
            variants = tuple(
                engine.guess_python_type(v) for v in literal_type["unionType"]["variants"]
            )
            return typing.Union[variants]  # noqa: UP007 (a runtime tuple of types)
        return super().guess_python_type(literal_type)


def _same_shape(declared: Json, stored: Json) -> bool:
    """Whether a variant's declared literal type is the stored one, ignoring tag and metadata."""
    return _shape(declared) == _shape(stored)


def _shape(literal_type: Json) -> Json:
    return {
        k: v for k, v in literal_type.items() if k not in ("structure", "metadata", "annotation")
    }
