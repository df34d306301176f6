"""Workflows written with Alula's SDK that the Kubernetes end-to-end tests run as pods
(test_k8s_alula.py, test_k8s_recovery.py), and locally for comparison."""

from __future__ import annotations

import os
import time
from pathlib import Path

from alula import map_task, task, workflow


@task
def double(x: int) -> int:
    return x * 2


@task
def square(x: int) -> int:
    return x * x


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@task
def describe(a: int, b: int) -> str:
    return f"{a}+{b}={a + b}"


@workflow
def fan(x: int = 3, xs: list[int] = [1, 2, 3]) -> str:  # noqa: B006 - a default, never mutated
    """A task, a map task and a reduction in parallel, then one task joining them."""
    return describe(a=double(x=x), b=total(xs=map_task(square)(x=xs)))


@task(retries=1)
def fail_once(marker: str, exit_code: int) -> str:
    """Fails unless `marker` exists, after creating it: by raising (the task reports the error
    in its error document and its process ends normally) when `exit_code` is 0, else by ending
    its process with `exit_code` (the container fails, with no error document)."""
    path = Path(marker)
    if not path.exists():
        path.write_text("attempt 0 failed\n")
        if exit_code:
            print("the first attempt exits on purpose", flush=True)
            os._exit(exit_code)
        raise RuntimeError("the first attempt fails on purpose")
    return path.read_text().strip()


@workflow
def recovering(marker: str, exit_code: int = 0) -> str:
    return fail_once(marker=marker, exit_code=exit_code)


@task
def wait_for(release: str, timeout_s: int) -> str:
    """Blocks until the file `release` appears (the test's go-ahead), then returns its text."""
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(release):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{release} did not appear within {timeout_s} s")
        time.sleep(0.1)
    return Path(release).read_text()


@workflow
def gated(release: str, timeout_s: int = 120) -> str:
    return wait_for(release=release, timeout_s=timeout_s)
