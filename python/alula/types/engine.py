"""`TypeEngine`: picks the transformer of a Python type and converts values through it."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Annotated, Any

from alula.types.hash import find_hash_method
from alula.types.transformer import Json, TypeTransformer, TypeTransformerFailedError


def unwrap_annotated(t: Any) -> tuple[Any, tuple[Any, ...]]:
    """(T, metadata) for Annotated[T, *metadata]; (t, ()) otherwise."""
    if typing.get_origin(t) is Annotated:
        return t.__origin__, tuple(t.__metadata__)
    return t, ()


def is_union(t: Any) -> bool:
    return typing.get_origin(t) is typing.Union or isinstance(t, types.UnionType)


@dataclasses.dataclass(frozen=True)
class ShapeTransformers:
    """The transformers chosen by a type's shape rather than looked up by it, and the fallbacks.

    `alula.types.builtin` registers them (`TypeEngine.register_shapes`): the engine is the
    registry and imports no transformer, so the transformers can use the engine freely.
    """

    union: TypeTransformer[Any]
    list: TypeTransformer[Any]
    dict: TypeTransformer[Any]
    enum: TypeTransformer[Any]
    dataclass: TypeTransformer[Any]
    pickle: TypeTransformer[Any]
    """For every type no other transformer takes."""
    lazily_supported: typing.Callable[[type], TypeTransformer[Any] | None]
    """Transformers of optional libraries' types, found without importing those libraries."""


class TypeEngine:
    """Converts between Python values and flyteidl literals, as proto3-JSON dicts."""

    _by_type: typing.ClassVar[dict[Any, TypeTransformer[Any]]] = {}
    # Every transformer, most recently registered first: the order guess_python_type asks in.
    _all: typing.ClassVar[list[TypeTransformer[Any]]] = []
    _shapes: typing.ClassVar[ShapeTransformers | None] = None

    @classmethod
    def register_shapes(cls, shapes: ShapeTransformers) -> None:
        """Use these for unions, lists, dicts, enums, dataclasses and everything else."""
        cls._shapes = shapes
        for structural in (shapes.union, shapes.list, shapes.dict, shapes.enum, shapes.dataclass):
            cls.register_by_shape(structural)

    @classmethod
    def register(
        cls, transformer: TypeTransformer[Any], additional_types: typing.Iterable[Any] = ()
    ) -> None:
        """Use transformer for its python_type (and additional_types), replacing any before."""
        for t in (transformer.python_type, *additional_types):
            cls._by_type[t] = transformer
        cls._all.insert(0, transformer)

    @classmethod
    def register_by_shape(cls, transformer: TypeTransformer[Any]) -> None:
        """Make a transformer chosen by a type's shape (list, union, ...) known to guessing."""
        cls._all.append(transformer)

    @classmethod
    def get_transformer(cls, t: Any) -> TypeTransformer[Any]:
        builtin = cls._shapes
        if builtin is None:
            # Only when alula.types.engine is loaded on its own, outside the package whose
            # __init__ registers the built-in transformers.
            raise RuntimeError("the built-in transformers are not registered; import alula.types")
        t, _ = unwrap_annotated(t)
        if t is None:
            t = type(None)
        if is_union(t):
            return builtin.union
        if t in cls._by_type:
            return cls._by_type[t]
        origin = typing.get_origin(t)
        if origin is list or t is list:
            return builtin.list
        if origin is tuple or (isinstance(t, type) and issubclass(t, tuple)):
            # Restricted as in flytekit: a tuple has no literal form, and pickling it silently
            # would hide the mistake of returning several outputs without a NamedTuple.
            raise TypeTransformerFailedError(
                f"{t} is not supported as a task input or output type; "
                "use a dataclass or a list instead"
            )
        if origin is dict or t is dict:
            return builtin.dict
        if origin in cls._by_type:
            return cls._by_type[origin]
        if isinstance(t, type):
            if issubclass(t, enum.Enum):
                return builtin.enum
            if dataclasses.is_dataclass(t):
                return builtin.dataclass
            for base in t.__mro__[1:]:
                if base in cls._by_type and base is not object:
                    return cls._by_type[base]
            special = builtin.lazily_supported(t)
            if special is not None:
                return special
        return builtin.pickle

    @classmethod
    def to_literal_type(cls, t: Any) -> Json:
        """The flyteidl.core.LiteralType of Python type t."""
        transformer = cls.get_transformer(t)
        return transformer.get_literal_type(cls._argument(transformer, t))

    @classmethod
    def to_literal(cls, value: Any, t: Any, expected: Json | None = None) -> Json:
        """The flyteidl.core.Literal of value, declared as Python type t."""
        transformer = cls.get_transformer(t)
        argument = cls._argument(transformer, t)
        if expected is None:
            expected = transformer.get_literal_type(argument)
        if value is None and "unionType" not in expected and expected.get("simple") != "NONE":
            raise TypeTransformerFailedError(
                f"Python value cannot be None: expected {t} (use Optional[...] to allow None)"
            )
        literal = transformer.to_literal(value, argument, expected)
        hash_method = find_hash_method(unwrap_annotated(t)[1])
        if hash_method is not None:
            literal["hash"] = hash_method.calculate(value)
        return literal

    @classmethod
    def to_python_value(cls, literal: Json, t: Any) -> Any:
        """The Python value of a flyteidl.core.Literal, as type t."""
        transformer = cls.get_transformer(t)
        union = literal.get("scalar", {}).get("union")
        if union is not None and not is_union(unwrap_annotated(t)[0]):
            # A value produced for Optional[T] may be read by a consumer declaring plain T.
            literal = union.get("value", {})
        return transformer.to_python_value(literal, cls._argument(transformer, t))

    @classmethod
    def literal_map(cls, values: dict[str, Any], types: dict[str, Any]) -> Json:
        """A flyteidl.core.LiteralMap of the named values, each converted as its declared type."""
        unknown = sorted(set(values) - set(types))
        if unknown:
            raise TypeTransformerFailedError(
                f"No declared type for {unknown}; declared: {sorted(types)}"
            )
        literals = {}
        for name, value in values.items():
            try:
                literals[name] = cls.to_literal(value, types[name])
            except TypeTransformerFailedError as error:
                raise TypeTransformerFailedError(f"{name!r}: {error}") from None
        return {"literals": literals}

    @classmethod
    def literal_map_to_python(cls, literal_map: Json, types: dict[str, Any]) -> dict[str, Any]:
        """The Python values of a flyteidl.core.LiteralMap, each read as its declared type."""
        literals = literal_map.get("literals", {})
        values = {}
        for name, literal in literals.items():
            if name not in types:
                raise TypeTransformerFailedError(
                    f"No declared type for {name!r}; declared: {sorted(types)}"
                )
            try:
                values[name] = cls.to_python_value(literal, types[name])
            except TypeTransformerFailedError as error:
                raise TypeTransformerFailedError(f"{name!r}: {error}") from None
        return values

    @classmethod
    def guess_python_type(cls, literal_type: Json) -> Any:
        """A Python type for a literal type (used for entities fetched from a server)."""
        for transformer in cls._all:
            try:
                return transformer.guess_python_type(literal_type)
            except ValueError:
                continue
        raise ValueError(f"No Python type is known for literal type {literal_type}")

    @staticmethod
    def _argument(transformer: TypeTransformer[Any], t: Any) -> Any:
        """The type a transformer is called with: Annotated is kept only for those that read it."""
        if getattr(transformer, "reads_annotations", False):
            return t
        return unwrap_annotated(t)[0]
