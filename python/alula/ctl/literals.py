"""Inputs typed on the command line (`--input k=v`) or in an exec file, as the Flyte literals a
launch plan's interface asks for (its `LiteralType`s, as proto3 JSON)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from alula.core.protojson import Json
from alula.errors import AlulaError


class InputError(AlulaError, ValueError):
    """A value that is not of its input's type."""


def _primitive(kind: str, value: Any, raw: bool) -> Json:
    if kind == "INTEGER":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise InputError(f"expected an integer, got {value!r}")
        try:
            return {"integer": str(int(value))}
        except ValueError:
            raise InputError(f"expected an integer, got {value!r}") from None
    if kind == "FLOAT":
        try:
            return {"floatValue": float(value)}
        except (TypeError, ValueError):
            raise InputError(f"expected a number, got {value!r}") from None
    if kind == "STRING":
        return {"stringValue": str(value)}
    if kind == "BOOLEAN":
        if isinstance(value, bool):
            return {"boolean": value}
        if str(value).lower() in ("true", "1", "yes"):
            return {"boolean": True}
        if str(value).lower() in ("false", "0", "no"):
            return {"boolean": False}
        raise InputError(f"expected true or false, got {value!r}")
    if kind == "DATETIME":
        when = value if isinstance(value, datetime) else None
        if when is None:
            try:
                when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                raise InputError(f"expected an ISO 8601 time, got {value!r}") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        stamp = when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        return {"datetime": stamp}
    if kind == "DURATION":
        seconds = value.total_seconds() if isinstance(value, timedelta) else None
        if seconds is None:
            try:
                seconds = float(str(value).removesuffix("s"))
            except ValueError:
                raise InputError(f"expected seconds (e.g. 90 or 1.5s), got {value!r}") from None
        return {"duration": f"{seconds}s"}
    raise InputError(f"cannot read a {kind} from the command line")


def _parsed(value: Any, raw: bool) -> Any:
    """A command-line string holding a container is JSON (`[1,2]`, `{"a":1}`)."""
    if raw and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise InputError(f"expected JSON, got {value!r}") from None
    return value


def literal(literal_type: Json, value: Any, raw: bool = False) -> Json:
    """The literal of `value` for `literal_type`; `raw`: `value` is a command-line string."""
    if "simple" in literal_type:
        kind = literal_type["simple"]
        if kind == "NONE":
            return {"scalar": {"noneType": {}}}
        if kind == "STRUCT":
            return {"scalar": {"generic": _parsed(value, raw)}}
        return {"scalar": {"primitive": _primitive(kind, value, raw)}}
    if "collectionType" in literal_type:
        items = _parsed(value, raw)
        if not isinstance(items, list):
            raise InputError(f"expected a list, got {value!r}")
        inner = literal_type["collectionType"]
        return {"collection": {"literals": [literal(inner, v) for v in items]}}
    if "mapValueType" in literal_type:
        pairs = _parsed(value, raw)
        if not isinstance(pairs, dict):
            raise InputError(f"expected a mapping, got {value!r}")
        inner = literal_type["mapValueType"]
        return {"map": {"literals": {str(k): literal(inner, v) for k, v in pairs.items()}}}
    if "enumType" in literal_type:
        allowed = literal_type["enumType"].get("values", [])
        if str(value) not in allowed:
            raise InputError(f"expected one of {allowed}, got {value!r}")
        return {"scalar": {"primitive": {"stringValue": str(value)}}}
    if "unionType" in literal_type:
        failures = []
        for variant in literal_type["unionType"].get("variants", []):
            if variant.get("simple") == "NONE" and value not in (None, "", "null", "None"):
                continue
            try:
                inner = literal(variant, value, raw)
            except InputError as e:
                failures.append(str(e))
                continue
            return {"scalar": {"union": {"value": inner, "type": variant}}}
        raise InputError(f"{value!r} fits no type of the union ({'; '.join(failures)})")
    if "blob" in literal_type:
        return {"scalar": {"blob": {"metadata": {"type": literal_type["blob"]}, "uri": str(value)}}}
    if "structuredDatasetType" in literal_type:
        sd_type = literal_type["structuredDatasetType"]
        return {
            "scalar": {
                "structuredDataset": {
                    "uri": str(value),
                    "metadata": {"structuredDatasetType": sd_type},
                }
            }
        }
    raise InputError(f"inputs of type {json.dumps(literal_type)} cannot be given here")


def inputs_literals(
    parameters: Json, given: dict[str, Any], typed: dict[str, str], what: str
) -> Json:
    """A LiteralMap of `given` (values of a file) and `typed` (command-line strings, which win)
    for a launch plan's parameters; an input left out keeps the plan's default (the server
    fills it), a required one missing is an error."""
    params = parameters.get("parameters", {})
    unknown = sorted((set(given) | set(typed)) - set(params))
    if unknown:
        raise InputError(f"{what} has no input(s) {unknown}; its inputs: {sorted(params)}")
    literals: dict[str, Json] = {}
    for values, raw in ((given, False), (typed, True)):
        for name, value in values.items():
            var_type = params[name].get("var", {}).get("type", {})
            try:
                literals[name] = literal(var_type, value, raw)
            except InputError as e:
                raise InputError(f"input {name}: {e}") from None
    missing = [
        n
        for n, p in params.items()
        if n not in literals and p.get("required") and "default" not in p
    ]
    if missing:
        raise InputError(f"{what} needs input(s) {sorted(missing)}: --input NAME=VALUE")
    return {"literals": literals}


def show(lit: Json) -> str:
    """A literal in a line ("5", "'hello'", "[1, 2]")."""
    scalar = lit.get("scalar", {})
    if "primitive" in scalar:
        return json.dumps(next(iter(scalar["primitive"].values()), None))
    if "union" in scalar:
        return show(scalar["union"].get("value", {}))
    if "noneType" in scalar:
        return "None"
    if "blob" in scalar:
        return str(scalar["blob"].get("uri", ""))
    if "collection" in lit:
        return "[" + ", ".join(show(x) for x in lit["collection"].get("literals", [])) + "]"
    if "map" in lit:
        items = lit["map"].get("literals", {}).items()
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in items) + "}"
    return json.dumps(lit)
