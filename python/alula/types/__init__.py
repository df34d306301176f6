"""The type engine: Python values to and from flyteidl literals, as flytekit converts them.

Literals and literal types are proto3-JSON dicts; `alula._bridge.message_from_json` encodes them.
"""

from alula.types import builtin as _builtin  # registers the built-in transformers
from alula.types.directory import FlyteDirectory
from alula.types.engine import TypeEngine
from alula.types.file import FlyteFile
from alula.types.hash import HashMethod
from alula.types.pickle import FlytePickle
from alula.types.structured import StructuredDataset, kwtypes
from alula.types.transformer import TypeTransformer, TypeTransformerFailedError

del _builtin

__all__ = [
    "FlyteDirectory",
    "FlyteFile",
    "FlytePickle",
    "HashMethod",
    "StructuredDataset",
    "TypeEngine",
    "TypeTransformer",
    "TypeTransformerFailedError",
    "kwtypes",
]
