"""Finds a task again inside the container from the loader args written at serialization."""

from __future__ import annotations

import importlib
from typing import Any

from alula.core.errors import WorkflowAuthoringError

DEFAULT_RESOLVER = "alula.core.resolver.default_task_resolver"


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
