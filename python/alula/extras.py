"""Optional dependencies, installed as extras of the `alula` package (`pip install
'alula[pandas]'`): a missing one is an ImportError that says which extra brings it."""

from __future__ import annotations

import importlib
from types import ModuleType

from alula.errors import AlulaError

# Module -> the extra of pyproject.toml's [project.optional-dependencies] that installs it.
EXTRAS = {
    "pandas": "pandas",
    "pyarrow": "pandas",
    "pydantic": "pydantic",
    "cloudpickle": "pickle",
    "yaml": "yaml",
}


class MissingExtra(AlulaError, ImportError):
    """An optional dependency that is not installed."""


def require(module: str, why: str) -> ModuleType:
    """`module` imported, or MissingExtra naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        extra = EXTRAS.get(module.split(".")[0], module)
        raise MissingExtra(
            f"{why} needs {module}, which is not installed: pip install 'alula[{extra}]'",
            name=module,
        ) from e
