"""A compact diagram of a local workflow's nodes: the nodes in topological layers, left to
right, as SVG. (The console draws executions in Rust, rust/console/src/graph; a local object
has no execution yet, and bringing that crate into the Python module is not worth a picture.)"""

from __future__ import annotations

from typing import Any

from alula.display.markup import element, text

BOX_W, BOX_H = 150, 28
GAP_X, GAP_Y = 40, 12


def node_name(node: Any) -> str:
    """What a node runs, as its author named it (`square`, `map_square`, a gate's name)."""
    entity = node.entity
    mapped = getattr(entity, "task", None)
    if type(entity).__name__ == "MapTask" and mapped is not None:
        return f"map_{mapped.short_name}"
    short = getattr(entity, "short_name", None)
    return short if isinstance(short, str) else str(node.label)


def node_kind(node: Any) -> str:
    entity = node.entity
    kind = type(entity).__name__
    return {
        "PythonFunctionTask": "task",
        "MapTask": "map",
        "Workflow": "subworkflow",
        "LaunchPlan": "launch plan",
    }.get(kind, kind.lower())


def layers(nodes: list[Any]) -> list[list[Any]]:
    """The nodes by depth: a node sits one layer after the deepest node it waits for."""
    depth: dict[int, int] = {}

    def of(node: Any) -> int:
        key = id(node)
        if key not in depth:
            depth[key] = 0  # a cycle cannot be traced; this only stops a runaway recursion
            ups = [u for u in node.upstream if any(u is n for n in nodes)]
            depth[key] = 1 + max((of(u) for u in ups), default=-1)
        return depth[key]

    out: list[list[Any]] = []
    for node in nodes:
        d = of(node)
        while len(out) <= d:
            out.append([])
        out[d].append(node)
    return out


def svg(nodes: list[Any], phases: dict[str, str] | None = None) -> str:
    """The diagram; `phases` (node id -> phase) colours the nodes of a run."""
    if not nodes:
        return element("p", "no nodes", class_="muted")
    phases = phases or {}
    fills = {"SUCCEEDED": "#dafbe1", "FAILED": "#ffebe9", "RUNNING": "#ddf4ff"}
    where: dict[int, tuple[int, int]] = {}
    grid = layers(nodes)
    for col, layer in enumerate(grid):
        for row, node in enumerate(layer):
            where[id(node)] = (col * (BOX_W + GAP_X), row * (BOX_H + GAP_Y))
    width = len(grid) * (BOX_W + GAP_X) - GAP_X + 2
    height = max(len(layer) for layer in grid) * (BOX_H + GAP_Y) - GAP_Y + 2
    edges = []
    for node in nodes:
        x2, y2 = where[id(node)]
        for up in node.upstream:
            if id(up) in where:
                x1, y1 = where[id(up)]
                edges.append(
                    f'<line x1="{x1 + BOX_W}" y1="{y1 + BOX_H // 2}" x2="{x2}" '
                    f'y2="{y2 + BOX_H // 2}" stroke="#8c959f" />'
                )
    boxes = []
    for node in nodes:
        x, y = where[id(node)]
        phase = phases.get(node.id, "")
        name = node_name(node)
        shown = name if len(name) <= 20 else name[:19] + "…"
        boxes.append(
            element(
                "g",
                element("title", text(f"{node.id}: {node.label}")),
                f'<rect x="{x + 1}" y="{y + 1}" width="{BOX_W}" height="{BOX_H}" rx="5" '
                f'fill="{fills.get(phase, "#f6f8fa")}" stroke="#57606a" />',
                f'<text x="{x + 8}" y="{y + 19}" font-size="12">{text(shown)}</text>',
                class_="node",
                data_node_id=node.id,
                data_name=name,
                data_kind=node_kind(node),
                data_phase=phase or None,
            )
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="alula-graph" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">' + "".join(edges + boxes) + "</svg>"
    )
