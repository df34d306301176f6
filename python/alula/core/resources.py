"""Container resources and secret requests of a task, as flytekit spells them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]


@dataclass(frozen=True)
class Resources:
    """Requested or limited compute resources; values are Kubernetes quantities ("500m", "1Gi")."""

    cpu: str | int | float | None = None
    mem: str | None = None
    gpu: str | int | None = None
    ephemeral_storage: str | None = None

    def _named(self) -> list[tuple[str, Any]]:
        return [
            ("CPU", self.cpu),
            ("MEMORY", self.mem),
            ("GPU", self.gpu),
            ("EPHEMERAL_STORAGE", self.ephemeral_storage),
        ]

    def override_entries(self) -> list[Json]:
        """Entries in the order flytekit writes node overrides (cpu, memory, gpu, storage)."""
        return [{"name": n, "value": str(v)} for n, v in self._named() if v is not None]

    def container_entries(self) -> list[Json]:
        """Entries in the order flytekit writes a task container (storage, cpu, gpu, memory)."""
        order = ["EPHEMERAL_STORAGE", "CPU", "GPU", "MEMORY"]
        values = dict(self._named())
        return [{"name": n, "value": str(values[n])} for n in order if values[n] is not None]


def resources_json(
    requests: Resources | None, limits: Resources | None, *, for_container: bool
) -> Json:
    """The flyteidl `core.Resources` message; empty lists are left out as protobuf does."""

    def entries(r: Resources | None) -> list[Json]:
        if r is None:
            return []
        return r.container_entries() if for_container else r.override_entries()

    out: Json = {}
    if req := entries(requests):
        out["requests"] = req
    if lim := entries(limits):
        out["limits"] = lim
    return out


@dataclass(frozen=True)
class Secret:
    """A secret the task needs at run time, looked up by group and key."""

    class MountType(enum.Enum):
        ANY = "ANY"
        ENV_VAR = "ENV_VAR"
        FILE = "FILE"

    group: str | None = None
    key: str | None = None
    group_version: str | None = None
    mount_requirement: MountType = MountType.ANY
    env_var: str | None = None

    def to_json(self) -> Json:
        out: Json = {}
        if self.group:
            out["group"] = self.group
        if self.group_version:
            out["groupVersion"] = self.group_version
        if self.key:
            out["key"] = self.key
        if self.mount_requirement is not Secret.MountType.ANY:
            out["mountRequirement"] = self.mount_requirement.value
        if self.env_var:
            out["envVar"] = self.env_var
        return out
