"""Authoring composes at any depth and in any order: every sequence of up to three wrappers
(a conditional, a subworkflow, a dynamic workflow, a launch-plan node) around one task, built
by `build` and checked against `expected`, a reference interpreter of the same sequence.

Used by tests/sdk/test_compose_matrix.py (local runs) and by
tests/e2e/test_interactive_remote.py, which runs this file's source as `__main__` (as a notebook
would define it) and executes the same workflows remotely.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from alula import LaunchPlan, conditional, dynamic, task, workflow

KINDS = ("cond", "sub", "dyn", "lp")


@task
def inc(x: int) -> int:
    return x + 1


@task
def neg(x: int) -> int:
    return -x


@task
def add(x: int, k: int) -> int:
    return x + k


def combinations(max_depth: int = 3) -> list[tuple[str, ...]]:
    """Every sequence of wrapper kinds of length 1..max_depth, outermost first."""
    return [
        combo
        for depth in range(1, max_depth + 1)
        for combo in itertools.product(KINDS, repeat=depth)
    ]


def combo_name(combo: tuple[str, ...]) -> str:
    return "c_" + "_".join(combo)


def expected(combo: tuple[str, ...], x: int) -> int:
    """What the workflow of `combo` returns for `x`: level i from the inside adds 10**(i+1);
    a conditional takes its `neg` case for a negative input instead of going inside."""
    if not combo:
        return x + 1
    outer, inner = combo[0], combo[1:]
    k = 10 ** (len(combo))
    if outer == "cond" and x < 0:
        return -x + k
    return expected(inner, x) + k


def _named(fn: Callable[..., Any], name: str, module: str | None) -> Callable[..., Any]:
    """`fn` renamed (entities are named after their function), in `module` when given."""
    fn.__name__ = fn.__qualname__ = name
    if module is not None:
        fn.__module__ = module
    return fn


def _wrap(kind: str, inner: Any, depth: int, name: str, module: str | None) -> Any:
    k = 10**depth
    if kind == "cond":

        def cond_body(x: int) -> int:
            y = conditional(f"if{depth}").if_(x < 0).then(neg(x=x)).else_().then(inner(x=x))
            return add(x=y, k=k)

        return workflow(_named(cond_body, name, module))
    if kind == "sub":

        def sub_body(x: int) -> int:
            return add(x=inner(x=x), k=k)

        return workflow(_named(sub_body, name, module))
    if kind == "dyn":

        def dyn_body(x: int) -> int:
            return add(x=inner(x=x), k=k)

        return dynamic(_named(dyn_body, name, module))

    def lp_body(x: int) -> int:
        return add(x=inner(x=x), k=k)

    wf = workflow(_named(lp_body, f"{name}_wf", module))
    return LaunchPlan.get_or_create(wf, name=f"{wf.module}.{name}")


_BUILT: dict[tuple[tuple[str, ...], str | None], Any] = {}


def build(combo: tuple[str, ...], module: str | None = None) -> Any:
    """The workflow of `combo`: the wrappers around `inc`, inside out, under a top workflow
    (a dynamic task or a launch plan cannot be executed as the whole thing by itself). Built
    once: launch plans are named, and a name may stand for one plan only."""
    if (combo, module) not in _BUILT:
        _BUILT[(combo, module)] = _build(combo, module)
    return _BUILT[(combo, module)]


def _build(combo: tuple[str, ...], module: str | None) -> Any:
    entity: Any = inc
    base = combo_name(combo)
    for depth, kind in enumerate(reversed(combo), start=1):
        entity = _wrap(kind, entity, depth, f"{base}_{depth}", module)
    top = entity

    def top_body(x: int) -> int:
        return top(x=x)  # type: ignore[no-any-return]

    return workflow(_named(top_body, base, module))
