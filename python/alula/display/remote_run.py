"""A remote execution in a notebook: its status (nodes by phase, elapsed time, a progress bar
per map node) read from admin, updated in place while it runs (`watch`), and once it ended its
outputs, or the failing node with the user's traceback and the end of the task's log."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from alula.display.ipython import in_kernel, show, update
from alula.display.markup import (
    badge,
    duration,
    element,
    panel,
    progress_bar,
    table,
    text,
)
from alula.display.values import outputs_html

LOG_LINES = 40  # lines of a failed task's stderr shown
# Executions this process started, id -> (the Remote that knows them, node id -> name): how an
# `Execution` finds what to show (it is a plain value and holds no client).
_KNOWN: dict[tuple[str, str, str], tuple[Any, dict[str, str]]] = {}


def remember(remote: Any, execution: Any, entity: Any = None) -> None:
    """Keep the client (and node names of `entity`, a workflow) for `execution`'s display."""
    names: dict[str, str] = {}
    wf = getattr(entity, "workflow", entity)  # a launch plan shows its workflow's nodes
    if type(wf).__name__ == "Workflow":
        from alula.display.graph import node_name

        try:
            names = {node.id: node_name(node) for node in wf.nodes}
        except Exception:  # noqa: BLE001 - names are a nicety; node ids remain
            names = {}
    _KNOWN[(execution.project, execution.domain, execution.name)] = (remote, names)


def known_remote(execution: Any) -> tuple[Any, dict[str, str]] | None:
    return _KNOWN.get((execution.project, execution.domain, execution.name))


@dataclass
class NodeState:
    id: str
    name: str
    phase: str
    seconds: float | None
    elements: tuple[int, int] | None = None  # a map node's (finished, total) elements
    error: str = ""


@dataclass
class RunState:
    """One look at an execution."""

    phase: str
    seconds: float
    nodes: list[NodeState] = field(default_factory=list)
    error: str = ""

    @property
    def done(self) -> bool:
        from alula.remote import TERMINAL_PHASES

        return self.phase in TERMINAL_PHASES

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for node in self.nodes:
            out[node.phase] = out.get(node.phase, 0) + 1
        return out

    def line(self) -> str:
        """The plain-text status, as `alula run` prints it."""
        counts = ", ".join(f"{n} {p}" for p, n in sorted(self.counts().items()))
        return f"{self.phase} after {duration(self.seconds)}" + (f": {counts}" if counts else "")


def _timestamp(value: str | None) -> datetime | None:
    """A proto3 JSON Timestamp (nanoseconds allowed) as an aware datetime."""
    if not value:
        return None
    head, _, rest = value.rstrip("Z").partition(".")
    fraction = "".join(ch for ch in rest if ch.isdigit())[:6]
    stamp = datetime.fromisoformat(head + (f".{fraction:0<6}" if fraction else ""))
    return stamp.replace(tzinfo=timezone.utc) if stamp.tzinfo is None else stamp


def _seconds(closure: dict[str, Any]) -> float | None:
    """How long it ran: its duration once ended, else since it started (or was created)."""
    spent = closure.get("duration")
    if isinstance(spent, str) and spent.endswith("s"):
        return float(spent[:-1])
    start = _timestamp(closure.get("startedAt") or closure.get("createdAt"))
    if start is None:
        return None
    return max(0.0, (datetime.now(timezone.utc) - start).total_seconds())


def _elements(remote: Any, execution: Any, node_id: str) -> tuple[int, int]:
    """(finished, total) elements of a map node, from its last task attempt's resources."""
    listed = remote.call(
        "ListTaskExecutions",
        {
            "nodeExecutionId": {"nodeId": node_id, "executionId": execution.id_json()},
            "limit": 1000,
        },
    ).get("taskExecutions", [])
    if not listed:
        return 0, 0
    last = max(listed, key=lambda t: int(t.get("id", {}).get("retryAttempt", 0)))
    resources = last.get("closure", {}).get("metadata", {}).get("externalResources", [])
    finished = sum(1 for r in resources if r.get("phase") in ("SUCCEEDED", "FAILED", "ABORTED"))
    return finished, len(resources)


def snapshot(remote: Any, execution: Any, names: dict[str, str] | None = None) -> RunState:
    """The execution's phase, elapsed time and top-level nodes, read now."""
    closure = remote.call("GetExecution", {"id": execution.id_json()}).get("closure", {})
    listed = remote.call(
        "ListNodeExecutions", {"workflowExecutionId": execution.id_json(), "limit": 1000}
    ).get("nodeExecutions", [])
    nodes = []
    for node in listed:
        node_id = node.get("id", {}).get("nodeId", "")
        if node_id in ("start-node", "end-node"):
            continue
        node_closure = node.get("closure", {})
        state = NodeState(
            node_id,
            (names or {}).get(node_id, node_id),
            node_closure.get("phase", "UNDEFINED"),
            _seconds(node_closure),
            error=node_closure.get("error", {}).get("message", ""),
        )
        if node.get("metadata", {}).get("isArray"):
            state.elements = _elements(remote, execution, node_id)
        nodes.append(state)
    nodes.sort(key=lambda n: (len(n.id), n.id))
    return RunState(
        closure.get("phase", "UNDEFINED"),
        _seconds(closure) or 0.0,
        nodes,
        closure.get("error", {}).get("message", "")
        or closure.get("abortMetadata", {}).get("cause", ""),
    )


