"""Task and workflow values as HTML, by type: DataFrames as tables (the first rows),
files and directories as links, lists and dicts as nested tables, anything else as text."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from alula.display.markup import element, table, text

HEAD_ROWS = 10  # rows of a DataFrame shown
ITEMS = 20  # items of a list or dict shown before "… N more"


def value_html(value: Any, depth: int = 0) -> str:
    """`value` rendered for a notebook; nested containers render two levels deep."""
    from alula.types.blob import BlobPath

    if isinstance(value, BlobPath):
        return _blob(value)
    frame = _dataframe_html(value)
    if frame is not None:
        return frame
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and depth < 2:
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _mapping(fields, depth, type(value).__name__)
    if isinstance(value, dict) and depth < 2:
        return _mapping(value, depth, None)
    if isinstance(value, (list, tuple)) and depth < 2:
        return _sequence(list(value), depth)
    shown = repr(value) if isinstance(value, str) else str(value)
    if len(shown) > 2000:
        shown = shown[:2000] + "…"
    return element("code", text(shown), data_type=type(value).__name__)


def _blob(value: Any) -> str:
    where = value.remote_source or value.path
    href = where if "://" in where else "file://" + os.path.abspath(where)
    kind = "directory" if type(value).__name__ == "FlyteDirectory" else "file"
    return element("a", text(where), href=href, target="_blank", data_type=kind)


def _dataframe_html(value: Any) -> str | None:
    """A pandas DataFrame's first rows (pandas itself is imported only if the value is one)."""
    module = type(value).__module__
    if not module.startswith("pandas") or not hasattr(value, "to_html"):
        return None
    rows = len(value)
    head = value.head(HEAD_ROWS).to_html(border=0)
    note = f"{rows} rows × {len(value.columns)} columns"
    if rows > HEAD_ROWS:
        note += f" (first {HEAD_ROWS} shown)"
    return element("div", head, element("div", text(note), class_="muted"), data_type="DataFrame")


def _mapping(value: dict[Any, Any], depth: int, name: str | None) -> str:
    items = list(value.items())
    rows = [
        element("tr", element("td", text(k)), element("td", value_html(v, depth + 1)))
        for k, v in items[:ITEMS]
    ]
    rows += _more(len(items))
    return element("div", table(["key", "value"], rows), data_type=name or "dict")


def _sequence(value: list[Any], depth: int) -> str:
    rows = [
        element("tr", element("td", str(i)), element("td", value_html(v, depth + 1)))
        for i, v in enumerate(value[:ITEMS])
    ]
    rows += _more(len(value))
    return element("div", table([f"{len(value)} items", ""], rows), data_type="list")


def _more(count: int) -> list[str]:
    if count <= ITEMS:
        return []
    return [element("tr", element("td", f"… {count - ITEMS} more", colspan="2", class_="muted"))]


def outputs_html(values: dict[str, Any]) -> str:
    """A workflow's outputs, one row each: name and value."""
    rows = [
        element(
            "tr",
            element("td", element("b", text(name))),
            element("td", value_html(v)),
            data_output=name,
        )
        for name, v in values.items()
    ]
    if not rows:
        return element("p", "no outputs", class_="muted")
    return table(["output", "value"], rows)
