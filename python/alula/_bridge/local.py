"""The typed values of a local run, as they cross to `rust/py/src/local.rs`.

Rust reads `LocalRunRequest` and `ResolvedTask` by attribute (`#[derive(FromPyObject)]`) and
returns the outputs as a dict or a `LocalRunFailure` (a `#[pyclass]`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alula import _native
from alula._native import LocalRunFailure

ValueKinds = list[tuple[str, Any]]
"""How each named value converts (see `alula.core.local.value_kind`)."""


@dataclass(frozen=True)
class ResolvedTask:
    """What the runner needs to call one task: `resolve_task(name)`'s answer."""

    function: Callable[..., Any]
    input_kinds: ValueKinds
    output_kinds: ValueKinds
    dynamic: bool
    """The function returns an encoded `DynamicJobSpec` instead of outputs."""
    positional: bool
    """The inputs are the function's positional parameters, in order (a cheaper call)."""


@dataclass(frozen=True)
class LocalRunRequest:
    """One local run of a compiled workflow."""

    closure: bytes
    """An encoded `core.CompiledWorkflowClosure`."""
    inputs: dict[str, Any]
    input_kinds: ValueKinds
    output_kinds: ValueKinds
    resolve_task: Callable[[str], ResolvedTask]
    run_child: Callable[[str, bytes], bytes]
    """(launch plan name, encoded LiteralMap of inputs) -> encoded LiteralMap of outputs."""
    answer_signal: Callable[[str, bool], bytes | None]
    """(signal id, is an approval) -> encoded Literal, or None when nobody answers."""
    max_parallelism: int = 1
    cache_dir: str | os.PathLike[str] | None = None
    overwrite_cache: bool = False


def run_local(request: LocalRunRequest) -> dict[str, Any] | LocalRunFailure:
    """Runs the workflow; returns its outputs by name, or why it failed."""
    return _native.run_local(request)


__all__ = ["LocalRunFailure", "LocalRunRequest", "ResolvedTask", "ValueKinds", "run_local"]