def nodes_html(state: RunState) -> str:
    rows = []
    for node in state.nodes:
        progress = ""
        if node.elements is not None:
            done, total = node.elements
            progress = progress_bar(done, total) + text(f" {done}/{total}")
        rows.append(
            element(
                "tr",
                element("td", text(node.id)),
                element("td", element("b", text(node.name))),
                element("td", badge(node.phase)),
                element("td", "" if node.seconds is None else duration(node.seconds)),
                element("td", progress),
                class_="node",
                data_node_id=node.id,
                data_name=node.name,
                data_phase=node.phase,
            )
        )
    if not rows:
        return element("p", "no node has started yet", class_="muted")
    return table(["node", "name", "phase", "time", "elements"], rows)


def failure_html(remote: Any, execution: Any, state: RunState) -> str:
    """The failing node, the user's traceback (the error message the task reported) and the
    end of what the task wrote to stderr (`Remote.logs`)."""
    failed = next((n for n in state.nodes if n.phase == "FAILED"), None)
    parts = []
    if failed is not None:
        parts.append(
            element(
                "h4",
                text(f"node {failed.id} ({failed.name}) failed"),
                class_="failed-node",
                data_node_id=failed.id,
            )
        )
    message = (failed.error if failed is not None and failed.error else "") or state.error
    if message:
        parts.append(element("pre", text(message), class_="traceback"))
    if failed is not None:
        try:
            log = remote.logs(execution, failed.id, stream="stderr")
        except Exception as e:  # noqa: BLE001 - the failure shows even without its log
            log = f"(no log: {e})"
        tail = "\n".join(log.rstrip().splitlines()[-LOG_LINES:])
        parts.append(element("h4", text(f"stderr of {failed.id} (last {LOG_LINES} lines)")))
        parts.append(element("pre", text(tail), class_="logs", data_node_id=failed.id))
    return element("div", *parts, class_="failure")


def execution_html(remote: Any, execution: Any, state: RunState, names: Any = None) -> str:
    """The whole display: header with phase, elapsed time and console link, the nodes, and
    once ended, the outputs or the failure."""
    link = element("a", "open in the console", href=remote.console_url(execution), target="_blank")
    header = element(
        "h4",
        text(f"execution {execution.name} "),
        badge(state.phase),
        text(f" {duration(state.seconds)} "),
        link,
    )
    parts = [header, nodes_html(state)]
    if state.phase == "SUCCEEDED":
        try:
            parts.append(outputs_html(remote.outputs(execution)))
        except Exception as e:  # noqa: BLE001 - outputs that cannot be read say why
            parts.append(element("pre", text(f"outputs unreadable: {e}"), class_="error"))
    elif state.done:
        parts.append(failure_html(remote, execution, state))
    return panel(
        "execution",
        *parts,
        data_execution=execution.name,
        data_phase=state.phase,
    )


def execution_repr_html(execution: Any) -> str:
    """`Execution._repr_html_`: a look now, when this process started the execution."""
    known = known_remote(execution)
    if known is None:
        return panel("execution", element("h4", text(f"execution {execution}")))
    remote, names = known
    return execution_html(remote, execution, snapshot(remote, execution, names))


class _Shown:
    """The display being updated: an IPython display handle, or lines on stdout outside one."""

    def __init__(self) -> None:
        self.handle: Any = None
        self.last = ""
        self.live = in_kernel()

    def show(self, html: str, line: str) -> None:
        if not self.live:
            if line != self.last:
                print(line, flush=True)
                self.last = line
        elif self.handle is None:
            self.handle = show(html)
        else:
            update(self.handle, html)


def watch(remote: Any, execution: Any, poll: float = 0.5, timeout: float | None = None) -> Any:
    """Show the execution and update it in place until it ends; returns what `Remote.wait`
    returns (raising `ExecutionFailed` after showing the failure)."""
    names = (known_remote(execution) or (None, {}))[1]
    shown = _Shown()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        state = snapshot(remote, execution, names)
        shown.show(execution_html(remote, execution, state), state.line())
        if state.done:
            break
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"execution {execution} still {state.phase} after {timeout}s")
        time.sleep(poll)
    return remote.wait(execution, timeout=1)


async def watch_async(
    remote: Any, execution: Any, poll: float = 0.5, timeout: float | None = None
) -> Any:
    """`watch` for `await` in a notebook cell: the kernel stays responsive meanwhile."""
    names = (known_remote(execution) or (None, {}))[1]
    shown = _Shown()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        state = await asyncio.to_thread(snapshot, remote, execution, names)
        page = await asyncio.to_thread(execution_html, remote, execution, state)
        shown.show(page, state.line())
        if state.done:
            break
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"execution {execution} still {state.phase} after {timeout}s")
        await asyncio.sleep(poll)
    return await remote.wait_async(execution, timeout=1)
