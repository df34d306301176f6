"""`alula get NOUN [NAME]`: projects, tasks, workflows, launch plans, executions (with
`--details`, the node tree and task attempts), signals, as flytectl lists them."""

from __future__ import annotations

import argparse
from typing import Any

from alula.core.protojson import Json
from alula.ctl import client
from alula.ctl.filters import translate
from alula.ctl.literals import InputError, show
from alula.ctl.output import Column, dig, duration, emit, phase, relative
from alula.remote import Remote

# Noun (and flytectl's aliases) -> (resource type, list RPC, ids RPC, get RPC).
ENTITIES = {
    "tasks": ("TASK", "ListTasks", "ListTaskIds", "GetTask"),
    "workflows": ("WORKFLOW", "ListWorkflows", "ListWorkflowIds", "GetWorkflow"),
    "launchplans": ("LAUNCH_PLAN", "ListLaunchPlans", "ListLaunchPlanIds", "GetLaunchPlan"),
}
ALIASES = {
    "project": "projects",
    "task": "tasks",
    "workflow": "workflows",
    "launchplan": "launchplans",
    "execution": "executions",
    "signal": "signals",
}


def list_request(args: argparse.Namespace, sort_key: str = "created_at") -> Json:
    """limit, token (admin's token is the offset), filters, sort, from the common options."""
    request: dict[str, Any] = {"limit": args.limit}
    if args.page > 1:
        request["token"] = str((args.page - 1) * args.limit)
    filters = translate(args.filter)
    if filters:
        request["filters"] = filters
    key = args.sort_by or sort_key
    if key:
        request["sortBy"] = {"key": key, "direction": "ASCENDING" if args.asc else "DESCENDING"}
    return request


def _created(row: Json) -> str:
    return relative(dig(row, "closure", "createdAt"))


def get_projects(remote: Remote, args: argparse.Namespace) -> None:
    if args.name:
        data = client.call(remote, "GetProject", {"id": args.name})
        rows = [data]
    else:
        request = list_request(args, sort_key="")
        data = client.call(remote, "ListProjects", request)
        rows = data.get("projects", [])
    columns: list[Column] = [
        ("ID", lambda p: p.get("id", "")),
        ("NAME", lambda p: p.get("name", "")),
        ("DESCRIPTION", lambda p: p.get("description", "")),
        ("STATE", lambda p: p.get("state", "ACTIVE")),
    ]
    emit(data, args.output, rows, columns)


def _entity_columns(noun: str) -> list[Column]:
    columns: list[Column] = [
        ("NAME", lambda e: dig(e, "id", "name")),
        ("VERSION", lambda e: dig(e, "id", "version")),
    ]
    if noun == "launchplans":
        columns += [
            ("STATE", lambda e: phase(dig(e, "closure", "state", default="INACTIVE"))),
            ("SCHEDULE", _schedule),
        ]
    if noun == "tasks":
        columns.append(("TYPE", lambda e: dig(e, "closure", "compiledTask", "template", "type")))
    columns.append(("CREATED", _created))
    return columns


def _schedule(lp: Json) -> str:
    schedule = dig(lp, "spec", "entityMetadata", "schedule", default={})
    if "cronSchedule" in schedule:
        return str(schedule["cronSchedule"].get("schedule", ""))
    if "cronExpression" in schedule:
        return str(schedule["cronExpression"])
    if "rate" in schedule:
        rate = schedule["rate"]
        return f"every {rate.get('value', 0)} {rate.get('unit', 'MINUTE').lower()}(s)"
    return ""


