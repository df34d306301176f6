"""The verbs that change the control plane: create project / execution, relaunch, recover,
terminate, update launch plan / execution / project, and the gates' approve / reject /
set-signal."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from alula.core.protojson import Json
from alula.ctl import client
from alula.ctl.literals import InputError, inputs_literals, literal
from alula.ctl.output import emit, need_yaml
from alula.remote import Remote, _principal


def read_document(path: str) -> Any:
    """A YAML or JSON file (JSON needs no YAML library)."""
    text = Path(path).read_text()
    if path.endswith(".json"):
        return json.loads(text)
    return need_yaml().safe_load(text)


def _key_values(pairs: list[str], what: str) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"{what} {pair!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _printed(args: argparse.Namespace, data: Json, line: str) -> int:
    if args.output == "table":
        print(line)
    else:
        emit(data, args.output, [], [])
    return 0


def create_project(remote: Remote, args: argparse.Namespace) -> int:
    spec: dict[str, Any] = {}
    if args.file:
        spec = dict(read_document(args.file) or {})
    project_id = args.id or spec.get("id")
    if not project_id:
        raise InputError("create project needs --id (or id: in --file)")
    project: dict[str, Any] = {
        "id": project_id,
        "name": args.project_name or spec.get("name") or project_id,
        "description": args.description or spec.get("description", ""),
    }
    labels = {**(spec.get("labels") or {}), **_key_values(args.label, "--label")}
    if labels:
        project["labels"] = {"values": labels}
    data = client.call(remote, "RegisterProject", {"project": project})
    return _printed(args, {"project": project, **data}, f"project {project_id} created")


def launch_plan(remote: Remote, name: str, version: str | None) -> Json:
    """The launch plan `name` at `version`, else its newest version."""
    if version:
        ident = client.identifier(remote, "LAUNCH_PLAN", name, version)
        return client.call(remote, "GetLaunchPlan", {"id": ident})
    scope = {"project": remote.project, "domain": remote.domain, "name": name}
    listed = client.call(
        remote,
        "ListLaunchPlans",
        {"id": scope, "limit": 1, "sortBy": {"key": "created_at", "direction": "DESCENDING"}},
    ).get("launchPlans", [])
    if not listed:
        raise LookupError(f"no launch plan {name!r} in {remote.project}/{remote.domain}")
    lp: Json = listed[0]
    return lp


def create_execution(remote: Remote, args: argparse.Namespace) -> int:
    """From `--launchplan` and `--input`s, or flytectl's exec file (`launchplan`, `version`,
    `inputs`, `envs`, `targetProject`, `targetDomain`); flags win over the file."""
    spec: dict[str, Any] = dict(read_document(args.file) or {}) if args.file else {}
    name = args.launchplan or spec.get("launchplan") or spec.get("workflow")
    if not name:
        raise InputError("create execution needs --launchplan NAME or --file EXEC_FILE")
    if spec.get("targetProject") and not args.project:
        remote.project = spec["targetProject"]
    if spec.get("targetDomain") and not args.domain:
        remote.domain = spec["targetDomain"]
    lp = launch_plan(remote, name, args.version or spec.get("version") or None)
    parameters = lp.get("closure", {}).get("expectedInputs") or lp.get("spec", {}).get(
        "defaultInputs", {}
    )
    file_inputs = dict(spec.get("inputs") or {})
    typed = _key_values(args.input, "--input")
    literals = inputs_literals(parameters, file_inputs, typed, f"launch plan {name}")
    request: dict[str, Any] = {
        "project": remote.project,
        "domain": remote.domain,
        "spec": {
            "launchPlan": lp["id"],
            "metadata": {"mode": "MANUAL", "principal": _principal()},
        },
        "inputs": literals,
    }
    envs = {**(spec.get("envs") or {}), **_key_values(args.env, "--env")}
    if envs:
        request["spec"]["envs"] = {"values": [{"key": k, "value": str(v)} for k, v in envs.items()]}
    if args.name:
        request["name"] = args.name
    data = client.call(remote, "CreateExecution", request)
    created = data.get("id", {})
    return _printed(args, data, f"execution {created.get('name')} created")


def relaunch(remote: Remote, args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"id": client.execution_id(remote, args.execution)}
    if args.name:
        request["name"] = args.name
    if args.overwrite_cache:
        request["overwriteCache"] = True
    data = client.call(remote, "RelaunchExecution", request)
    return _printed(args, data, f"execution {data.get('id', {}).get('name')} created")


def recover(remote: Remote, args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"id": client.execution_id(remote, args.execution)}
    if args.name:
        request["name"] = args.name
    data = client.call(remote, "RecoverExecution", request)
    return _printed(args, data, f"execution {data.get('id', {}).get('name')} created")


def terminate(remote: Remote, args: argparse.Namespace) -> int:
    for name in args.executions:
        ident = client.execution_id(remote, name)
        client.call(remote, "TerminateExecution", {"id": ident, "cause": args.cause})
        print(f"execution {ident['name']} terminated")
    return 0


def update_launchplan(remote: Remote, args: argparse.Namespace) -> int:
    lp = launch_plan(remote, args.name, args.version)
    state = "ACTIVE" if args.activate else "INACTIVE"
    client.call(remote, "UpdateLaunchPlan", {"id": lp["id"], "state": state})
    version = lp["id"].get("version", "")
    word = "activated" if args.activate else "deactivated"
    return _printed(
        args, {"id": lp["id"], "state": state}, f"launch plan {args.name} {version} {word}"
    )


def update_execution(remote: Remote, args: argparse.Namespace) -> int:
    ident = client.execution_id(remote, args.name)
    state = "EXECUTION_ARCHIVED" if args.archive else "EXECUTION_ACTIVE"
    client.call(remote, "UpdateExecution", {"id": ident, "state": state})
    word = "archived" if args.archive else "activated"
    return _printed(args, {"id": ident, "state": state}, f"execution {ident['name']} {word}")


def update_project(remote: Remote, args: argparse.Namespace) -> int:
    project = dict(client.call(remote, "GetProject", {"id": args.id}))
    if args.project_name is not None:
        project["name"] = args.project_name
    if args.description is not None:
        project["description"] = args.description
    if args.label:
        values = dict(project.get("labels", {}).get("values", {}))
        values.update(_key_values(args.label, "--label"))
        project["labels"] = {"values": values}
    if args.archive:
        project["state"] = "ARCHIVED"
    elif args.activate:
        project["state"] = "ACTIVE"
    project.pop("domains", None)
    client.call(remote, "UpdateProject", project)
    return _printed(args, project, f"project {args.id} updated")


def _signals(remote: Remote, ident: Json) -> dict[str, Json]:
    listed = client.call(remote, "ListSignals", {"workflowExecutionId": ident, "limit": 1000})
    return {s.get("id", {}).get("signalId", ""): s for s in listed.get("signals", [])}


def set_signal(remote: Remote, args: argparse.Namespace) -> int:
    """approve (true), reject (false) or set-signal (VALUE read as the signal's type)."""
    ident = client.execution_id(remote, args.execution)
    signals = _signals(remote, ident)
    if args.signal not in signals:
        raise LookupError(
            f"execution {ident['name']} waits for no signal {args.signal!r} "
            f"(signals: {sorted(signals) or 'none yet'})"
        )
    signal_type = signals[args.signal].get("type") or {"simple": "BOOLEAN"}
    if args.verb in ("approve", "reject"):
        if signal_type.get("simple") != "BOOLEAN":
            raise InputError(f"signal {args.signal} is not an approval: use set-signal")
        value: Json = literal(signal_type, args.verb == "approve")
    else:
        try:
            value = literal(signal_type, args.value, raw=True)
        except InputError as e:
            raise InputError(f"signal {args.signal}: {e}") from None
    request = {"id": {"executionId": ident, "signalId": args.signal}, "value": value}
    client.call(remote, "SetSignal", request)
    word = {"approve": "approved", "reject": "rejected"}.get(args.verb, "set")
    print(f"signal {args.signal} of execution {ident['name']} {word}")
    return 0
