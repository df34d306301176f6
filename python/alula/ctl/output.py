"""How the verbs print: tables that fit the terminal (local, relative times; phases coloured
only when stdout is a terminal), or `-o json` / `-o yaml` of the server's own proto3 JSON,
which is what scripts should read (stable: the API's field names, not the table's columns)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

FORMATS = ("table", "json", "yaml")
_COLOURS = {
    "SUCCEEDED": "32",
    "FAILED": "31",
    "TIMED_OUT": "31",
    "ABORTED": "33",
    "RUNNING": "34",
    "QUEUED": "36",
    "ACTIVE": "32",
}

Column = tuple[str, Callable[[Any], str]]


def need_yaml() -> Any:
    """PyYAML, or an ImportError naming the extra that installs it."""
    from alula.extras import require

    return require("yaml", "YAML input or output")


def dig(value: Any, *path: str, default: Any = "") -> Any:
    """`value[path[0]][path[1]]...`, `default` where a step is missing (proto3 JSON leaves
    zero values out)."""
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return default
        value = value[key]
    return value


def parse_time(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def relative(text: str, now: datetime | None = None) -> str:
    """An RFC 3339 time as local time and how long ago ("14:03:07 (3 min ago)")."""
    when = parse_time(text)
    if when is None:
        return text
    now = now or datetime.now(timezone.utc)
    seconds = int((now - when).total_seconds())
    if seconds < 60:
        ago = f"{max(seconds, 0)} s ago"
    elif seconds < 3600:
        ago = f"{seconds // 60} min ago"
    elif seconds < 86400:
        ago = f"{seconds // 3600} h ago"
    else:
        ago = f"{seconds // 86400} d ago"
    local = when.astimezone()
    shown = local.strftime("%H:%M:%S" if seconds < 86400 else "%Y-%m-%d %H:%M")
    return f"{shown} ({ago})"


def duration(text: str) -> str:
    """A proto3 JSON duration ("12.5s") as "12.5s" / "3m4s"."""
    if not text or not text.endswith("s"):
        return text
    try:
        seconds = float(text[:-1])
    except ValueError:
        return text
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m" if hours else f"{minutes}m{rest}s"


def colour_enabled() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def phase(text: str) -> str:
    code = _COLOURS.get(text)
    if code and colour_enabled():
        return f"\x1b[{code}m{text}\x1b[0m"
    return text


def _visible(text: str) -> int:
    """The printed width of a cell, without colour escapes."""
    if "\x1b[" not in text:
        return len(text)
    width, skipping = 0, False
    for ch in text:
        if ch == "\x1b":
            skipping = True
        elif skipping and ch == "m":
            skipping = False
        elif not skipping:
            width += 1
    return width


def table(rows: Sequence[Any], columns: Sequence[Column]) -> str:
    """Rows as aligned columns; the widest column is cut so the table fits the terminal."""
    cells = [[str(get(row)) for _, get in columns] for row in rows]
    headers = [name for name, _ in columns]
    widths = [max([len(h)] + [_visible(r[i]) for r in cells]) for i, h in enumerate(headers)]
    budget = shutil.get_terminal_size((160, 24)).columns - 2 * (len(widths) - 1)
    while sum(widths) > budget and max(widths) > 12:
        widest = widths.index(max(widths))
        widths[widest] -= 1
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in cells:
        out = []
        for text, w in zip(row, widths, strict=True):
            if _visible(text) > w:
                text = text[: w - 1] + "…"
            out.append(text + " " * (w - _visible(text)))
        lines.append("  ".join(out).rstrip())
    return "\n".join(lines)


def emit(data: Any, fmt: str, rows: Sequence[Any], columns: Sequence[Column]) -> None:
    """`data` (the API's answer) as JSON or YAML, or `rows` of it as a table."""
    if fmt == "json":
        print(json.dumps(data, indent=2, sort_keys=True))
    elif fmt == "yaml":
        print(need_yaml().safe_dump(data, sort_keys=True, default_flow_style=False), end="")
    elif rows:
        print(table(rows, columns))
    else:
        print("(none)", file=sys.stderr)
