"""`alula logs EXECUTION [NODE]`: what a task attempt printed, through the server's log route
(`/api/v1/logs/...`, the links task events carry); `-f` follows a running attempt by asking
the route only for the bytes after those already shown (`?offset=`)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from alula.core.protojson import Json
from alula.ctl import client
from alula.ctl.get import node_tree
from alula.remote import TERMINAL_PHASES, Remote

_TASK_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"})
_NODE_TERMINAL = _TASK_TERMINAL | {"SKIPPED", "RECOVERED"}


def _flatten(nodes: list[Json]) -> list[Json]:
    out = []
    for entry in nodes:
        if entry["attempts"]:
            out.append(entry)
        out += _flatten(entry["children"])
    return out


def _pick(remote: Remote, ident: Json, node_id: str | None) -> Json | None:
    """The node with task attempts named `node_id`; without one, the failed node, else the
    running one, else the last that ran."""
    nodes = _flatten(node_tree(remote, ident, ""))
    if node_id:
        for entry in nodes:
            if entry["node"].get("id", {}).get("nodeId") == node_id:
                return entry
        return None
    if not nodes:
        return None
    for wanted in ("FAILED", "RUNNING"):
        for entry in nodes:
            if entry["node"].get("closure", {}).get("phase") == wanted:
                return entry
    return nodes[-1]


def _links(attempt: Json, index: int | None) -> dict[str, str]:
    closure = attempt.get("closure", {})
    logs: list[Json] = closure.get("logs", [])
    if index is not None:
        for resource in closure.get("metadata", {}).get("externalResources", []):
            if int(resource.get("index", 0)) == index:
                logs = resource.get("logs", [])
                break
        else:
            raise LookupError(f"the map task has no element {index}")
    return {log.get("name", ""): log.get("uri", "") for log in logs if log.get("uri")}


def _streams(links: dict[str, str], wanted: str) -> list[tuple[str, str, Any]]:
    """(name, uri, where to print) of the streams to show: stdout to stdout, stderr to stderr;
    a pod's single combined log (`output`) to stdout."""
    out = []
    for name, sink in (("stdout", sys.stdout), ("stderr", sys.stderr)):
        if wanted in (name, "all") and name in links:
            out.append((name, links[name], sink))
    if not out and "output" in links:
        out.append(("output", links["output"], sys.stdout))
    return out


def run(args: argparse.Namespace) -> int:
    remote = client.remote(args)
    ident = client.execution_id(remote, args.execution)
    offsets: dict[str, int] = {}
    chosen_node = args.node
    while True:
        entry = _pick(remote, ident, chosen_node)
        execution = client.call(remote, "GetExecution", {"id": ident})
        done = execution.get("closure", {}).get("phase") in TERMINAL_PHASES
        if entry is None:
            if args.follow and not done:
                time.sleep(args.interval)
                continue
            where = f"node {chosen_node}" if chosen_node else "any node"
            raise LookupError(f"execution {ident['name']}: {where} has no task attempts")
        node_id = entry["node"]["id"]["nodeId"]
        if chosen_node is None:
            chosen_node = node_id
            print(f"# node {node_id}", file=sys.stderr)
        attempts = {int(a.get("id", {}).get("retryAttempt", 0)): a for a in entry["attempts"]}
        number = max(attempts) if args.attempt is None else args.attempt
        if number not in attempts:
            raise LookupError(
                f"node {node_id} has no attempt {number} (attempts: {sorted(attempts)})"
            )
        attempt = attempts[number]
        attempt_done = attempt.get("closure", {}).get("phase") in _TASK_TERMINAL or done
        for name, uri, sink in _streams(_links(attempt, args.index), args.stream):
            key = f"{number}/{name}"
            try:
                body = remote.read_log(uri, offsets.get(key, 0))
            except RuntimeError as e:
                # A running attempt's log may not exist yet: following waits for it.
                if args.follow and not attempt_done and "HTTP 404" in str(e):
                    continue
                raise
            offsets[key] = offsets.get(key, 0) + len(body)
            sink.write(body.decode(errors="replace"))
            sink.flush()
        node_done = entry["node"].get("closure", {}).get("phase") in _NODE_TERMINAL
        # Without --attempt, a retried node is followed into its next attempt.
        if not args.follow or done or (attempt_done and (node_done or args.attempt is not None)):
            return 0
        time.sleep(args.interval)
