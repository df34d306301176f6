"""Gate nodes: `sleep`, `wait_for_input` (a signal) and `approve`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from alula.core.errors import WorkflowAuthoringError
from alula.core.interface import literal_type_of
from alula.core.protojson import Json, duration_json
from alula.core.settings import SerializationSettings
from alula.core.trace import Node, Promise, TraceState, call_site, tracing

# flytekit's timeout for gates that are not given one.
DEFAULT_TIMEOUT = timedelta(hours=1)


@dataclass(frozen=True)
class Gate:
    gate: Json  # the core.GateNode

    def target_json(self, node: Node, settings: SerializationSettings) -> Json:
        return {"gateNode": self.gate}


def _state(what: str, site: str) -> TraceState:
    state = tracing()
    if state is None:
        raise WorkflowAuthoringError(f"{what} at {site} is only allowed inside a @workflow")
    return state


def _gate_node(gate: Json, name: str, timeout: timedelta, site: str) -> Node:
    metadata = {"name": name, "timeout": duration_json(timeout), "retries": {}}
    return Node(Gate(gate), f"gate '{name}'", site, metadata)


def sleep(duration: timedelta) -> Any:
    """A node that waits for `duration` before its downstream nodes run."""
    site = call_site()
    state = _state("sleep()", site)
    node = _gate_node(
        {"sleep": {"duration": duration_json(duration)}}, "sleep-gate", DEFAULT_TIMEOUT, site
    )
    return state.add(node).outputs()


def wait_for_input(name: str, timeout: timedelta, expected_type: Any) -> Any:
    """A node that waits for a value of `expected_type` sent as signal `name`."""
    site = call_site()
    state = _state(f"wait_for_input('{name}')", site)
    lt = literal_type_of(expected_type, f"wait_for_input('{name}')", "expected_type", site)
    signal = {"signalId": name, "type": lt, "outputVariableName": "o0"}
    node = _gate_node({"signal": signal}, name, timeout, site)
    node.output_types["o0"] = lt
    node.output_py["o0"] = expected_type
    return state.add(node).outputs()


def approve(upstream_item: Any, name: str, timeout: timedelta) -> Any:
    """A node that passes `upstream_item` on once someone approves signal `name`."""
    site = call_site()
    state = _state(f"approve(..., '{name}')", site)
    if not isinstance(upstream_item, Promise) or upstream_item.node is None:
        raise WorkflowAuthoringError(
            f"approve(..., '{name}') at {site}: approves one output of a node, "
            f"got {upstream_item!r}"
        )
    node = _gate_node({"approve": {"signalId": name}}, name, timeout, site)
    node.bindings.append(("o0", upstream_item.binding()))
    node.add_upstream(upstream_item.node)
    node.output_types["o0"] = upstream_item.literal_type
    node.output_py["o0"] = upstream_item.py_type
    return state.add(node).outputs()
