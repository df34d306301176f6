"""Field-by-field comparison of two protobuf schemas given as FileDescriptorProtos.

`compare(ours, theirs)` returns one line per difference, each naming the element (message,
field, enum value, service method) and what differs. Comments, file options and documentation
options (openapiv2) are not part of the wire contract and are not compared.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

FDP = descriptor_pb2.FieldDescriptorProto
TYPE_NAMES = {v: k for k, v in FDP.Type.items()}
LABEL_NAMES = {v: k for k, v in FDP.Label.items()}


@dataclass
class Schema:
    """Every message, enum and service of a set of files, by full name."""

    messages: dict[str, descriptor_pb2.DescriptorProto] = field(default_factory=dict)
    enums: dict[str, descriptor_pb2.EnumDescriptorProto] = field(default_factory=dict)
    services: dict[str, descriptor_pb2.ServiceDescriptorProto] = field(default_factory=dict)
    file_of: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, files: Iterable[descriptor_pb2.FileDescriptorProto]) -> Schema:
        schema = cls()
        for f in files:
            for m in f.message_type:
                schema._add_message(f.package + "." + m.name, m, f.name)
            for e in f.enum_type:
                schema.enums[f.package + "." + e.name] = e
                schema.file_of[f.package + "." + e.name] = f.name
            for s in f.service:
                schema.services[f.package + "." + s.name] = s
                schema.file_of[f.package + "." + s.name] = f.name
        return schema

    def _add_message(self, name: str, m: descriptor_pb2.DescriptorProto, file: str) -> None:
        self.messages[name] = m
        self.file_of[name] = file
        for n in m.nested_type:
            self._add_message(name + "." + n.name, n, file)
        for e in m.enum_type:
            self.enums[name + "." + e.name] = e
            self.file_of[name + "." + e.name] = file

    def names(self) -> set[str]:
        return set(self.messages) | set(self.enums) | set(self.services)


def _camel(name: str) -> str:
    parts = name.split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def _field_facts(m: descriptor_pb2.DescriptorProto, f: descriptor_pb2.FieldDescriptorProto) -> dict:
    return {
        "name": f.name,
        "type": TYPE_NAMES[f.type],
        "label": LABEL_NAMES[f.label],
        "type_name": f.type_name.lstrip("."),
        "oneof": m.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else None,
        "proto3_optional": f.proto3_optional,
        "json_name": f.json_name or _camel(f.name),
        "deprecated": f.options.deprecated,
        "packed": f.options.packed if f.options.HasField("packed") else None,
    }


def _http(method: descriptor_pb2.MethodDescriptorProto) -> str | None:
    if not method.options.HasExtension(annotations_pb2.http):
        return None
    rule = method.options.Extensions[annotations_pb2.http]
    return str(rule).replace("\n", " ").strip()


def _compare_message(
    name: str, ours: descriptor_pb2.DescriptorProto, theirs: descriptor_pb2.DescriptorProto
) -> list[str]:
    diffs = []
    ours_f = {f.number: f for f in ours.field}
    theirs_f = {f.number: f for f in theirs.field}
    for num in sorted(set(ours_f) | set(theirs_f)):
        if num not in theirs_f:
            diffs.append(f"{name}: field {ours_f[num].name} = {num} is not in flyteidl")
            continue
        if num not in ours_f:
            diffs.append(f"{name}: missing field {theirs_f[num].name} = {num}")
            continue
        a, b = _field_facts(ours, ours_f[num]), _field_facts(theirs, theirs_f[num])
        for key in a:
            if a[key] != b[key]:
                diffs.append(
                    f"{name}.{b['name']} (= {num}): {key} is {a[key]!r}, flyteidl has {b[key]!r}"
                )
    if ours.options.map_entry != theirs.options.map_entry:
        entry = (ours.options.map_entry, theirs.options.map_entry)
        diffs.append(f"{name}: map_entry is {entry[0]}, flyteidl has {entry[1]}")
    if [o.name for o in ours.oneof_decl] != [o.name for o in theirs.oneof_decl]:
        diffs.append(
            f"{name}: oneofs are {[o.name for o in ours.oneof_decl]}, "
            f"flyteidl has {[o.name for o in theirs.oneof_decl]}"
        )

    def reserved(m: descriptor_pb2.DescriptorProto) -> tuple[list, list]:
        return sorted((r.start, r.end) for r in m.reserved_range), sorted(m.reserved_name)

    if reserved(ours) != reserved(theirs):
        diffs.append(f"{name}: reserved {reserved(ours)}, flyteidl has {reserved(theirs)}")
    return diffs


def _compare_enum(
    name: str, ours: descriptor_pb2.EnumDescriptorProto, theirs: descriptor_pb2.EnumDescriptorProto
) -> list[str]:
    diffs = []
    a = [(v.name, v.number, v.options.deprecated) for v in ours.value]
    b = [(v.name, v.number, v.options.deprecated) for v in theirs.value]
    if a != b:
        missing = sorted(set(b) - set(a))
        extra = sorted(set(a) - set(b))
        diffs.append(f"{name}: enum values differ; missing {missing}, not in flyteidl {extra}")
    if ours.options.allow_alias != theirs.options.allow_alias:
        diffs.append(f"{name}: allow_alias differs")
    if ours.options.deprecated != theirs.options.deprecated:
        dep = (ours.options.deprecated, theirs.options.deprecated)
        diffs.append(f"{name}: deprecated is {dep[0]}, flyteidl has {dep[1]}")
    return diffs


def _compare_service(
    name: str,
    ours: descriptor_pb2.ServiceDescriptorProto,
    theirs: descriptor_pb2.ServiceDescriptorProto,
) -> list[str]:
    diffs = []
    ours_m = {m.name: m for m in ours.method}
    theirs_m = {m.name: m for m in theirs.method}
    for mname in sorted(set(ours_m) | set(theirs_m)):
        if mname not in theirs_m:
            diffs.append(f"{name}.{mname}: RPC is not in flyteidl")
            continue
        if mname not in ours_m:
            diffs.append(f"{name}.{mname}: missing RPC")
            continue
        a, b = ours_m[mname], theirs_m[mname]
        for key in ("input_type", "output_type", "client_streaming", "server_streaming"):
            va, vb = getattr(a, key), getattr(b, key)
            if isinstance(va, str):
                va, vb = va.lstrip("."), vb.lstrip(".")
            if va != vb:
                diffs.append(f"{name}.{mname}: {key} is {va!r}, flyteidl has {vb!r}")
        if _http(a) != _http(b):
            diffs.append(f"{name}.{mname}: HTTP rule is {_http(a)!r}, flyteidl has {_http(b)!r}")
        if a.options.deprecated != b.options.deprecated:
            diffs.append(f"{name}.{mname}: deprecated differs")
    return diffs


def compare(ours: Schema, theirs: Schema, skipped: dict[str, str] | None = None) -> list[str]:
    """Every difference between the two schemas.

    `skipped` maps a full-name prefix (a package, or a message) that we deliberately do not
    provide to the reason; those elements may be absent from `ours`.
    """
    skipped = skipped or {}
    diffs: list[str] = []

    def is_skipped(n: str) -> bool:
        return any(n == p or n.startswith(p + ".") for p in skipped)

    for kind, a, b, cmp in (
        ("message", ours.messages, theirs.messages, _compare_message),
        ("enum", ours.enums, theirs.enums, _compare_enum),
        ("service", ours.services, theirs.services, _compare_service),
    ):
        for n in sorted(set(a) | set(b)):
            if n not in b:
                diffs.append(f"{n}: {kind} is not in flyteidl")
            elif n not in a:
                if not is_skipped(n):
                    diffs.append(f"{n}: {kind} of flyteidl is missing")
            else:
                diffs.extend(cmp(n, a[n], b[n]))
    return diffs