def get_entities(remote: Remote, args: argparse.Namespace) -> None:
    kind, list_rpc, ids_rpc, get_rpc = ENTITIES[args.noun]
    scope = {"project": remote.project, "domain": remote.domain}
    if not args.name:
        request = list_request(args, sort_key="name")
        if "sortBy" in request and request["sortBy"]["key"] == "name" and not args.sort_by:
            request["sortBy"]["direction"] = "ASCENDING"
        data = client.call(remote, ids_rpc, {**scope, **request})
        columns: list[Column] = [("NAME", lambda e: e.get("name", ""))]
        emit(data, args.output, data.get("entities", []), columns)
        return
    if args.version:
        ident = client.identifier(remote, kind, args.name, args.version)
        data = client.call(remote, get_rpc, {"id": ident})
        emit(data, args.output, [data], _entity_columns(args.noun))
        return
    request = list_request(args)
    if args.latest:
        request["limit"] = 1
        request.pop("token", None)
    data = client.call(remote, list_rpc, {"id": {**scope, "name": args.name}, **request})
    key = {"tasks": "tasks", "workflows": "workflows", "launchplans": "launchPlans"}[args.noun]
    rows = data.get(key, [])
    if not rows:
        raise LookupError(f"no {args.noun[:-1]} {args.name!r} in {remote.project}/{remote.domain}")
    if args.latest:
        data = rows[0]
    if getattr(args, "exec_file", None):
        write_exec_file(rows[0], args.exec_file)
        return
    emit(data, args.output, rows, _entity_columns(args.noun))


def _default(parameter: Json) -> Any:
    """A parameter's default as a plain value for the exec file (None: to be filled in)."""
    primitive = dig(parameter, "default", "scalar", "primitive", default={})
    for value in primitive.values():
        return int(value) if "integer" in primitive else value
    return None


def write_exec_file(lp: Json, path: str) -> None:
    """flytectl's `get launchplan NAME --execFile FILE`: an exec file to edit, then give to
    `alula create execution --file FILE`."""
    import json

    from alula.ctl.output import need_yaml

    parameters = dig(lp, "closure", "expectedInputs", "parameters", default={})
    document = {
        "launchplan": dig(lp, "id", "name"),
        "version": dig(lp, "id", "version"),
        "inputs": {name: _default(p) for name, p in parameters.items()},
        "envs": {},
        "targetProject": dig(lp, "id", "project"),
        "targetDomain": dig(lp, "id", "domain"),
    }
    with open(path, "w") as f:
        if path.endswith(".json"):
            json.dump(document, f, indent=2)
        else:
            need_yaml().safe_dump(document, f, sort_keys=False)
    print(f"wrote an exec file for {document['launchplan']} to {path}")


_EXECUTION_COLUMNS: list[Column] = [
    ("NAME", lambda e: dig(e, "id", "name")),
    ("LAUNCH PLAN", lambda e: dig(e, "spec", "launchPlan", "name")),
    ("VERSION", lambda e: dig(e, "spec", "launchPlan", "version")),
    ("PHASE", lambda e: phase(dig(e, "closure", "phase", default="UNDEFINED"))),
    ("STARTED", lambda e: relative(dig(e, "closure", "startedAt"))),
    ("DURATION", lambda e: duration(dig(e, "closure", "duration"))),
    ("MODE", lambda e: dig(e, "spec", "metadata", "mode", default="MANUAL")),
]


def _archived(execution: Json) -> bool:
    state = dig(execution, "closure", "stateChangeDetails", "state")
    return bool(state == "EXECUTION_ARCHIVED")


def get_executions(remote: Remote, args: argparse.Namespace) -> None:
    if not args.name:
        request = list_request(args)
        scope = {"project": remote.project, "domain": remote.domain}
        data = client.call(remote, "ListExecutions", {"id": scope, **request})
        if not args.archived:
            # Flyte lists leave archived executions out; this server does not filter on the
            # state yet, so they are dropped here (a page may then hold fewer than --limit).
            data["executions"] = [e for e in data.get("executions", []) if not _archived(e)]
        emit(data, args.output, data.get("executions", []), _EXECUTION_COLUMNS)
        return
    ident = client.execution_id(remote, args.name)
    execution = client.call(remote, "GetExecution", {"id": ident})
    if not args.details:
        emit(execution, args.output, [execution], _EXECUTION_COLUMNS)
        return
    nodes = node_tree(remote, ident, "")
    data = {"execution": execution, "nodes": nodes}
    if args.output != "table":
        emit(data, args.output, [], [])
        return
    print(_execution_line(execution))
    error = dig(execution, "closure", "error", "message")
    if error:
        print(f"  error: {error.strip().splitlines()[-1]}")
    for line in tree_lines(nodes, "  "):
        print(line)


def _execution_line(execution: Json) -> str:
    closure = execution.get("closure", {})
    return (
        f"{dig(execution, 'id', 'name')}  {phase(closure.get('phase', 'UNDEFINED'))}  "
        f"{dig(execution, 'spec', 'launchPlan', 'name')}  "
        f"started {relative(closure.get('startedAt', ''))}  {duration(closure.get('duration', ''))}"
    )


