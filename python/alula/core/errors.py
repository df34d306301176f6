"""Errors raised while authoring and serializing workflows.

Each message names the entity at fault and the Python call site (`file:line`), because the
author's next step is to open that line.
"""

from __future__ import annotations

from alula.errors import AlulaError


class WorkflowAuthoringError(AlulaError, ValueError):
    """A workflow, task call or launch plan is put together wrongly."""


class InputTypeError(WorkflowAuthoringError, TypeError):
    """A value bound to an input does not have the type the input declares."""


class UnsupportedTypeError(WorkflowAuthoringError, TypeError):
    """A type hint names a type that has no Flyte literal type."""


class WorkflowCompileError(WorkflowAuthoringError):
    """The compiler rejected a traced workflow; `errors` holds one line per problem."""

    def __init__(self, workflow: str, errors: list[str]) -> None:
        self.workflow = workflow
        self.errors = errors
        lines = "\n".join(f"  - {e}" for e in errors)
        super().__init__(f"workflow '{workflow}' does not compile:\n{lines}")
