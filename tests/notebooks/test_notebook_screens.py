"""The notebooks' HTML displays opened in Debian's Chromium: each renders with its styles (the
phase badges coloured, the graph's boxes laid out, tables drawn), and a screenshot of each is
saved for a person to look at (the folder is printed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from notebook_support import Cell

# markup.py's colours of the phases, as the browser computes them.
BADGE_COLOURS = {
    "SUCCEEDED": "rgb(26, 127, 55)",
    "FAILED": "rgb(207, 34, 46)",
}


def _pages(executed: dict[str, dict[str, Cell]]) -> list[tuple[str, str]]:
    out = []
    for notebook, cells in executed.items():
        for cell_id, cell in cells.items():
            for i, html in enumerate(cell.html()):
                if 'class="alula ' in html:
                    out.append((f"{notebook}-{cell_id}-{i}", html))
    return out


def test_displays_render_in_chromium(
    executed: dict[str, dict[str, Cell]], chromium: Any, tmp_path: Path
) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"notebook display screenshots: {shots}")
    pages = _pages(executed)
    # Every kind of display is there: entities, local runs, remote executions.
    kinds = {name.split("-", 1)[1].rsplit("-", 1)[0] for name, _ in pages}
    assert {"show-workflow", "show-task", "run-locally", "run-remotely", "map-remotely"} <= kinds
    context = chromium.new_context(viewport={"width": 1100, "height": 700})
    try:
        page = context.new_page()
        for name, html in pages:
            file = shots / f"{name}.html"
            file.write_text(f"<!doctype html><meta charset='utf-8'><body>{html}</body>")
            page.goto(file.as_uri())
            panel = page.locator("div.alula").first
            box = panel.bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 20, (name, box)
            for g in page.locator("svg.alula-graph g.node rect").all():
                rect = g.bounding_box()
                assert rect is not None and rect["width"] > 100, (name, rect)
            for phase, colour in BADGE_COLOURS.items():
                for badge in page.locator(f'span.badge[data-phase="{phase}"]').all():
                    got = badge.evaluate("e => getComputedStyle(e).backgroundColor")
                    assert got == colour, (name, phase, got)
            for table in page.locator("div.alula table").all():
                cell_box = table.locator("td").first.bounding_box()
                assert cell_box is not None and cell_box["height"] > 5, name
            png = panel.screenshot(path=str(shots / f"{name}.png"))
            assert len(png) > 1000, name
    finally:
        context.close()
