"""Every exception class Alula defines derives from the one root, `alula.AlulaError`, and keeps
the builtin base it always had (so `except ValueError` code still works)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import alula
from alula import _native
from alula.errors import AlulaError, CompileError, RpcError

PACKAGE = Path(alula.__file__).parent


def exception_classes() -> list[tuple[str, str]]:
    """(module, class) of every module-level class whose name says it is an exception."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and node.name.endswith(
                ("Error", "Failed", "Extra", "Exception")
            ):
                found.append((".".join(parts), node.name))
    return found


def test_the_classes_are_found() -> None:
    names = {name for _, name in exception_classes()}
    assert {"AlulaError", "ExecutionFailed", "MissingExtra", "TaskExecutionError"} <= names


@pytest.mark.parametrize(("module", "name"), exception_classes())
def test_every_exception_derives_from_alula_error(module: str, name: str) -> None:
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, AlulaError), f"{module}.{name} does not derive from AlulaError"


def test_builtin_bases_are_kept() -> None:
    from alula.core.errors import WorkflowAuthoringError
    from alula.core.local import TaskExecutionError
    from alula.extras import MissingExtra
    from alula.remote import ExecutionFailed

    assert issubclass(WorkflowAuthoringError, ValueError)
    assert issubclass(TaskExecutionError, RuntimeError)
    assert issubclass(MissingExtra, ImportError)
    assert issubclass(ExecutionFailed, RuntimeError)
    assert issubclass(CompileError, ValueError)
    assert issubclass(RpcError, RuntimeError)
    assert alula.AlulaError is AlulaError


def test_the_native_module_raises_the_python_classes() -> None:
    assert _native.CompileError is CompileError
    assert _native.RpcError is RpcError
    with pytest.raises(AlulaError) as caught:
        _native.grpc_unary("127.0.0.1:1", "/flyteidl.service.AdminService/GetVersion", b"", 2.0)
    assert isinstance(caught.value, RpcError)
    assert caught.value.code == "UNAVAILABLE"
