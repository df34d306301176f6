"""Small helpers to build the HTML of the notebook displays: escaped text, elements with
attributes, and the one stylesheet every display carries (a notebook shows each output on
its own, so none may rely on another's styles)."""

from __future__ import annotations

from html import escape
from typing import Any

# Phase names (flyteidl's WorkflowExecution/NodeExecution phases) -> badge colour.
_PHASE_COLOURS = {
    "SUCCEEDED": "#1a7f37",
    "FAILED": "#cf222e",
    "ABORTED": "#8250df",
    "TIMED_OUT": "#bc4c00",
    "RUNNING": "#0969da",
    "QUEUED": "#6e7781",
    "UNDEFINED": "#6e7781",
}

STYLE = """<style>
.alula{font-family:system-ui,sans-serif;font-size:13px;line-height:1.4;color:#1f2328}
.alula h4{margin:4px 0;font-size:14px}
.alula table{border-collapse:collapse;margin:4px 0}
.alula td,.alula th{border:1px solid #d0d7de;padding:2px 8px;text-align:left;vertical-align:top}
.alula th{background:#f6f8fa}
.alula .badge{display:inline-block;padding:0 6px;border-radius:8px;color:#fff;font-size:11px}
.alula .bar{display:inline-block;width:160px;height:8px;background:#eaeef2;border-radius:4px}
.alula .bar span{display:block;height:8px;background:#1a7f37;border-radius:4px}
.alula pre{background:#f6f8fa;padding:6px;max-height:320px;overflow:auto;white-space:pre-wrap}
.alula .muted{color:#6e7781}
</style>"""


def text(value: Any) -> str:
    """`value` as HTML text (quotes escaped too: the same text goes into attributes)."""
    return escape(str(value), quote=True)


def element(tag: str, *children: str, **attrs: Any) -> str:
    """`<tag attrs>children</tag>`; children are HTML already, attribute values are escaped.
    A trailing underscore names a Python keyword (`class_`), `data_x` becomes `data-x`, and
    None leaves the attribute out."""
    rendered = "".join(
        f' {name.rstrip("_").replace("_", "-")}="{text(value)}"'
        for name, value in attrs.items()
        if value is not None
    )
    return f"<{tag}{rendered}>{''.join(children)}</{tag}>"


def table(header: list[str], rows: list[str]) -> str:
    """A table whose rows are `<tr>` HTML already."""
    head = element("tr", *(element("th", text(h)) for h in header))
    return element("table", head, *rows)


def badge(phase: str) -> str:
    colour = _PHASE_COLOURS.get(phase, "#6e7781")
    return element(
        "span", text(phase), class_="badge", data_phase=phase, style=f"background:{colour}"
    )


def progress_bar(done: int, total: int) -> str:
    percent = 0 if total <= 0 else round(100 * done / total)
    return element(
        "span",
        element("span", style=f"width:{percent}%"),
        class_="bar",
        role="progressbar",
        aria_valuenow=str(done),
        aria_valuemax=str(total),
    )


def panel(kind: str, *children: str, **attrs: Any) -> str:
    """The outer element of one display, with the stylesheet."""
    return STYLE + element("div", *children, class_=f"alula alula-{kind}", **attrs)


def duration(seconds: float) -> str:
    """`4.2s`, `3m 05s`, `1h 02m`."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
