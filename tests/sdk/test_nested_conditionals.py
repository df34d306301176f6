"""Conditionals nested through subworkflows (a subworkflow with a conditional called inside a
branch of its caller's conditional, or outside it), to depth 3: traced, run locally with both
outcomes at every level, serialized into closures the Rust compiler accepts, and compared with
the same workflows written in flytekit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nested_samples as ns
import pytest

from alula import SerializationSettings, conditional, workflow
from alula.core import trace
from alula.core.errors import WorkflowAuthoringError
from alula.core.serialize import WORKFLOW, serialize

HERE = Path(__file__).resolve().parent
INPUTS = [-3, 0, 2, 7]  # every case of every level is taken by one of these
SHAPES = ["top3", "plain", "same", "sub2"]


@pytest.mark.parametrize("name", SHAPES)
def test_local_runs_take_every_branch(name: str) -> None:
    wf = ns.make()[name]  # fresh: its subworkflows are first traced where it calls them
    for x in INPUTS:
        assert wf(x=x) == ns.expected(name, x), f"{name}(x={x})"
    assert trace.tracing() is None


def test_subworkflow_traced_outside_a_branch_then_inside_another() -> None:
    wfs = ns.make()
    assert wfs["plain"](x=2) == ns.expected("plain", 2)
    assert wfs["top3"](x=7) == ns.expected("top3", 7)
    assert wfs["sub1"](x=-1) == 1


def test_dynamic_tasks_tracing_at_once_on_threads_keep_their_nodes_apart() -> None:
    from alula.core.local import run

    wf = ns.make()["twins"]
    for x in [-3, 2]:
        assert run(wf, x=x, parallelism=2) == ns.expected("twins", x), f"twins(x={x})"


def test_serialized_closures_compile() -> None:
    wfs = ns.make()
    settings = SerializationSettings("p", "d", "v", "img")
    names = {s.name for s in serialize([wfs[n] for n in SHAPES], settings) if s.kind == WORKFLOW}
    assert names == {wfs[n].name for n in ["sub1", "sub2", "top3", "plain", "same"]}


def test_alula_package_of_the_module(tmp_path: Path) -> None:
    out = tmp_path / "nested.tgz"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "alula"), "package", str(HERE / "nested_samples.py")]
        + ["-p", "p", "-d", "d", "-v", "v", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(HERE)},
    )
    assert result.returncode == 0, result.stderr
    for name in ["sub1", "sub2", "top3", "plain", "same"]:
        assert f"_nested_samples.{name}_2.pb" in result.stdout  # 2: a workflow


def test_an_error_inside_nested_conditionals_is_reported_and_leaves_no_state() -> None:
    @workflow
    def broken(x: int) -> int:
        # `and` on conditions is an authoring error raised while the conditional is open.
        return conditional("b").if_((x > 0) and (x < 5)).then(ns.double(x=x)).else_().then(x)

    @workflow
    def caller(x: int) -> int:
        return conditional("c").if_(x > 0).then(broken(x=x)).else_().then(ns.neg(x=x))

    with pytest.raises(WorkflowAuthoringError, match="combine them with `&` and `|`"):
        caller.trace()
    assert trace.tracing() is None
    # Nothing left open: the next workflow traces and runs as if nothing had happened.
    assert ns.make()["top3"](x=2) == ns.expected("top3", 2)


def test_an_unfinished_conditional_is_named() -> None:
    @workflow
    def open_ended(x: int) -> int:
        return conditional("half").if_(x > 0).then(ns.double(x=x))  # type: ignore[no-any-return]

    with pytest.raises(WorkflowAuthoringError, match=r"conditional 'half' \(at .*\) has no"):
        open_ended.trace()
    assert trace.tracing() is None


def flytekit_workflows() -> dict[str, Any]:
    from flytekit import conditional as fconditional
    from flytekit import task as ftask
    from flytekit import workflow as fworkflow

    @ftask
    def double(x: int) -> int:
        return 2 * x

    @ftask
    def neg(x: int) -> int:
        return -x

    @ftask
    def inc(x: int) -> int:
        return x + 1

    @fworkflow
    def sub1(x: int) -> int:
        return fconditional("s1").if_(x > 0).then(double(x=x)).else_().then(neg(x=x))

    @fworkflow
    def sub2(x: int) -> int:
        y = inc(x=x)
        return fconditional("s2").if_(y > 5).then(sub1(x=y)).else_().then(neg(x=y))

    @fworkflow
    def top3(x: int) -> int:
        return fconditional("t3").if_(x > 0).then(sub2(x=x)).else_().then(sub1(x=x))

    @fworkflow
    def plain(x: int) -> int:
        a = sub1(x=x)
        return fconditional("p").if_(a > 3).then(inc(x=a)).else_().then(sub1(x=a))

    return {"top3": top3, "plain": plain, "sub2": sub2}


def test_same_outputs_as_flytekit() -> None:
    # flytekit is in tests/requirements.txt: the oracle is always there.
    theirs = flytekit_workflows()
    ours = ns.make()
    for name, wf in theirs.items():
        for x in INPUTS:
            assert ours[name](x=x) == wf(x=x), f"{name}(x={x})"
