"""Conditionals inside subworkflows called from conditionals (test_nested_conditionals.py).

`make()` builds fresh workflow objects each time, so a test decides which one is traced first
(a subworkflow first traced inside a branch of its caller, or outside it); the module-level
ones are what `alula package nested_samples.py` serializes.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from alula import conditional, dynamic, task, workflow

# Holds each of two dynamic tasks in the middle of its trace until the other one is there too,
# so that they trace at the same time (on the local runner's threads); then the one that began
# first goes on first, while the other's trace is still open.
_MEET = threading.Barrier(2)
_ARRIVALS = itertools.count()


@task
def double(x: int) -> int:
    return 2 * x


@task
def neg(x: int) -> int:
    return -x


@task
def inc(x: int) -> int:
    return x + 1


def make() -> dict[str, Any]:
    @workflow
    def sub1(x: int) -> int:
        return conditional("s1").if_(x > 0).then(double(x=x)).else_().then(neg(x=x))

    @workflow
    def sub2(x: int) -> int:
        y = inc(x=x)
        return conditional("s2").if_(y > 5).then(sub1(x=y)).else_().then(neg(x=y))

    @workflow
    def top3(x: int) -> int:
        # Depth 3: a conditional whose cases call subworkflows with conditionals that call
        # subworkflows with conditionals.
        return conditional("t3").if_(x > 0).then(sub2(x=x)).else_().then(sub1(x=x))

    @workflow
    def plain(x: int) -> int:
        a = sub1(x=x)
        return conditional("p").if_(a > 3).then(inc(x=a)).else_().then(sub1(x=a))

    @workflow
    def same(x: int) -> int:
        # A conditional as the case of another, in one workflow.
        return (
            conditional("o")
            .if_(x > 0)
            .then(conditional("i").if_(x > 5).then(sub1(x=x)).else_().then(inc(x=x)))
            .else_()
            .then(neg(x=x))
        )

    @dynamic
    def dyn(x: int) -> int:
        a = double(x=x)
        second = next(_ARRIVALS) % 2
        try:
            _MEET.wait(timeout=5)
        except threading.BrokenBarrierError:
            _MEET.reset()
        if second:
            time.sleep(0.2)
        return sub1(x=a)

    @workflow
    def twins(x: int) -> int:
        a = dyn(x=x)
        b = dyn(x=x)
        return conditional("tw").if_(a > 0).then(sub2(x=b)).else_().then(sub1(x=b))

    return {
        "sub1": sub1,
        "sub2": sub2,
        "top3": top3,
        "plain": plain,
        "same": same,
        "twins": twins,
    }


def expected(name: str, x: int) -> int:
    """What each workflow computes, in plain Python."""

    def sub1(x: int) -> int:
        return 2 * x if x > 0 else -x

    def sub2(x: int) -> int:
        y = x + 1
        return sub1(y) if y > 5 else -y

    if name == "sub1":
        return sub1(x)
    if name == "sub2":
        return sub2(x)
    if name == "top3":
        return sub2(x) if x > 0 else sub1(x)
    if name == "plain":
        a = sub1(x)
        return a + 1 if a > 3 else sub1(a)
    if name == "twins":
        a = sub1(2 * x)
        return sub2(a) if a > 0 else sub1(a)
    assert name == "same"
    return (sub1(x) if x > 5 else x + 1) if x > 0 else -x


_wfs = make()
# The outer workflows first: their subworkflows are first traced inside their branches.
top3 = _wfs["top3"]
same = _wfs["same"]
plain = _wfs["plain"]
sub2 = _wfs["sub2"]
sub1 = _wfs["sub1"]
