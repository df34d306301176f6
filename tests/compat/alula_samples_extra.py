"""The workflows of `flytekit_samples_extra.py`, written against alula: only the imports differ."""

from __future__ import annotations

import functools
import typing
from datetime import timedelta

from alula import (
    Resources,
    Secret,
    WorkflowFailurePolicy,
    conditional,
    map_task,
    reference_launch_plan,
    reference_task,
    task,
    workflow,
)


@task(
    cache=True,
    cache_version="2",
    cache_ignore_input_vars=("seed",),
    timeout=30,
    container_image="ghcr.io/acme/other:v2",
    pod_template_name="gpu-pod",
    deprecated="use add instead",
    requests=Resources(cpu="500m", mem="1Gi", ephemeral_storage="2Gi"),
    secret_requests=[Secret(group="aws", key="token", mount_requirement=Secret.MountType.ENV_VAR)],
)
def old_add(x: int, seed: int = 0) -> int:
    return x + seed


class Stats(typing.NamedTuple):
    count: int
    label: str


@task
def stats(xs: list[int]) -> Stats:
    return Stats(len(xs), "n")


@reference_task(
    project="flytesnacks", domain="development", name="other.tasks.double", version="v7"
)
def double(x: int) -> int:
    return x  # the body of a reference entity never runs


@reference_launch_plan(
    project="flytesnacks", domain="development", name="other.lps.nightly", version="v7"
)
def nightly(x: int) -> int:
    return x  # the body of a reference entity never runs


@workflow(failure_policy=WorkflowFailurePolicy.FAIL_AFTER_EXECUTABLE_NODES_COMPLETE)
def options_wf(x: int, seed: int = 3) -> Stats:
    a = old_add(x=x, seed=seed).with_overrides(
        cache=False, container_image="ghcr.io/acme/third:v3", timeout=timedelta(minutes=2)
    )
    return stats(xs=[a, x])


@workflow
def reference_wf(x: int) -> int:
    a = double(x=x)
    return nightly(x=a)


@workflow
def nested_tuple_wf(xs: list[int]) -> tuple[int, str]:
    s = stats(xs=xs)
    return s.count, s.label


@task(retries=2, timeout=45, interruptible=False)
def inc(x: int, step: int = 1) -> int:
    return x + step


@task
def positive(x: int) -> bool:
    return x > 0


@workflow
def compare_wf(x: int, y: int) -> int:
    a = inc(x=x)
    return (
        conditional("cmp")
        .if_((a != y) & (x >= 1))
        .then(inc(x=a, step=2))
        .elif_(a < y)
        .then(inc(x=y))
        .else_()
        .then(inc(x=x))
    )


@workflow
def false_wf(x: int) -> int:
    p = positive(x=x)
    return conditional("neg").if_(p.is_false()).then(inc(x=x)).else_().then(inc(x=x, step=3))


@workflow
def mapped_retry_wf(xs: list[int]) -> list[int]:
    return map_task(functools.partial(inc, step=5), concurrency=4)(x=xs)


WORKFLOWS = [options_wf, reference_wf, nested_tuple_wf, compare_wf, false_wf, mapped_retry_wf]
