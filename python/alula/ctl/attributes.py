"""Matchable attributes as flytectl handles them: `get|update|delete task-resource-attribute`
(and the other kinds) for a project and domain, or one workflow of them, from or to a YAML
`--attrFile` of flytectl's shape (`project`, `domain`, optional `workflow`, then the
attribute's own fields, e.g. `defaults: {cpu: "1"}` and `limits:` for task resources)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from alula.core.protojson import Json
from alula.ctl import client
from alula.ctl.literals import InputError
from alula.ctl.mutate import read_document
from alula.ctl.output import emit, need_yaml
from alula.remote import Remote

# flytectl's noun -> (MatchableResource, the MatchingAttributes field holding it).
KINDS = {
    "task-resource-attribute": ("TASK_RESOURCE", "taskResourceAttributes"),
    "cluster-resource-attribute": ("CLUSTER_RESOURCE", "clusterResourceAttributes"),
    "execution-queue-attribute": ("EXECUTION_QUEUE", "executionQueueAttributes"),
    "execution-cluster-label": ("EXECUTION_CLUSTER_LABEL", "executionClusterLabel"),
    "plugin-override": ("PLUGIN_OVERRIDE", "pluginOverrides"),
    "workflow-execution-config": ("WORKFLOW_EXECUTION_CONFIG", "workflowExecutionConfig"),
}
ALIASES = {"execution-config": "workflow-execution-config"}
_SCOPE_KEYS = ("project", "domain", "workflow")


def _scope(remote: Remote, args: argparse.Namespace, document: dict[str, Any]) -> Json:
    """project, domain, workflow: flags, else the attribute file's."""
    scope: dict[str, Any] = {
        "project": args.project or document.get("project") or remote.project,
        "domain": args.domain or document.get("domain") or remote.domain,
    }
    workflow = getattr(args, "workflow", None) or document.get("workflow")
    if workflow:
        scope["workflow"] = workflow
    return scope


def _rpc(verb: str, scope: Json) -> str:
    return f"{verb}{'Workflow' if 'workflow' in scope else 'ProjectDomain'}Attributes"


def _document(args: argparse.Namespace) -> dict[str, Any]:
    if not getattr(args, "attr_file", None) or args.verb != "update":
        return {}
    document = read_document(args.attr_file)
    if not isinstance(document, dict):
        raise InputError(f"{args.attr_file}: expected a mapping of attribute fields")
    return document


def run(remote: Remote, args: argparse.Namespace) -> int:
    noun = ALIASES.get(args.noun, args.noun)
    resource, field = KINDS[noun]
    document = _document(args)
    scope = _scope(remote, args, document)
    if args.verb == "get":
        data = client.call(remote, _rpc("Get", scope), {**scope, "resourceType": resource})
        matching = data.get("attributes", {}).get("matchingAttributes", {})
        attrs = {**scope, **matching.get(field, {})}
        if args.attr_file:
            text = (
                need_yaml().safe_dump(attrs, sort_keys=False)
                if not args.attr_file.endswith(".json")
                else json.dumps(attrs, indent=2)
            )
            Path(args.attr_file).write_text(text)
            print(f"wrote {noun} of {_where(scope)} to {args.attr_file}")
            return 0
        if args.output == "table":
            print(json.dumps(attrs, indent=2))
        else:
            emit(data, args.output, [], [])
        return 0
    if args.verb == "delete":
        client.call(remote, _rpc("Delete", scope), {**scope, "resourceType": resource})
        print(f"deleted {noun} of {_where(scope)}")
        return 0
    values = {k: v for k, v in document.items() if k not in _SCOPE_KEYS}
    if not values:
        raise InputError(f"update {noun} needs --attrFile FILE with the attribute's fields")
    attributes = {**scope, "matchingAttributes": {field: values}}
    client.call(remote, _rpc("Update", scope), {"attributes": attributes})
    print(f"updated {noun} of {_where(scope)}")
    return 0


def _where(scope: Json) -> str:
    where = f"{scope['project']}/{scope['domain']}"
    return f"{where} workflow {scope['workflow']}" if "workflow" in scope else where
