"""A local run shown in a notebook. Calling a workflow returns its plain value (as in
flytekit); `alula.display.run(wf, **inputs)` runs it the same way while showing the graph and
the elapsed time, then the outputs rendered by type, or the failing node and its traceback."""

from __future__ import annotations

import contextvars
import threading
import time
import traceback
from typing import Any

from alula.display.graph import node_name, svg
from alula.display.ipython import in_kernel, show, update
from alula.display.markup import badge, duration, element, panel, text
from alula.display.values import outputs_html


def _html(wf: Any, phase: str, seconds: float, body: str, phases: dict[str, str]) -> str:
    header = element(
        "h4", text(f"local run of {wf.short_name} "), badge(phase), text(f" {duration(seconds)}")
    )
    return panel("local-run", header, svg(wf.nodes, phases), body, data_phase=phase)


def _failure(wf: Any, error: BaseException) -> tuple[str, dict[str, str]]:
    node_id = getattr(error, "node_id", "")
    names = {n.id: node_name(n) for n in wf.nodes}
    cause = error.__cause__ or error
    trace = "".join(traceback.format_exception(cause))
    heading = (
        element(
            "h4",
            text(f"node {node_id} ({names.get(node_id, node_id)}) failed"),
            class_="failed-node",
            data_node_id=node_id,
        )
        if node_id
        else element("h4", text(f"{type(error).__name__}"), class_="failed-node")
    )
    body = element(
        "div", heading, element("pre", text(trace), class_="traceback"), class_="failure"
    )
    phases = {node_id: "FAILED"} if node_id else {}
    return body, phases


def run(entity: Any, **inputs: Any) -> Any:
    """Run a workflow (or launch plan) locally, showing it live; returns what calling it
    returns, and raises what calling it raises (after showing the failure)."""
    from alula.core.local import run as run_locally

    wf = getattr(entity, "workflow", entity)
    if type(wf).__name__ != "Workflow":
        raise TypeError(f"alula.display.run runs a workflow or launch plan, not {entity!r}")
    if wf is not entity:  # a launch plan: its defaults under the inputs, fixed ones over
        inputs = {**entity.default_inputs, **inputs, **entity.fixed_inputs}
    handle = _handle(_html(wf, "RUNNING", 0.0, "", {}))
    started = time.monotonic()
    stop = threading.Event()

    def tick() -> None:
        # The runner holds this thread; the display updates from another while it works.
        while not stop.wait(0.5):
            update(handle, _html(wf, "RUNNING", time.monotonic() - started, "", {}))

    if handle is None:
        return run_locally(wf, **inputs)
    # In this cell's context: ipykernel keeps the cell a message belongs to in context
    # variables, which a new thread does not inherit on its own.
    ticker = threading.Thread(target=contextvars.copy_context().run, args=(tick,), daemon=True)
    ticker.start()
    try:
        result = run_locally(wf, **inputs)
    except Exception as error:
        stop.set()
        ticker.join()  # no "RUNNING" may come after the end
        body, phases = _failure(wf, error)
        update(handle, _html(wf, "FAILED", time.monotonic() - started, body, phases))
        raise
    finally:
        stop.set()
        ticker.join()
    names = list(wf.interface.outputs)
    values = dict(zip(names, result if len(names) > 1 else (result,), strict=True)) if names else {}
    phases = {n.id: "SUCCEEDED" for n in wf.nodes}
    seconds = time.monotonic() - started
    update(handle, _html(wf, "SUCCEEDED", seconds, outputs_html(values), phases))
    return result


def _handle(first: str) -> Any:
    """A display handle in a notebook (None elsewhere: the run is then a plain call)."""
    return show(first) if in_kernel() else None
