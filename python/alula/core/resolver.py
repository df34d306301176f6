"""Finds a task again inside the container from the loader args written at serialization."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from alula.core.errors import WorkflowAuthoringError

DEFAULT_RESOLVER = "alula.core.resolver.default_task_resolver"
# Tasks of a notebook, `python -c` or any module without a file cannot be imported where they
# run: they travel pickled inside their code bundle, and this resolver loads them from there.
PICKLED_RESOLVER = "alula.interactive.pickled_task_resolver"
# The pickle's name inside the code bundle (the worker's working folder).
PICKLED_PAYLOAD = "alula_interactive.pkl"


def is_interactive_module(module: str) -> bool:
    """Whether code of `module` cannot be found again by importing it: `__main__` (a notebook,
    a REPL, `python -c`, or a worker whose `__main__` is not the author's) or a module that
    has no file."""
    if module == "__main__":
        return True
    loaded = sys.modules.get(module)
    return loaded is None or not getattr(loaded, "__file__", None)


def task_location(module: str, name: str) -> tuple[str, list[str]]:
    """The resolver and loader args that find task `name` of `module` in the container."""
    if is_interactive_module(module):
        return PICKLED_RESOLVER, ["pickled", PICKLED_PAYLOAD, "task-name", f"{module}.{name}"]
    return DEFAULT_RESOLVER, default_task_resolver.loader_args(module, name)


class DefaultTaskResolver:
    """Loads a module-level task from `task-module <module> task-name <name>`."""

    def loader_args(self, module: str, name: str) -> list[str]:
        return ["task-module", module, "task-name", name]

    def load_task(self, loader_args: list[str]) -> Any:
        args = dict(zip(loader_args[::2], loader_args[1::2], strict=False))
        if "task-module" not in args or "task-name" not in args:
            raise WorkflowAuthoringError(
                f"loader args {loader_args!r} need 'task-module <module> task-name <name>'"
            )
        module = importlib.import_module(args["task-module"])
        return getattr(module, args["task-name"])


default_task_resolver = DefaultTaskResolver()


def load_resolver(path: str) -> Any:
    """The resolver object at `module.attr` (what `--resolver` names)."""
    module, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module), attr)
