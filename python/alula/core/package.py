"""Packaging: load workflow modules, serialize their entities, write a `pyflyte package` tgz."""

from __future__ import annotations

import importlib
import io
import os
import sys
import tarfile
from types import ModuleType

from alula.core.launch_plan import LaunchPlan
from alula.core.serialize import Entity, Serialized, entity_of, serialize
from alula.core.settings import SerializationSettings
from alula.core.workflow import Workflow


def load_module(path: str) -> ModuleType:
    """Import a Python file by its name, with its folder on sys.path (as `pyflyte` does)."""
    if not os.path.isfile(path) or not path.endswith(".py"):
        raise FileNotFoundError(f"{path}: not a Python file")
    folder, name = os.path.split(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name[: -len(".py")])


def module_entities(module: ModuleType) -> list[Entity]:
    """The tasks, workflows and launch plans a module defines, and each workflow's default
    launch plan (the one `pyflyte register` creates)."""
    found: list[Entity] = []
    for value in vars(module).values():
        entity = entity_of(value)
        if entity is None:
            continue
        home = entity.workflow.module if isinstance(entity, LaunchPlan) else entity.module
        if home == module.__name__:
            found.append(entity)
    found += [LaunchPlan.get_or_create(e) for e in found if isinstance(e, Workflow)]
    return found


def file_name(index: int, count: int, entity: Serialized) -> str:
    """`<index>_<name>_<kind>.pb`, the index zero-padded to the width of the largest one."""
    width = len(str(max(count - 1, 0)))
    return f"{str(index).zfill(width)}_{entity.name}_{entity.kind}.pb"


def package(paths: list[str], settings: SerializationSettings, output: str) -> list[str]:
    """Serialize every entity of the given files into the tgz `output`; returns its members."""
    entities = [e for path in paths for e in module_entities(load_module(path))]
    serialized = serialize(entities, settings)
    names = []
    with tarfile.open(output, "w:gz") as tar:
        for i, s in enumerate(serialized):
            name = file_name(i, len(serialized), s)
            data = s.to_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            names.append(name)
    return names
