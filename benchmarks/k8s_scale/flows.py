"""The scale benchmark's workflow: one map task whose elements do nothing and return nothing,
so that a kubelet that runs nothing (local_kubelet.py with SIMULATE=1) can complete them: with
no outputs declared, propeller needs no outputs.pb from a pod that exited 0."""

from __future__ import annotations

from alula import map_task, task, workflow


@task
def noop(x: int) -> None:
    del x


@workflow
def fan_out(xs: list[int]) -> None:
    map_task(noop)(x=xs)