def node_tree(remote: Remote, ident: Json, parent: str) -> list[Json]:
    """The node executions under `parent` (the workflow's own: ""), each with its children
    (branches, subworkflows, dynamic nodes) and its task attempts."""
    request: dict[str, Any] = {"workflowExecutionId": ident, "limit": 1000}
    if parent:
        request["uniqueParentId"] = parent
    listed = client.call(remote, "ListNodeExecutions", request).get("nodeExecutions", [])
    out = []
    for node in listed:
        node_id = dig(node, "id", "nodeId")
        if node_id in ("start-node", "end-node"):
            continue
        entry: dict[str, Any] = {"node": node, "children": [], "attempts": []}
        if dig(node, "metadata", "isParentNode", default=False):
            entry["children"] = node_tree(remote, ident, node_id)
        attempts = client.call(
            remote,
            "ListTaskExecutions",
            {"nodeExecutionId": {"nodeId": node_id, "executionId": ident}, "limit": 1000},
        ).get("taskExecutions", [])
        entry["attempts"] = sorted(
            attempts, key=lambda t: int(dig(t, "id", "retryAttempt", default=0))
        )
        out.append(entry)
    return out


def _elements(attempt: Json) -> str:
    """A map task's elements counted by phase ("8 elements: 7 SUCCEEDED, 1 FAILED")."""
    resources = dig(attempt, "closure", "metadata", "externalResources", default=[])
    if not resources:
        return ""
    counts: dict[str, int] = {}
    for r in resources:
        counts[r.get("phase", "UNDEFINED")] = counts.get(r.get("phase", "UNDEFINED"), 0) + 1
    summary = ", ".join(f"{n} {p}" for p, n in sorted(counts.items()))
    return f"  [{len(resources)} elements: {summary}]"


def tree_lines(nodes: list[Json], indent: str) -> list[str]:
    lines = []
    for entry in nodes:
        node = entry["node"]
        closure = node.get("closure", {})
        kind = ""
        if dig(node, "metadata", "isDynamic", default=False):
            kind = " (dynamic)"
        elif entry["children"]:
            kind = " (subworkflow/branch)"
        lines.append(
            f"{indent}{dig(node, 'id', 'nodeId')}{kind}  "
            f"{phase(closure.get('phase', 'UNDEFINED'))}  {duration(closure.get('duration', ''))}"
        )
        for attempt in entry["attempts"]:
            task = dig(attempt, "id", "taskId", "name")
            retry = int(dig(attempt, "id", "retryAttempt", default=0))
            a_closure = attempt.get("closure", {})
            lines.append(
                f"{indent}  attempt {retry} {task}  {phase(a_closure.get('phase', 'UNDEFINED'))}"
                f"  {duration(a_closure.get('duration', ''))}{_elements(attempt)}"
            )
        error = dig(closure, "error", "message")
        if error:
            lines.append(f"{indent}  error: {error.strip().splitlines()[-1]}")
        lines += tree_lines(entry["children"], indent + "  ")
    return lines


def get_signals(remote: Remote, args: argparse.Namespace) -> None:
    if not args.name:
        raise InputError("get signals needs the EXECUTION whose signals to list")
    ident = client.execution_id(remote, args.name)
    request = {"workflowExecutionId": ident, "limit": args.limit}
    data = client.call(remote, "ListSignals", request)
    columns: list[Column] = [
        ("SIGNAL", lambda s: dig(s, "id", "signalId")),
        ("TYPE", lambda s: next(iter(s.get("type", {}).values()), "") if s.get("type") else ""),
        ("VALUE", lambda s: show(s["value"]) if s.get("value") else "(waiting)"),
    ]
    emit(data, args.output, data.get("signals", []), columns)


def run(args: argparse.Namespace) -> int:
    args.noun = ALIASES.get(args.noun, args.noun)
    remote = client.remote(args)
    if args.noun == "projects":
        get_projects(remote, args)
    elif args.noun == "executions":
        get_executions(remote, args)
    elif args.noun == "signals":
        get_signals(remote, args)
    else:
        get_entities(remote, args)
    return 0
