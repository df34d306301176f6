"""Conditionals, subworkflows, dynamic workflows and launch-plan nodes composed in every order to
depth 3 (compose_matrix.py generates them), run locally and serialized into closures the Rust
compiler accepts. The same matrix runs remotely in tests/e2e/test_interactive_remote.py."""

from __future__ import annotations

import compose_matrix as cm
import pytest

from alula.core import trace
from alula.core.launch_plan import LaunchPlan
from alula.core.serialize import LAUNCH_PLAN, WORKFLOW, serialize
from alula.core.settings import SerializationSettings

COMBOS = cm.combinations(3)
SETTINGS = SerializationSettings("p", "d", "v1", "img:1")


def test_the_matrix_is_every_order_to_depth_3() -> None:
    assert len(COMBOS) == 4 + 4**2 + 4**3
    assert len(set(COMBOS)) == len(COMBOS)
    assert ("cond", "sub", "cond") in COMBOS and ("lp", "dyn", "lp") in COMBOS


@pytest.mark.parametrize("combo", COMBOS, ids=cm.combo_name)
def test_runs_locally(combo: tuple[str, ...]) -> None:
    wf = cm.build(combo)
    for x in (3, -2):
        assert wf(x=x) == cm.expected(combo, x), f"{combo} x={x}"
    assert trace.tracing() is None


@pytest.mark.parametrize("combo", [c for c in COMBOS if len(c) == 3], ids=cm.combo_name)
def test_serializes_and_compiles(combo: tuple[str, ...]) -> None:
    wf = cm.build(combo)
    out = serialize([wf, LaunchPlan.get_or_create(wf)], SETTINGS)
    kinds = [(s.kind, s.name) for s in out]
    assert (WORKFLOW, wf.name) in kinds and (LAUNCH_PLAN, wf.name) in kinds
    # Every launch-plan level outside a dynamic one is a launch plan of its own (those inside
    # are created when the dynamic task runs).
    static = combo[: combo.index("dyn")] if "dyn" in combo else combo
    plans = {name for kind, name in kinds if kind == LAUNCH_PLAN}
    assert len(plans) == 1 + static.count("lp")
