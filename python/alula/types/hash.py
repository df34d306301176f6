"""`HashMethod`: put it in `typing.Annotated` to give a value's literal a cache-relevant hash."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class HashMethod(Generic[T]):
    """Computes `Literal.hash` for values of `Annotated[T, HashMethod(fn)]`.

    Caches then key on the hash instead of the literal, which matters for values whose literal
    is a fresh file URI on every run (data frames, files) but whose content is unchanged.
    """

    def __init__(self, function: Callable[[T], str]) -> None:
        self._function = function

    def calculate(self, value: T) -> str:
        return self._function(value)

    def __repr__(self) -> str:
        return f"HashMethod({self._function!r})"


def find_hash_method(annotations: tuple[Any, ...]) -> HashMethod[Any] | None:
    for annotation in annotations:
        if isinstance(annotation, HashMethod):
            return annotation
    return None
