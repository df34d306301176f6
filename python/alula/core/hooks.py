"""Hooks through which authoring objects reach the runners without importing them.

Calling a workflow outside a trace runs it locally. The local runner (`alula.core.local`)
is built on workflows, tasks and launch plans, so `Workflow.__call__` reaches it through this
hook instead of importing it: the runner registers itself when its module loads, and the first
local run loads that module by name. Defining a workflow thus never loads the runner or the
native module behind it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

LOCAL_RUNNER_MODULE = "alula.core.local"

_local_runner: Callable[..., Any] | None = None


def set_local_runner(run: Callable[..., Any]) -> None:
    """Called by the local runner's module: `run(workflow, **inputs)` runs a workflow."""
    global _local_runner
    _local_runner = run


def local_runner() -> Callable[..., Any]:
    """The registered local runner, loading its module on first use."""
    if _local_runner is None:
        importlib.import_module(LOCAL_RUNNER_MODULE)
    if _local_runner is None:
        raise RuntimeError(f"{LOCAL_RUNNER_MODULE} did not register a local runner")
    return _local_runner
