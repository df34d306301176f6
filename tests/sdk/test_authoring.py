"""Tracing workflows into nodes: ids, call sites, bindings, overrides, conditionals, map tasks."""

from __future__ import annotations

import functools
import typing
from datetime import timedelta

import pytest

from alula import (
    LaunchPlan,
    Resources,
    Secret,
    conditional,
    dynamic,
    map_task,
    sleep,
    task,
    wait_for_input,
    workflow,
)
from alula.core.trace import Node

HERE = __file__


def line_of(text: str) -> int:
    """The line of this file holding `text` (once)."""
    with open(HERE) as f:
        lines = [i for i, line in enumerate(f, 1) if text in line]
    assert len(lines) == 1, (text, lines)
    return lines[0]


@task
def double(x: int) -> int:
    return 2 * x


@task
def add(x: int, y: int = 1) -> int:
    return x + y


@task(retries=2, timeout=timedelta(seconds=30), interruptible=True)
def careful(x: int) -> int:
    return x


class Pair(typing.NamedTuple):
    low: int
    count: int


@task
def split(x: int) -> Pair:
    return Pair(x // 2, x % 2)


def test_task_called_outside_a_workflow_runs_the_function() -> None:
    assert double(x=4) == 8
    assert add(2) == 3


def test_nodes_are_numbered_in_call_order_with_call_sites() -> None:
    @workflow
    def wf(x: int) -> int:
        a = double(x=x)  # site-a
        b = add(x=a, y=x)  # site-b
        return double(x=b)  # site-c

    ids = [n.id for n in wf.nodes]
    assert ids == ["n0", "n1", "n2"]
    sites = [n.site for n in wf.nodes]
    assert sites == [f"{HERE}:{line_of(f'# site-{c}')}" for c in "abc"]
    assert [u.id for u in wf.nodes[2].upstream] == ["n1"]
    assert wf.nodes[1].bindings == [
        ("x", {"promise": {"nodeId": "n0", "var": "o0"}}),
        ("y", {"promise": {"var": "x"}}),
    ]
    assert wf.trace().outputs == [("o0", {"promise": {"nodeId": "n2", "var": "o0"}})]


def test_defaults_are_bound_as_constants() -> None:
    @workflow
    def wf(x: int) -> int:
        return add(x=x)

    assert wf.nodes[0].bindings[1] == ("y", {"scalar": {"primitive": {"integer": "1"}}})


def test_named_tuple_outputs_read_as_attributes() -> None:
    @workflow
    def wf(x: int) -> tuple[int, int]:
        p = split(x=x)
        return p.low, p.count

    outputs = dict(wf.trace().outputs)
    assert outputs["o1"] == {"promise": {"nodeId": "n0", "var": "count"}}
    assert wf.interface.to_json()["outputs"]["variables"].keys() == {"o0", "o1"}
    assert split.interface.to_json()["outputs"]["variables"].keys() == {"low", "count"}


def test_ordering_with_rshift() -> None:
    @workflow
    def wf(x: int) -> int:
        a = double(x=x)
        b = double(x=x)
        a >> b
        return b

    assert [u.id for u in wf.nodes[1].upstream] == ["n0"]


def test_overrides_change_metadata_and_resources() -> None:
    @workflow
    def wf(x: int) -> int:
        return careful(x=x).with_overrides(
            name="renamed",
            retries=5,
            timeout=90,
            cache=True,
            cache_version="7",
            requests=Resources(cpu="2", mem="1Gi"),
            limits=Resources(gpu="1"),
            container_image="img:2",
        )

    node = wf.nodes[0]
    assert node.metadata == {
        "name": "renamed",
        "timeout": "90s",
        "retries": {"retries": 5},
        "interruptible": True,
        "cacheable": True,
        "cacheVersion": "7",
    }
    assert node.overrides == {
        "resources": {
            "requests": [{"name": "CPU", "value": "2"}, {"name": "MEMORY", "value": "1Gi"}],
            "limits": [{"name": "GPU", "value": "1"}],
        },
        "containerImage": "img:2",
    }


def test_conditional_numbers_its_cases_and_binds_condition_inputs() -> None:
    @workflow
    def wf(x: int) -> int:
        a = double(x=x)
        return (
            conditional("c")
            .if_((a > 3) & (x != 0))
            .then(add(x=a))
            .elif_(a.is_none())
            .then(double(x=x))
            .else_()
            .fail("no")
        )

    (first, branch) = wf.nodes
    assert branch.id == "n1"
    assert [n.id for n in branch.entity.inner_nodes()] == ["n0", "n1"]
    assert [v for v, _ in branch.bindings] == [".x", "n0.o0"]
    assert branch.upstream == [first]
    from alula import SerializationSettings

    settings = SerializationSettings("p", "d", "v", "img")
    if_else = branch.entity.target_json(branch, settings)["branchNode"]["ifElse"]
    condition = if_else["case"]["condition"]["conjunction"]
    assert condition["leftExpression"]["comparison"]["operator"] == "GT"
    assert condition["rightExpression"]["comparison"]["rightValue"] == {
        "primitive": {"integer": "0"}
    }
    other = if_else["other"][0]["condition"]["comparison"]
    assert other["rightValue"] == {"scalar": {"noneType": {}}}
    assert if_else["error"] == {"failedNodeId": "c", "message": "no"}


def test_map_task_of_a_partial_binds_the_fixed_input() -> None:
    mapped = map_task(functools.partial(add, y=5), concurrency=3)

    @workflow
    def wf(xs: list[int]) -> list[int]:
        return mapped(x=xs)

    node: Node = wf.nodes[0]
    assert node.bindings == [
        ("x", {"promise": {"var": "xs"}}),
        ("y", {"scalar": {"primitive": {"integer": "5"}}}),
    ]
    assert mapped.interface.inputs == {"x": list[int], "y": int}
    assert mapped.name.startswith(f"{add.module}.map_add_")
    assert mapped.name.endswith("-arraynode")
    ratio = map_task(double, min_success_ratio=0.5)
    assert ratio.interface.outputs == {"o0": list[typing.Optional[int]]}  # noqa: UP045
    assert ratio.name != map_task(double).name


def test_gates_and_launch_plans() -> None:
    @workflow
    def inner(x: int = 2) -> int:
        return double(x=x)

    lp = LaunchPlan.get_or_create(inner, name="inner_lp_test", fixed_inputs={"x": 3})
    assert LaunchPlan.get_or_create(inner, name="inner_lp_test", fixed_inputs={"x": 3}) is lp
    assert lp.interface.inputs == {}

    @workflow
    def wf(x: int) -> int:
        s = sleep(timedelta(seconds=1))
        v = wait_for_input("v", timeout=timedelta(minutes=1), expected_type=int)
        s >> v
        r = lp()
        return add(x=v, y=r)

    sleeper, signal, call, _ = wf.nodes
    assert sleeper.metadata["name"] == "sleep-gate"
    assert signal.upstream == [sleeper]
    assert call.metadata == {"name": "inner", "retries": {}, "interruptible": False}


def test_task_options_reach_the_template() -> None:
    @task(
        cache=True,
        cache_version="3",
        retries=1,
        secret_requests=[Secret(group="g", key="k")],
        environment={"A": "1"},
        requests=Resources(cpu="1", ephemeral_storage="1Gi"),
    )
    def opts(x: int) -> int:
        return x

    from alula import SerializationSettings

    template = opts.template_json(SerializationSettings("p", "d", "v", "img", {"B": "2"}), "0")
    assert template["metadata"]["discoverable"] is True
    assert template["metadata"]["discoveryVersion"] == "3"
    assert template["securityContext"] == {"secrets": [{"group": "g", "key": "k"}]}
    assert template["container"]["env"] == [
        {"key": "B", "value": "2"},
        {"key": "A", "value": "1"},
    ]
    assert template["container"]["resources"]["requests"][0]["name"] == "EPHEMERAL_STORAGE"
    assert template["container"]["args"][-4:] == ["task-module", opts.module, "task-name", "opts"]


def test_dynamic_runs_locally_and_carries_settings() -> None:
    @dynamic
    def fan(n: int) -> list[int]:
        return [double(x=i) for i in range(n)]

    assert fan(n=3) == [0, 2, 4]
    from alula import SerializationSettings

    settings = SerializationSettings("p", "d", "v", "img")
    env = fan.template_json(settings, "0")["container"]["env"]
    assert SerializationSettings.from_compressed(env[0]["value"]) == settings


def test_cli_package_writes_numbered_entities(tmp_path: typing.Any) -> None:
    import os
    import tarfile

    from alula.cli import main

    source = tmp_path / "pkg_wf.py"
    source.write_text(
        "from alula import task, workflow\n\n"
        "@task\ndef t(x: int) -> int:\n    return x\n\n"
        "@workflow\ndef wf(x: int = 1) -> int:\n    return t(x=x)\n"
    )
    out = tmp_path / "out.tgz"
    argv = ["package", "-p", "p", "-d", "d", "-v", "v1", "-o", str(out), str(source)]
    assert main(argv) == 0
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert names == ["0_pkg_wf.t_1.pb", "1_pkg_wf.wf_2.pb", "2_pkg_wf.wf_3.pb"]
    assert os.path.getsize(out) > 0


@pytest.mark.parametrize("module", ["alula_samples", "alula_samples_extra"])
def test_sample_workflows_trace(module: str) -> None:
    import importlib
    import os
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "..", "compat"))
    samples = importlib.import_module(module)
    assert all(wf.nodes for wf in samples.WORKFLOWS)
