"""Issue 17: notebooks executed in a real ipykernel against a real server. Tasks and workflows
defined in cells run locally, run remotely without any file written, are redefined and run
again, map over 1,000 elements and fail; every code cell's outputs are checked, the HTML of each
display parsed (node names, phases, values)."""

from __future__ import annotations

import ast
from collections.abc import Callable

from notebook_support import Cell, Page, parse

SUM_OF_SQUARES_BELOW_1000 = sum(i * i for i in range(1000))


def _last_display(cell: Cell) -> Page:
    pages = cell.html()
    assert pages, f"cell {cell.id} showed no HTML: {cell.outputs}"
    return parse(pages[-1])


def _nothing(cell: Cell) -> None:
    assert cell.outputs == [], f"cell {cell.id}: {cell.outputs}"


def _was_live(cell: Cell, kind: str) -> None:
    """The display was shown running first, then updated in place until it ended."""
    updates = [parse(h) for h in cell.display_updates()]
    phases = [p.one("div", class_=f"alula-{kind}").attrs["data-phase"] for p in updates]
    assert len(phases) >= 2, f"cell {cell.id}: one display, never updated: {phases}"
    assert phases[0] not in ("SUCCEEDED", "FAILED"), phases
    assert any(m["msg_type"] == "update_display_data" for m in cell.messages)


def _outputs(page: Page) -> dict[str, str]:
    return {row.attrs["data-output"]: row.text for row in page.find("tr", data_output="*")}


def _node_rows(page: Page) -> dict[str, tuple[str, str]]:
    """node id -> (name, phase), from a remote execution's node table."""
    return {
        row.attrs["data-node-id"]: (row.attrs["data-name"], row.attrs["data-phase"])
        for row in page.find("tr", class_="node")
    }


def check_show_workflow(cell: Cell) -> None:
    page = _last_display(cell)
    panel = page.one("div", class_="alula-workflow")
    assert panel.attrs["data-name"] == "__main__.pipeline"
    boxes = {g.attrs["data-node-id"]: g.attrs["data-name"] for g in page.find("g", class_="node")}
    assert boxes == {"n0": "double", "n1": "greet", "n2": "scores"}
    inputs = {r.attrs["data-input"]: r.text for r in page.find("tr", data_input="*")}
    assert set(inputs) == {"x", "name"}
    assert "int" in inputs["x"] and inputs["x"].endswith("3")
    assert "'alula'" in inputs["name"]
    assert set(_outputs(page)) == {"o0", "o1", "o2"}
    assert "DataFrame" in _outputs(page)["o2"]
    assert "Doubles x" in panel.text
    assert "<workflow __main__.pipeline>" in cell.plain()


def check_show_task(cell: Cell) -> None:
    page = _last_display(cell)
    panel = page.one("div", class_="alula-task")
    assert panel.attrs["data-name"] == "__main__.double"
    assert "Twice x." in panel.text
    assert "required" in page.one("tr", data_input="x").text
    assert "int" in page.one("tr", data_output="o0").text


def check_call_locally(cell: Cell) -> None:
    # A plain call returns the plain value: (2, greeting, DataFrame of 2 rows).
    text = " ".join(cell.plain().split())  # IPython breaks a long tuple over lines
    assert text.startswith("(2, 'hello alula hello alula',"), text
    assert "player" in text and "p1" in text
    assert cell.html() == []  # a tuple has no rich display: only the value's repr


def check_run_locally(cell: Cell) -> None:
    _was_live(cell, "local-run")
    page = _last_display(cell)
    assert page.one("div", class_="alula-local-run").attrs["data-phase"] == "SUCCEEDED"
    phases = {
        g.attrs["data-name"]: g.attrs.get("data-phase") for g in page.find("g", class_="node")
    }
    assert phases == {"double": "SUCCEEDED", "greet": "SUCCEEDED", "scores": "SUCCEEDED"}
    outputs = _outputs(page)
    assert outputs["o0"].strip().endswith("4")
    assert outputs["o1"].count("hello alula") == 4
    frame = page.one("div", data_type="DataFrame")
    assert "p3" in frame.text and "4 rows × 2 columns" in frame.text
    assert cell.plain() == "4"


def _check_remote_success(cell: Cell, greeting: str, times: int, html_index: int = -1) -> Page:
    page = parse(cell.html()[html_index])
    panel = page.one("div", class_="alula-execution")
    assert panel.attrs["data-phase"] == "SUCCEEDED"
    assert _node_rows(page) == {
        "n0": ("double", "SUCCEEDED"),
        "n1": ("greet", "SUCCEEDED"),
        "n2": ("scores", "SUCCEEDED"),
    }
    outputs = _outputs(page)
    assert outputs["o0"].strip().endswith(str(times))
    assert outputs["o1"].count(f"hello {greeting}") == times
    assert f"{times} rows × 2 columns" in page.one("div", data_type="DataFrame").text
    name = panel.attrs["data-execution"]
    link = page.one("a", target="_blank")
    assert link.attrs["href"].endswith(
        f"/console/projects/flytesnacks/domains/development/executions/{name}"
    )
    return page


def check_run_remotely(cell: Cell) -> None:
    _was_live(cell, "execution")
    _check_remote_success(cell, "remote", 4)
    assert cell.plain() == "(4, 'hello remote hello remote hello remote hello remote')"


