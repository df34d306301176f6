"""Where serialized entities will live: project, domain, version and the default image."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from alula.core.protojson import Json, identifier_json

# The entrypoint that runs one task attempt in a container. It takes the same arguments as
# flytekit's `pyflyte-execute`, so propeller fills the same templates.
EXECUTE_ENTRYPOINT = "alula-execute"
MAP_EXECUTE_ENTRYPOINT = "alula-map-execute"
# Unpacks the registered code bundle before the task runs (`pyflyte-fast-execute`'s layout).
FAST_EXECUTE_ENTRYPOINT = "alula-fast-execute"
# Alula's task image (deploy/docker/task.Dockerfile): Python with the alula SDK, whose
# entrypoints the tasks run, and alula-copilot for raw containers. flytekit's image has neither.
# Per task: `@task(container_image=...)`; per registration: `--image` (or ALULA_TASK_IMAGE); there
# is no server-side default, as in Flyte.
TASK_IMAGE_REPOSITORY = "ghcr.io/alula-dev/alula-task"


def default_image() -> str:
    """Alula's task image of this version of the SDK."""
    from alula import _bridge

    return f"{TASK_IMAGE_REPOSITORY}:{_bridge.__version__}"


if TYPE_CHECKING:
    DEFAULT_IMAGE: str


def __getattr__(name: str) -> Any:
    # DEFAULT_IMAGE needs the native module's version: loaded on first use, not when a task or
    # workflow is merely defined.
    if name == "DEFAULT_IMAGE":
        value = globals()[name] = default_image()
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class SerializationSettings:
    project: str
    domain: str
    version: str
    image: str
    env: dict[str, str] = field(default_factory=dict)
    # The uploaded code bundle (fast registration): tasks unpack it before running.
    fast_distribution: str | None = None

    # The environment variable that hands these settings to a dynamic task, which serializes
    # the workflow it builds at run time (flytekit's name for it).
    ENV_VAR: ClassVar[str] = "_F_SS_C"

    def compressed(self) -> str:
        """These settings as gzip-compressed, base64-encoded JSON."""
        # Only a registration or a dynamic task needs these: not imported to define a task.
        import base64
        import gzip
        import json

        data = json.dumps(dataclasses.asdict(self)).encode()
        return base64.b64encode(gzip.compress(data, mtime=0)).decode()

    @classmethod
    def from_compressed(cls, text: str) -> SerializationSettings:
        import base64
        import gzip
        import json

        return cls(**json.loads(gzip.decompress(base64.b64decode(text))))

    def identifier(self, kind: str, name: str) -> Json:
        return identifier_json(kind, self.project, self.domain, name, self.version)


def execute_args(
    entrypoint: str, resolver: str, loader_args: list[str], distribution: str | None = None
) -> list[str]:
    """Container args in `pyflyte-execute`'s layout, with alula's entrypoint and resolver;
    behind `alula-fast-execute` when the code comes as a bundle at `distribution`."""
    fast = (
        [
            FAST_EXECUTE_ENTRYPOINT,
            "--additional-distribution",
            distribution,
            "--dest-dir",
            ".",
            "--",
        ]
        if distribution
        else []
    )
    return [
        *fast,
        entrypoint,
        "--inputs",
        "{{.input}}",
        "--output-prefix",
        "{{.outputPrefix}}",
        "--raw-output-data-prefix",
        "{{.rawOutputDataPrefix}}",
        "--checkpoint-path",
        "{{.checkpointOutputPrefix}}",
        "--prev-checkpoint",
        "{{.prevCheckpointPrefix}}",
        "--resolver",
        resolver,
        "--",
        *loader_args,
    ]
