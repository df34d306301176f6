"""The Rust compiler (through alula._native) on real flytekit output: every sample workflow
must compile, with the sentinel nodes wired and the connection sets consistent."""

from __future__ import annotations

import pytest
from corpus import serialized_entities
from flyteidl.admin import launch_plan_pb2, task_pb2, workflow_pb2
from flyteidl.core import compiler_pb2, identifier_pb2
from flyteidl.core import workflow_pb2 as core_workflow_pb2

from alula import _native


def _key(i: identifier_pb2.Identifier) -> tuple[str, str, str, str]:
    return (i.project, i.domain, i.name, i.version)


class Entities:
    """Workflows, tasks and launch plans that flytekit serialized from the samples."""

    def __init__(self) -> None:
        messages = [s.message for s in serialized_entities()]
        self.workflows = [m for m in messages if isinstance(m, workflow_pb2.WorkflowSpec)]
        self.tasks = [m.template for m in messages if isinstance(m, task_pb2.TaskSpec)]
        interfaces = {_key(w.template.id): w.template.interface for w in self.workflows}
        self.launch_plans = []
        for m in messages:
            if isinstance(m, launch_plan_pb2.LaunchPlan):
                # What admin computes at registration: the closure's expected inputs/outputs.
                lp = launch_plan_pb2.LaunchPlan()
                lp.CopyFrom(m)
                lp.closure.expected_inputs.CopyFrom(m.spec.default_inputs)
                lp.closure.expected_outputs.CopyFrom(interfaces[_key(m.spec.workflow_id)].outputs)
                self.launch_plans.append(lp)

    def compile(self, spec: workflow_pb2.WorkflowSpec) -> compiler_pb2.CompiledWorkflowClosure:
        out = self.compile_bytes(spec.template, list(spec.sub_workflows))
        return compiler_pb2.CompiledWorkflowClosure.FromString(out)

    def compile_bytes(
        self,
        template: core_workflow_pb2.WorkflowTemplate,
        subworkflows: list[core_workflow_pb2.WorkflowTemplate],
    ) -> bytes:
        return _native.compile_workflow(
            template.SerializeToString(),
            [w.SerializeToString() for w in subworkflows],
            [t.SerializeToString() for t in self.tasks],
            [lp.SerializeToString() for lp in self.launch_plans],
        )


@pytest.fixture(scope="module")
def entities() -> Entities:
    return Entities()


def _assert_sane(compiled: compiler_pb2.CompiledWorkflow) -> None:
    template = compiled.template
    ids = [n.id for n in template.nodes]
    assert ids == sorted(ids), "nodes are sorted by id"
    assert "start-node" in ids and "end-node" in ids
    down = {k: list(v.ids) for k, v in compiled.connections.downstream.items()}
    up = {k: list(v.ids) for k, v in compiled.connections.upstream.items()}
    for src, targets in down.items():
        for t in targets:
            assert src in up.get(t, []), f"edge {src}->{t} missing from upstream"
    # Every node is reachable from start-node, and end-node is reached.
    seen = {"start-node"}
    frontier = ["start-node"]
    while frontier:
        for nxt in down.get(frontier.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(ids), f"unreachable: {set(ids) - seen}"
    assert "end-node" in up and up["end-node"], "end-node has upstream nodes"
    assert "start-node" not in up
    end = next(n for n in template.nodes if n.id == "end-node")
    assert [b.var for b in end.inputs] == [b.var for b in template.outputs]


def test_every_sample_compiles(entities: Entities) -> None:
    assert len(entities.workflows) >= 17
    for spec in entities.workflows:
        closure = entities.compile(spec)
        name = spec.template.id.name
        assert closure.primary.template.id == spec.template.id, name
        _assert_sane(closure.primary)
        assert {_key(s.template.id) for s in closure.sub_workflows} == {
            _key(s.id) for s in spec.sub_workflows
        }, name
        for sub in closure.sub_workflows:
            _assert_sane(sub)
        task_ids = [_key(t.template.id) for t in closure.tasks]
        assert task_ids == sorted(set(task_ids)), "tasks are deduplicated and sorted"


def test_compiling_twice_gives_identical_bytes(entities: Entities) -> None:
    for spec in entities.workflows:
        subs = list(spec.sub_workflows)
        first = entities.compile_bytes(spec.template, subs)
        assert entities.compile_bytes(spec.template, subs) == first


def test_branch_then_nodes_are_renamed(entities: Entities) -> None:
    spec = next(w for w in entities.workflows if w.template.id.name.endswith(".branch_wf"))
    closure = entities.compile(spec)
    branch = next(n for n in closure.primary.template.nodes if n.HasField("branch_node"))
    then_id = branch.branch_node.if_else.case.then_node.id
    assert then_id.startswith(branch.id + "-"), then_id


def test_every_task_compiles(entities: Entities) -> None:
    for t in entities.tasks:
        compiled = compiler_pb2.CompiledTask.FromString(_native.compile_task(t.SerializeToString()))
        assert compiled.template == t


def test_missing_task_is_reported_with_node_id(entities: Entities) -> None:
    spec = next(w for w in entities.workflows if w.template.id.name.endswith(".shapes_wf"))
    with pytest.raises(_native.CompileError) as info:
        _native.compile_workflow(spec.template.SerializeToString(), [], [], [])
    err = info.value
    assert isinstance(err, ValueError)
    assert str(err.args[0]).startswith("Collected Errors: 2")
    codes = {(code, node) for code, node, _ in err.errors}
    assert codes == {("TaskReferenceNotFound", "n0"), ("TaskReferenceNotFound", "n1")}
    assert all("make_shape" in d or "area" in d for _, _, d in err.errors)


def test_type_mismatch_names_node_and_types(entities: Entities) -> None:
    spec = next(w for w in entities.workflows if w.template.id.name.endswith(".shapes_wf"))
    template = core_workflow_pb2.WorkflowTemplate()
    template.CopyFrom(spec.template)
    # shapes_wf(name: str): declare the input as an int so the task's `name: str` mismatches.
    template.interface.inputs.variables["name"].type.simple = 1
    with pytest.raises(_native.CompileError) as info:
        entities.compile_bytes(template, [])
    [(code, node, description)] = info.value.errors
    assert (code, node) == ("MismatchingTypes", "n0")
    assert "[int]" in description and "[str]" in description


def test_undecodable_bytes_name_the_message() -> None:
    with pytest.raises(ValueError, match=r"primary: not a valid flyteidl.core.WorkflowTemplate"):
        _native.compile_workflow(b"\xff\xff", [], [], [])
    with pytest.raises(ValueError, match=r"template: not a valid flyteidl.core.TaskTemplate"):
        _native.compile_task(b"\x0a\x05")


def test_launch_plan_without_closure_is_rejected(entities: Entities) -> None:
    lp = launch_plan_pb2.LaunchPlan()
    lp.id.name = "lp"
    spec = entities.workflows[0]
    with pytest.raises(ValueError, match=r"launch_plans\[0\]: launch plan .* has no closure"):
        _native.compile_workflow(
            spec.template.SerializeToString(), [], [], [lp.SerializeToString()]
        )
