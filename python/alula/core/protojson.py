"""Small builders of flyteidl messages in their proto3 JSON form (camelCase keys)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

Json = dict[str, Any]


def duration_json(value: timedelta | float) -> str:
    """A google.protobuf.Duration as proto3 JSON: "90s", "0.500000s"."""
    td = value if isinstance(value, timedelta) else timedelta(seconds=value)
    seconds, micros = divmod(td // timedelta(microseconds=1), 1_000_000)
    return f"{seconds}s" if micros == 0 else f"{seconds}.{micros:06d}s"


def identifier_json(kind: str, project: str, domain: str, name: str, version: str) -> Json:
    """A core.Identifier; kind is "TASK", "WORKFLOW" or "LAUNCH_PLAN"."""
    return {
        "resourceType": kind,
        "project": project,
        "domain": domain,
        "name": name,
        "version": version,
    }


def literal_to_binding(literal: Json) -> Json:
    """The BindingData that carries a constant Literal (containers become binding containers)."""
    if "collection" in literal:
        items = literal["collection"].get("literals", [])
        return {"collection": {"bindings": [literal_to_binding(v) for v in items]}}
    if "map" in literal:
        items = literal["map"].get("literals", {})
        return {"map": {"bindings": {k: literal_to_binding(v) for k, v in items.items()}}}
    return {"scalar": literal["scalar"]}


def primitive_json(value: Any) -> Json | None:
    """The Primitive of a Python scalar, or None when the value is not one."""
    if isinstance(value, bool):
        return {"boolean": value}
    if isinstance(value, int):
        return {"integer": str(value)}
    if isinstance(value, float):
        return {"floatValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    return None
