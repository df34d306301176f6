"""The built-in transformers, registered with the engine when this module is first imported.

Containers, unions, enums and dataclasses are chosen by the shape of a type, not looked up by
it, so they are module-level singletons the engine dispatches to directly.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from alula.types.containers import DictTransformer, ListTransformer, UnionTransformer
from alula.types.dataclass import DataclassTransformer
from alula.types.directory import FlyteDirectoryTransformer
from alula.types.engine import ShapeTransformers, TypeEngine
from alula.types.enums import EnumTransformer
from alula.types.file import FlyteFileTransformer
from alula.types.pickle import FlytePickleTransformer
from alula.types.simple import simple_transformers
from alula.types.structured import STRUCTURED_DATASET, is_dataframe_type
from alula.types.transformer import TypeTransformer

UNION = UnionTransformer()
LIST = ListTransformer()
DICT = DictTransformer()
ENUM = EnumTransformer()
DATACLASS = DataclassTransformer()
PICKLE = FlytePickleTransformer()


def lazily_supported(t: type) -> TypeTransformer[Any] | None:
    """Transformers of optional libraries' types, found without importing those libraries."""
    if is_dataframe_type(t):
        return STRUCTURED_DATASET
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and issubclass(t, pydantic.BaseModel):
        from alula.types.basemodel import BASE_MODEL

        return BASE_MODEL
    return None


def _register() -> None:
    for transformer in simple_transformers():
        TypeEngine.register(transformer)
    # A path annotated as os.PathLike travels as a file, as in flytekit.
    TypeEngine.register(FlyteFileTransformer(), additional_types=[os.PathLike])
    TypeEngine.register(FlyteDirectoryTransformer())
    TypeEngine.register(STRUCTURED_DATASET)
    TypeEngine.register(PICKLE)
    TypeEngine.register_shapes(
        ShapeTransformers(UNION, LIST, DICT, ENUM, DATACLASS, PICKLE, lazily_supported)
    )


_register()
