"""How a task, a workflow and a launch plan show in a notebook: their interface (inputs with
types and defaults, outputs with types) and, for workflows, the graph of their nodes."""

from __future__ import annotations

from typing import Any

from alula.display.graph import svg
from alula.display.markup import element, panel, table, text


def interface_html(interface: Any, fixed: dict[str, Any] | None = None) -> str:
    from alula.core.interface import type_name

    fixed = fixed or {}
    rows = []
    for name, t in interface.inputs.items():
        if name in fixed:
            default = f"fixed: {fixed[name]!r}"
        elif name in interface.defaults:
            default = repr(interface.defaults[name])
        else:
            default = "required"
        rows.append(
            element(
                "tr",
                element("td", "input"),
                element("td", element("b", text(name))),
                element("td", element("code", text(type_name(t)))),
                element("td", text(default)),
                data_input=name,
            )
        )
    for name, t in interface.outputs.items():
        rows.append(
            element(
                "tr",
                element("td", "output"),
                element("td", element("b", text(name))),
                element("td", element("code", text(type_name(t)))),
                element("td", ""),
                data_output=name,
            )
        )
    if not rows:
        return element("p", "no inputs, no outputs", class_="muted")
    return table(["", "name", "type", "default"], rows)


def _doc(entity: Any) -> str:
    doc = (getattr(entity, "__doc__", None) or "").strip()
    return element("p", text(doc.splitlines()[0]), class_="muted") if doc else ""


def task_html(task: Any) -> str:
    kind = "dynamic task" if getattr(task, "dynamic", False) else "task"
    return panel(
        "task",
        element("h4", text(f"{kind} {task.short_name}")),
        _doc(task),
        interface_html(task.interface),
        data_name=task.name,
    )


def workflow_html(wf: Any) -> str:
    try:
        graph = svg(wf.nodes)
    except Exception as e:  # noqa: BLE001 - an authoring error shows instead of the graph
        graph = element("pre", text(f"{type(e).__name__}: {e}"), class_="error")
    return panel(
        "workflow",
        element("h4", text(f"workflow {wf.short_name}")),
        _doc(wf),
        interface_html(wf.interface),
        graph,
        data_name=wf.name,
    )


def launch_plan_html(lp: Any) -> str:
    wf = lp.workflow
    interface = wf.interface
    shown = type(interface)(
        interface.owner,
        interface.site,
        interface.inputs,
        interface.outputs,
        {**interface.defaults, **lp.default_inputs},
    )
    extra = []
    if lp.schedule is not None:
        extra.append(element("p", text(f"schedule: {lp.schedule}")))
    return panel(
        "launch-plan",
        element("h4", text(f"launch plan {lp.name}")),
        element("p", text(f"runs workflow {wf.name}"), class_="muted"),
        interface_html(shown, lp.fixed_inputs),
        *extra,
        data_name=lp.name,
    )


def signature(entity: Any) -> str:
    """The plain-text form for consoles: `square(x: int) -> int`."""
    from alula.core.interface import type_name

    interface = entity.interface
    params = ", ".join(
        f"{n}: {type_name(t)}"
        + (f" = {interface.defaults[n]!r}" if n in interface.defaults else "")
        for n, t in interface.inputs.items()
    )
    outs = [type_name(t) for t in interface.outputs.values()]
    result = "None" if not outs else outs[0] if len(outs) == 1 else f"({', '.join(outs)})"
    return f"{getattr(entity, 'short_name', entity.name)}({params}) -> {result}"
