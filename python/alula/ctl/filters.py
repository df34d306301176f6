"""`--filter`: what a Flyte user types, as the admin API takes it.

Two spellings are accepted: admin's own (`eq(phase,SUCCEEDED)+gte(created_at,2024-01-01T00:00:00Z)`,
as `flytectl`'s `--filter.fieldSelector` is turned into and as the console sends) and flytectl's
field selector (`phase=SUCCEEDED,created_at>=2024-01-01T00:00:00Z`, `phase in (FAILED;ABORTED)`),
which is translated here. Field names are the server's; it names a wrong one."""

from __future__ import annotations

import re

from alula.errors import AlulaError

_FLYTE = re.compile(r"^\s*(eq|ne|gt|gte|lt|lte|contains|value_in|value_not_in)\(", re.I)
# Longest operators first: `>=` before `>`.
_OPERATORS = (
    ("!=", "ne"),
    (">=", "gte"),
    ("<=", "lte"),
    ("==", "eq"),
    ("=", "eq"),
    (">", "gt"),
    ("<", "lt"),
)
_SET = re.compile(r"^\s*([\w.]+)\s+(in|notin|not in)\s*\(([^)]*)\)\s*$", re.I)
_CONTAINS = re.compile(r"^\s*([\w.]+)\s+contains\s+(.+?)\s*$", re.I)


class FilterError(AlulaError, ValueError):
    """A filter neither spelling reads."""


def _selector(term: str) -> str:
    found = _SET.match(term)
    if found:
        key, op, values = found.groups()
        items = ";".join(v.strip() for v in re.split("[;,]", values) if v.strip())
        return f"{'value_in' if op.lower() == 'in' else 'value_not_in'}({key},{items})"
    found = _CONTAINS.match(term)
    if found:
        return f"contains({found.group(1)},{found.group(2)})"
    for symbol, op in _OPERATORS:
        key, sep, value = term.partition(symbol)
        if sep and key.strip() and value.strip():
            return f"{op}({key.strip()},{value.strip()})"
    raise FilterError(
        f"filter {term.strip()!r}: expected FIELD=VALUE (or != > >= < <=), "
        "FIELD in (A;B), or admin's eq(FIELD,VALUE)"
    )


def _split_selector(text: str) -> list[str]:
    """Terms separated by commas outside parentheses (`phase in (A,B)` keeps its list)."""
    terms, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    terms.append(current)
    return [t for t in terms if t.strip()]


def translate(filters: list[str]) -> str:
    """Every `--filter` given, as one admin filter string (terms joined by `+`)."""
    out: list[str] = []
    for text in filters:
        if not text.strip():
            continue
        if _FLYTE.match(text):
            if text.count("(") != text.count(")"):
                raise FilterError(f"filter {text!r}: unbalanced parentheses")
            out.append(text.strip())
        else:
            out.extend(_selector(t) for t in _split_selector(text))
    return "+".join(out)
