"""alula's serialized entities equal flytekit's for the same workflows.

Both sides serialize their twin sample modules (`flytekit_samples*.py` with flytekit's
`get_serializable`, `alula_samples*.py` with alula); our bytes are decoded with flyteidl's own
classes and compared as protobuf JSON, entity by entity. The only tolerated differences are
listed once in KNOWN_DIFFERENCES, and each is applied by exactly one normalisation below.
"""

from __future__ import annotations

import json
import os
import sys
from collections import OrderedDict
from typing import Any

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

PROJECT, DOMAIN, VERSION, IMAGE = "flytesnacks", "development", "v1", "ghcr.io/acme/app:v1"
ENV = {"FLYTE_SDK_LOGGING_LEVEL": "20"}

KNOWN_DIFFERENCES = {
    "module": "the sample modules are named alula_samples* instead of flytekit_samples*",
    "entrypoint": "containers run alula-execute / alula-map-execute with alula's resolvers, "
    "in the same argument layout as pyflyte-execute / pyflyte-map-execute",
    "runtime version": "TaskMetadata.runtime.version is alula's version, not flytekit's",
    "launch plan closure": "alula fills closure.expected_inputs/outputs, flytekit leaves them "
    "for admin to fill",
    "pickle uri": "pickled constants are uploaded to a fresh random path on each side",
    "dynamic settings": "a dynamic task's _F_SS_C variable carries alula's serialization "
    "settings (its runtime reads them), not flytekit's",
    "upstream order": "flytekit orders upstreamNodeIds in set iteration order, which varies "
    "between runs; they are compared as sets",
}

ENTRYPOINT_TWINS = {
    "pyflyte-execute": "alula-execute",
    "pyflyte-map-execute": "alula-map-execute",
    "flytekit.core.python_auto_container.default_task_resolver": (
        "alula.core.resolver.default_task_resolver"
    ),
    "flytekit.core.array_node_map_task.ArrayNodeMapTaskResolver": (
        "alula.core.map_task.map_task_resolver"
    ),
}


def _flytekit_entities() -> dict[str, dict[str, Any]]:
    import flytekit_samples
    import flytekit_samples_extra
    from flytekit import LaunchPlan
    from flytekit.configuration import Image, ImageConfig, SerializationSettings
    from flytekit.tools.translator import get_serializable
    from google.protobuf.json_format import MessageToDict

    name, tag = IMAGE.rsplit(":", 1)
    settings = SerializationSettings(
        project=PROJECT,
        domain=DOMAIN,
        version=VERSION,
        image_config=ImageConfig(default_image=Image(name="default", fqn=name, tag=tag)),
        env=ENV,
    )
    entity_map: OrderedDict[Any, Any] = OrderedDict()
    workflows = flytekit_samples.WORKFLOWS + flytekit_samples_extra.WORKFLOWS
    for entity in [*workflows, *flytekit_samples.LAUNCH_PLANS]:
        get_serializable(entity_map, settings, entity)
    for wf in workflows:
        get_serializable(entity_map, settings, LaunchPlan.get_or_create(wf))
    out = {}
    for model in entity_map.values():
        if not hasattr(model, "to_flyte_idl"):  # reference entities are not serialized
            continue
        idl = model.to_flyte_idl()
        kind = type(idl).__name__
        if kind in ("TaskSpec", "WorkflowSpec", "LaunchPlan"):
            message = MessageToDict(idl)
            out[f"{kind}:{_entity_name(kind, message)}"] = message
    return out


def _entity_name(kind: str, message: dict[str, Any]) -> str:
    ident = message["id"] if kind == "LaunchPlan" else message["template"]["id"]
    return str(ident["name"])


def _alula_entities() -> dict[str, dict[str, Any]]:
    import alula_samples
    import alula_samples_extra
    from flyteidl.admin import launch_plan_pb2, task_pb2, workflow_pb2
    from google.protobuf.json_format import MessageToDict

    from alula import LaunchPlan, SerializationSettings
    from alula.core.serialize import serialize

    classes = {
        1: task_pb2.TaskSpec,
        2: workflow_pb2.WorkflowSpec,
        3: launch_plan_pb2.LaunchPlan,
    }
    settings = SerializationSettings(PROJECT, DOMAIN, VERSION, IMAGE, env=ENV)
    workflows = alula_samples.WORKFLOWS + alula_samples_extra.WORKFLOWS
    entities = [*workflows, *alula_samples.LAUNCH_PLANS]
    entities += [LaunchPlan.get_or_create(wf) for wf in workflows]
    out = {}
    for s in serialize(entities, settings):
        message = MessageToDict(classes[s.kind].FromString(s.to_bytes()))
        kind = classes[s.kind].__name__
        out[f"{kind}:{_entity_name(kind, message)}"] = message
    return out


def _rename_module(flytekit: dict[str, Any]) -> dict[str, Any]:
    """KNOWN_DIFFERENCES["module"]."""
    text = json.dumps(flytekit).replace("flytekit_samples", "alula_samples")
    return dict(json.loads(text))


