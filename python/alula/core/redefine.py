"""Notebook cells run again: a task or workflow defined anew in `__main__` (or another module
without a file) replaces the old one without a kernel restart.

Python rebinds the name; what holds the old object is a workflow traced before, whose nodes
still call it. Each such definition moves a generation counter on, and a workflow of such a
module traced under an older generation traces itself again on its next use, looking its
tasks up anew (see `Workflow.trace`).
"""

from __future__ import annotations

from alula.core.resolver import is_interactive_module

_generation = 0


def defined(module: str) -> None:
    """Note a task or workflow defined in `module`."""
    global _generation
    if is_interactive_module(module):
        _generation += 1


def generation() -> int:
    """How many interactive definitions were made so far in this process."""
    return _generation
