"""Typed interfaces of tasks and workflows, read from a function's signature and type hints.

Outputs are named o0, o1, ... as flytekit names them, or after the fields of a NamedTuple
return type. Literal types come from `alula.types.TypeEngine` and are computed on first use so
that decorating a function stays cheap.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alula.core.errors import UnsupportedTypeError, WorkflowAuthoringError

Json = dict[str, Any]


def def_site(fn: Callable[..., Any]) -> str:
    code = fn.__code__
    return f"{code.co_filename}:{code.co_firstlineno}"


def type_name(t: Any) -> str:
    """How a Python type reads in error messages: `int`, `list[int]`, `int | None`."""
    if isinstance(t, type) and not typing.get_args(t):
        return t.__name__
    return repr(t).replace("typing.", "")


def is_named_tuple(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, tuple) and hasattr(t, "_fields")


@dataclass
class Interface:
    """Inputs (name -> Python type, in signature order), their defaults, and outputs."""

    owner: str
    site: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    defaults: dict[str, Any] = field(default_factory=dict)
    output_tuple: type | None = None
    _literal_types: dict[tuple[str, str], Json] = field(default_factory=dict, repr=False)

    def literal_type(self, side: str, name: str) -> Json:
        """The flyteidl LiteralType of an input (side "inputs") or output ("outputs")."""
        key = (side, name)
        if key not in self._literal_types:
            py_type = (self.inputs if side == "inputs" else self.outputs)[name]
            self._literal_types[key] = literal_type_of(py_type, self.owner, name, self.site)
        return self._literal_types[key]

    def required_inputs(self) -> list[str]:
        return [n for n in self.inputs if n not in self.defaults]

    def to_json(self) -> Json:
        def variables(side: str, names: dict[str, Any]) -> Json:
            vs = {n: {"type": self.literal_type(side, n), "description": n} for n in names}
            return {"variables": vs} if vs else {}

        return {
            "inputs": variables("inputs", self.inputs),
            "outputs": variables("outputs", self.outputs),
        }


def literal_type_of(py_type: Any, owner: str, var: str, site: str) -> Json:
    from alula.types import TypeEngine

    try:
        return TypeEngine.to_literal_type(py_type)
    except Exception as e:
        raise UnsupportedTypeError(
            f"{owner} (defined at {site}): '{var}' has type {type_name(py_type)}, which has "
            f"no Flyte type ({e})"
        ) from e


def output_names(returns: Any) -> tuple[dict[str, Any], type | None]:
    """Outputs named as flytekit names them, and the NamedTuple class when they have names."""
    if returns is None or returns is type(None):
        return {}, None
    if is_named_tuple(returns):
        hints = typing.get_type_hints(returns)
        return {f: hints[f] for f in returns._fields}, returns
    origin = typing.get_origin(returns)
    if origin is tuple:
        args = typing.get_args(returns)
        if args and args[-1] is not Ellipsis:
            return {f"o{i}": a for i, a in enumerate(args)}, None
    return {"o0": returns}, None


def from_function(fn: Callable[..., Any], owner: str) -> Interface:
    """The interface of `fn`; every parameter needs a type hint."""
    site = def_site(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as e:
        raise WorkflowAuthoringError(f"{owner} ({site}): cannot read type hints: {e}") from e
    code = fn.__code__
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    inputs: dict[str, Any] = {}
    for n in names:
        if n not in hints:
            raise WorkflowAuthoringError(
                f"{owner} ({site}): input '{n}' has no type hint; annotate it, e.g. `{n}: int`"
            )
        inputs[n] = hints[n]
    defaults: dict[str, Any] = dict(fn.__kwdefaults__ or {})
    positional_defaults = fn.__defaults__ or ()
    if positional_defaults:
        with_defaults = names[code.co_argcount - len(positional_defaults) : code.co_argcount]
        defaults.update(zip(with_defaults, positional_defaults, strict=True))
    for n, t in inputs.items():
        # As in flytekit, an optional input may be left out and is then None.
        if n not in defaults and type(None) in typing.get_args(t):
            defaults[n] = None
    outputs, output_tuple = output_names(hints.get("return"))
    return Interface(owner, site, inputs, outputs, defaults, output_tuple)


def castable(src: Json, dst: Json) -> bool:
    """Whether a value of LiteralType `src` may feed an input of LiteralType `dst`.

    A trace-time check for clear errors at the call site; the compiler does the full check.
    It compares the kind of type and recurses into containers and unions.
    """
    if src == dst:
        return True
    if "unionType" in dst:
        return any(castable(src, v) for v in dst["unionType"].get("variants", []))
    if "unionType" in src:
        return all(castable(v, dst) for v in src["unionType"].get("variants", []))
    if "collectionType" in src and "collectionType" in dst:
        return castable(src["collectionType"], dst["collectionType"])
    if "mapValueType" in src and "mapValueType" in dst:
        return castable(src["mapValueType"], dst["mapValueType"])
    if "simple" in src and "simple" in dst:
        # Dataclasses and untyped structs are both STRUCT; their schemas are the compiler's job.
        return bool(src["simple"] == dst["simple"])
    kinds = ("blob", "structuredDatasetType", "enumType", "schema")
    return any(k in src and k in dst for k in kinds)