def check_show_execution(cell: Cell) -> None:
    _check_remote_success(cell, "remote", 4)


def check_redefine(cell: Cell) -> None:
    # The redefined `double` triples: the workflow of the earlier cell runs the new one.
    _check_remote_success(cell, "again", 6)
    assert cell.plain() == "6"


def check_map_remotely(cell: Cell) -> None:
    _was_live(cell, "execution")
    page = _last_display(cell)
    assert page.one("div", class_="alula-execution").attrs["data-phase"] == "SUCCEEDED"
    rows = _node_rows(page)
    assert rows["n0"] == ("numbers", "SUCCEEDED")
    assert rows["n1"] == ("map_square", "SUCCEEDED")
    assert rows["n2"] == ("total", "SUCCEEDED")
    bar = page.one("span", role="progressbar")
    assert (bar.attrs["aria-valuenow"], bar.attrs["aria-valuemax"]) == ("1000", "1000")
    assert _outputs(page)["o0"].strip().endswith(str(SUM_OF_SQUARES_BELOW_1000))
    assert cell.plain() == str(SUM_OF_SQUARES_BELOW_1000)
    # While it ran, the bar moved: some update showed the map node with fewer elements done.
    seen = set()
    for html in cell.display_updates():
        for b in parse(html).find("span", role="progressbar"):
            seen.add(int(b.attrs["aria-valuenow"]))
    assert 1000 in seen and min(seen) < 1000, sorted(seen)


def check_fail_remotely(cell: Cell) -> None:
    (error,) = cell.errors()
    assert error["ename"] == "ExecutionFailed", error
    page = _last_display(cell)
    assert page.one("div", class_="alula-execution").attrs["data-phase"] == "FAILED"
    assert _node_rows(page)["n0"] == ("explode", "FAILED")
    assert page.one("h4", class_="failed-node").attrs["data-node-id"] == "n0"
    assert "ValueError: boom at 7" in page.one("pre", class_="traceback").text
    assert "about to explode with 7" in page.one("pre", class_="logs").text


def check_fail_locally(cell: Cell) -> None:
    (error,) = cell.errors()
    assert error["ename"] == "TaskExecutionError", error
    page = _last_display(cell)
    assert page.one("div", class_="alula-local-run").attrs["data-phase"] == "FAILED"
    assert page.one("h4", class_="failed-node").attrs["data-node-id"] == "n0"
    assert page.one("g", class_="node", data_node_id="n0").attrs["data-phase"] == "FAILED"
    assert "ValueError: boom at 5" in page.one("pre", class_="traceback").text


SUITE: dict[str, Callable[[Cell], None]] = {
    "parameters": _nothing,
    "define": _nothing,
    "show-workflow": check_show_workflow,
    "show-task": check_show_task,
    "call-locally": check_call_locally,
    "run-locally": check_run_locally,
    "run-remotely": check_run_remotely,
    "show-execution": check_show_execution,
    "redefine": check_redefine,
    "map-remotely": check_map_remotely,
    "fail-remotely": check_fail_remotely,
    "fail-locally": check_fail_locally,
}


def check_tour_show(cell: Cell) -> None:
    page = _last_display(cell)
    names = {g.attrs["data-name"] for g in page.find("g", class_="node")}
    assert names == {"map_square", "summarize"}
    assert "[1, 2, 3]" in page.one("tr", data_input="xs").text


def check_tour_call(cell: Cell) -> None:
    assert ast.literal_eval(cell.plain()) == {"count": 4, "total": 30, "largest": 16}


def check_tour_local(cell: Cell) -> None:
    page = _last_display(cell)
    assert page.one("div", class_="alula-local-run").attrs["data-phase"] == "SUCCEEDED"
    value = page.one("tr", data_output="o0").text
    assert "count3" in value.replace(" ", "") and "total110" in value.replace(" ", "")
    assert ast.literal_eval(cell.plain()) == {"count": 3, "total": 110, "largest": 49}


def check_tour_remote(cell: Cell) -> None:
    page = _last_display(cell)
    assert page.one("div", class_="alula-execution").attrs["data-phase"] == "SUCCEEDED"
    assert _node_rows(page)["n0"] == ("map_square", "SUCCEEDED")
    assert ast.literal_eval(cell.plain()) == {"count": 10, "total": 285, "largest": 81}


TOUR: dict[str, Callable[[Cell], None]] = {
    "connect": _nothing,
    "define": _nothing,
    "show": check_tour_show,
    "call": check_tour_call,
    "local": check_tour_local,
    "remote": check_tour_remote,
}


def _check_every_cell(cells: dict[str, Cell], checks: dict[str, Callable[[Cell], None]]) -> None:
    # A new cell needs a check of its own: none goes unread.
    assert set(cells) == set(checks)
    for cell_id, cell in cells.items():
        if "raises-exception" not in cell.tags:
            assert cell.errors() == [], f"cell {cell_id} failed: {cell.errors()}"
        checks[cell_id](cell)


def test_the_suite_notebook(executed: dict[str, dict[str, Cell]]) -> None:
    _check_every_cell(executed["suite"], SUITE)


def test_the_example_notebook(executed: dict[str, dict[str, Cell]]) -> None:
    _check_every_cell(executed["tour"], TOUR)
