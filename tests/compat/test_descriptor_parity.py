"""proto/ against flyteidl's published descriptors: every message, field, enum and RPC."""

from __future__ import annotations

import copy

from conftest import SKIPPED, flyteidl_files, our_files
from parity import Schema, compare

REQUIRED_PACKAGES = {
    "flyteidl.core",
    "flyteidl.admin",
    "flyteidl.event",
    "flyteidl.service",
    "flyteidl.plugins",
    "flyteidl.cacheservice",
    "datacatalog",
}
REQUIRED_SERVICES = {
    "flyteidl.service.AdminService",
    "flyteidl.service.DataProxyService",
    "flyteidl.service.SignalService",
    "flyteidl.service.AuthMetadataService",
    "flyteidl.service.IdentityService",
    "datacatalog.DataCatalog",
    "flyteidl.cacheservice.CacheService",
}


def test_every_element_matches_flyteidl(ours: Schema, theirs: Schema) -> None:
    diffs = compare(ours, theirs, SKIPPED)
    assert not diffs, f"{len(diffs)} differences from flyteidl:\n" + "\n".join(diffs)


def test_covers_the_required_packages_and_services(ours: Schema, theirs: Schema) -> None:
    packages = {f.package for f in our_files()}
    assert REQUIRED_PACKAGES <= packages, REQUIRED_PACKAGES - packages
    assert REQUIRED_SERVICES <= set(ours.services), REQUIRED_SERVICES - set(ours.services)
    assert len(ours.services["flyteidl.service.AdminService"].method) == 56
    # Everything flyteidl has is ours unless skipped on purpose, with a reason.
    missing = theirs.names() - ours.names()
    unexplained = {n for n in missing if not any(n.startswith(p) for p in SKIPPED)}
    assert not unexplained, sorted(unexplained)
    assert all(reason.strip() for reason in SKIPPED.values())


def test_same_files_as_flyteidl() -> None:
    assert {f.name for f in our_files()} == {f.name for f in flyteidl_files()}


def _mutated(mutate) -> Schema:
    files = [copy.deepcopy(f) for f in our_files()]
    for f in files:
        mutate(f)
    return Schema.of(files)


def _find_message(f, name):
    return next((m for m in f.message_type if m.name == name), None)


def test_comparator_catches_a_changed_field_number(theirs: Schema) -> None:
    def mutate(f):
        if f.name == "flyteidl/core/literals.proto":
            literal = _find_message(f, "Literal")
            next(x for x in literal.field if x.name == "hash").number = 5

    diffs = compare(_mutated(mutate), theirs, SKIPPED)
    assert any(d.startswith("flyteidl.core.Literal") and "hash" in d for d in diffs), diffs


def test_comparator_catches_type_label_oneof_enum_and_route_changes(theirs: Schema) -> None:
    def mutate(f):
        if f.name == "flyteidl/core/identifier.proto":
            ident = _find_message(f, "Identifier")
            next(x for x in ident.field if x.name == "version").type = 12  # bytes
        if f.name == "flyteidl/core/tasks.proto":
            res = _find_message(f, "Resources")
            next(x for x in res.field if x.name == "requests").label = 1  # optional
        if f.name == "flyteidl/core/execution.proto":
            wf = _find_message(f, "WorkflowExecution")
            wf.enum_type[0].value[1].number = 42
        if f.name == "flyteidl/service/admin.proto":
            from google.api import annotations_pb2

            m = f.service[0].method[0]
            m.options.Extensions[annotations_pb2.http].post = "/api/v2/tasks"
        if f.name == "flyteidl/core/literals.proto":
            scalar = _find_message(f, "Scalar")
            next(x for x in scalar.field if x.name == "union").ClearField("oneof_index")

    diffs = "\n".join(compare(_mutated(mutate), theirs, SKIPPED))
    assert "flyteidl.core.Identifier.version" in diffs and "TYPE_BYTES" in diffs
    assert "flyteidl.core.Resources.requests" in diffs and "LABEL_OPTIONAL" in diffs
    assert "flyteidl.core.WorkflowExecution.Phase: enum values differ" in diffs
    assert "flyteidl.service.AdminService.CreateTask: HTTP rule" in diffs
    assert "flyteidl.core.Scalar.union" in diffs and "oneof" in diffs