def _twin_entrypoint(message: dict[str, Any]) -> None:
    """KNOWN_DIFFERENCES["entrypoint"]: flytekit's args, with alula's entrypoint words."""
    container = message.get("template", {}).get("container")
    if container:
        container["args"] = [ENTRYPOINT_TWINS.get(a, a) for a in container["args"]]


def _dynamic_settings(flytekit: dict[str, Any], ours: dict[str, Any]) -> None:
    """KNOWN_DIFFERENCES["dynamic settings"]: ours must decode to the settings used."""
    from alula import SerializationSettings

    def settings_var(message: dict[str, Any]) -> dict[str, str] | None:
        env = message.get("template", {}).get("container", {}).get("env", [])
        return next((e for e in env if e["key"] == SerializationSettings.ENV_VAR), None)

    theirs, mine = settings_var(flytekit), settings_var(ours)
    if theirs is not None and mine is not None:
        decoded = SerializationSettings.from_compressed(mine["value"])
        assert (decoded.project, decoded.domain, decoded.version) == (PROJECT, DOMAIN, VERSION)
        assert decoded.image == IMAGE and decoded.env == ENV
        mine["value"] = theirs["value"]


def _runtime_version(flytekit: dict[str, Any], ours: dict[str, Any]) -> None:
    """KNOWN_DIFFERENCES["runtime version"]."""
    if "template" in ours and "runtime" in ours["template"].get("metadata", {}):
        from alula import __version__

        assert ours["template"]["metadata"]["runtime"]["version"] == __version__
        ours["template"]["metadata"]["runtime"]["version"] = flytekit["template"]["metadata"][
            "runtime"
        ]["version"]


def _launch_plan_closure(flytekit: dict[str, Any], ours: dict[str, Any]) -> None:
    """KNOWN_DIFFERENCES["launch plan closure"]: ours must hold the interface admin derives."""
    if "closure" in ours:
        closure = ours.pop("closure")
        assert closure.get("expectedInputs", {}) == ours["spec"].get("defaultInputs", {})
        assert "expectedOutputs" in closure
        flytekit.pop("closure")


def _sort_upstream(value: Any) -> Any:
    """KNOWN_DIFFERENCES["upstream order"]."""
    if isinstance(value, dict):
        if "upstreamNodeIds" in value:
            value["upstreamNodeIds"] = sorted(value["upstreamNodeIds"])
        for v in value.values():
            _sort_upstream(v)
    elif isinstance(value, list):
        for v in value:
            _sort_upstream(v)
    return value


def _blank_pickle_uris(value: Any) -> Any:
    """KNOWN_DIFFERENCES["pickle uri"]."""
    if isinstance(value, dict):
        if "blob" in value and "uri" in value["blob"]:
            value["blob"]["uri"] = "<uploaded>"
        for v in value.values():
            _blank_pickle_uris(v)
    elif isinstance(value, list):
        for v in value:
            _blank_pickle_uris(v)
    return value


@pytest.fixture(scope="module")
def both() -> tuple[dict[str, Any], dict[str, Any]]:
    flytekit = {k: _rename_module(v) for k, v in _rename_module(_flytekit_entities()).items()}
    return flytekit, _alula_entities()


def test_same_entities(both: tuple[dict[str, Any], dict[str, Any]]) -> None:
    flytekit, ours = both
    assert sorted(ours) == sorted(flytekit)
    assert len(ours) > 40


def test_each_entity_equal(both: tuple[dict[str, Any], dict[str, Any]]) -> None:
    flytekit, ours = both
    mismatched = []
    for key in sorted(flytekit.keys() & ours.keys()):
        expected, actual = flytekit[key], ours[key]
        _twin_entrypoint(expected)
        _runtime_version(expected, actual)
        _dynamic_settings(expected, actual)
        _launch_plan_closure(expected, actual)
        for side in (expected, actual):
            _blank_pickle_uris(side)
            _sort_upstream(side)
        mismatched += [f"{key}: {d}" for d in _diff(expected, actual)]
    assert not mismatched, "\n".join(mismatched)


def _diff(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where two JSON values differ, as `path: flytekit X, alula Y` lines."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return [
            d
            for k in sorted(expected.keys() | actual.keys())
            for d in _diff(expected.get(k, "<absent>"), actual.get(k, "<absent>"), f"{path}.{k}")
        ]
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [
            d
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for d in _diff(e, a, f"{path}[{i}]")
        ]
    if expected != actual:
        return [f"{path}: flytekit {json.dumps(expected)}, alula {json.dumps(actual)}"]
    return []


def test_the_comparison_sees_a_changed_field(both: tuple[dict[str, Any], dict[str, Any]]) -> None:
    flytekit, ours = both
    key = "WorkflowSpec:alula_samples.overrides_wf"
    changed = json.loads(json.dumps(ours[key]))
    changed["template"]["nodes"][0]["metadata"]["retries"] = {"retries": 4}
    assert _diff(flytekit[key], changed) == [
        ".template.nodes[0].metadata.retries.retries: flytekit 5, alula 4"
    ]
