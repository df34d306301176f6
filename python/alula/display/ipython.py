"""The little of IPython the displays use, imported only when shown in a kernel: IPython is
optional (alula does not depend on it) and its functions are untyped, hence `Any`."""

from __future__ import annotations

import importlib
from typing import Any


def in_kernel() -> bool:
    """Whether this runs in IPython (a notebook's kernel or the IPython shell)."""
    try:
        ipython: Any = importlib.import_module("IPython")
    except ImportError:
        return False
    return ipython.get_ipython() is not None


def show(html: str) -> Any:
    """Display `html` with a display id; returns the handle whose `update` replaces it."""
    display: Any = importlib.import_module("IPython.display")
    return display.display(display.HTML(html), display_id=True)


def update(handle: Any, html: str) -> None:
    display: Any = importlib.import_module("IPython.display")
    handle.update(display.HTML(html))
