"""Alula: Flyte, rebuilt in Rust.

Write tasks and workflows as with flytekit; a Rust core compiles and runs them locally or serves
them from a FlyteAdmin-compatible control plane.
"""

from alula import _native

__version__: str = _native.__version__

__all__ = ["__version__"]
