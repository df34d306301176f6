"""Fixtures shared by the wire-compatibility tests.

The oracle is the `flyteidl` package from PyPI (installed by scripts/test); "ours" is the
descriptor set compiled from proto/ by the Rust build and exposed by alula._native.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

import pytest
from google.protobuf import descriptor_pb2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from parity import Schema  # noqa: E402

# Packages whose every element we must provide.
COVERED_PREFIXES = ("flyteidl/", "datacatalog")

# flyteidl packages deliberately not written, with the reason. Empty: proto/ holds all of
# flyteidl 1.16 (core, admin, event, service, plugins, cacheservice, datacatalog).
SKIPPED: dict[str, str] = {}


def flyteidl_files() -> list[descriptor_pb2.FileDescriptorProto]:
    import flyteidl

    files = []
    for mod in pkgutil.walk_packages(flyteidl.__path__, "flyteidl."):
        if not mod.name.endswith("_pb2"):
            continue
        module = importlib.import_module(mod.name)
        fdp = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(fdp)
        files.append(fdp)
    return files


def our_files() -> list[descriptor_pb2.FileDescriptorProto]:
    from google.api import annotations_pb2  # noqa: F401  (registers the http extension)

    import alula._native

    fds = descriptor_pb2.FileDescriptorSet.FromString(alula._native.descriptor_set())
    return [f for f in fds.file if f.name.startswith(COVERED_PREFIXES)]


@pytest.fixture(scope="session")
def theirs() -> Schema:
    return Schema.of(flyteidl_files())


@pytest.fixture(scope="session")
def ours() -> Schema:
    return Schema.of(our_files())
