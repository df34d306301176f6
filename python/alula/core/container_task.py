"""`ContainerTask`: a task that runs any image (flytekit's `ContainerTask`, task type
`raw-container`). Its inputs reach the container as files under `input_data_dir` or as
`{{.inputs.x}}` in its command; it writes one file per output under `output_data_dir`. On a
cluster Alula's copilot (`alula-copilot`, an init container and a sidecar of the task's pod)
moves the data; the local process plugin and local runs refuse it, since neither has a
container runtime.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from enum import Enum
from typing import Any

from alula.core.interface import Interface
from alula.core.protojson import Json
from alula.core.resources import Resources, Secret, resources_json
from alula.core.settings import SerializationSettings
from alula.core.task import PythonFunctionTask, _options


class _MetadataFormat(Enum):
    JSON = "JSON"
    YAML = "YAML"
    PROTO = "PROTO"


class _IOStrategy(Enum):
    # flytekit's one enum for both directions; each member names its IOStrategy field.
    DOWNLOAD_EAGER = ("downloadMode", "DOWNLOAD_EAGER")
    DOWNLOAD_STREAM = ("downloadMode", "DOWNLOAD_STREAM")
    DO_NOT_DOWNLOAD = ("downloadMode", "DO_NOT_DOWNLOAD")
    UPLOAD_EAGER = ("uploadMode", "UPLOAD_EAGER")
    UPLOAD_ON_EXIT = ("uploadMode", "UPLOAD_ON_EXIT")
    DO_NOT_UPLOAD = ("uploadMode", "DO_NOT_UPLOAD")


class ContainerTask(PythonFunctionTask):
    """A task that runs `command` in `image`; same constructor as flytekit's `ContainerTask`."""

    task_type = "raw-container"
    MetadataFormat = _MetadataFormat
    IOStrategy = _IOStrategy

    def __init__(
        self,
        name: str,
        image: str,
        command: list[str],
        inputs: dict[str, type] | None = None,
        metadata: Any = None,
        arguments: list[str] | None = None,
        outputs: dict[str, type] | None = None,
        requests: Resources | None = None,
        limits: Resources | None = None,
        input_data_dir: str | None = None,
        output_data_dir: str | None = None,
        metadata_format: _MetadataFormat = _MetadataFormat.JSON,
        io_strategy: _IOStrategy | None = None,
        secret_requests: list[Secret] | None = None,
        pod_template_name: str | None = None,
        environment: dict[str, str] | None = None,
        retries: int = 0,
        timeout: timedelta | int | None = None,
        interruptible: bool | None = None,
        cache: bool = False,
        cache_version: str = "",
    ) -> None:
        if metadata is not None:
            raise TypeError(
                "ContainerTask(metadata=...) is flytekit's TaskMetadata; give retries=, "
                "timeout=, interruptible=, cache= and cache_version= directly"
            )
        if not isinstance(image, str) or not image:
            raise TypeError('ContainerTask needs image="registry/name:tag"')
        self.options = _options(
            cache=cache,
            cache_version=cache_version,
            cache_serialize=False,
            cache_ignore_input_vars=(),
            retries=retries,
            timeout=timeout,
            interruptible=interruptible,
            requests=requests,
            limits=limits,
            container_image=image,
            environment=environment,
            secret_requests=secret_requests,
            pod_template_name=pod_template_name,
            deprecated="",
            docs=None,
        )
        self.dynamic = False
        self.name = self.short_name = name
        frame = sys._getframe(1)
        self.module = str(frame.f_globals.get("__name__", ""))
        site = f"{frame.f_code.co_filename}:{frame.f_lineno}"
        self.interface = Interface(
            f"container task '{name}'", site, dict(inputs or {}), dict(outputs or {})
        )
        self.image = image
        self.command = list(command)
        self.arguments = list(arguments) if arguments is not None else None
        self.input_data_dir = input_data_dir
        self.output_data_dir = output_data_dir
        self.metadata_format = metadata_format
        self.io_strategy = io_strategy
        self.fn = self._refuse_local_run
        self.__doc__ = None

    def __repr__(self) -> str:
        return f"<container task {self.name}>"

    def _refuse_local_run(self, **_: Any) -> Any:
        raise RuntimeError(
            f"container task '{self.name}' runs the image {self.image}: register it and run it "
            "on a control plane with the Kubernetes plugin (`alula run --remote`); local runs "
            "have no container runtime"
        )

    def loader_args(self) -> list[str]:
        return []

    def data_config_json(self) -> Json:
        config: Json = {
            "enabled": True,
            "inputPath": self.input_data_dir or "",
            "outputPath": self.output_data_dir or "",
            "format": self.metadata_format.value,
        }
        if self.io_strategy is not None:
            field, mode = self.io_strategy.value
            config["ioStrategy"] = {field: mode}
        return config

    def template_json(self, settings: SerializationSettings, runtime_version: str) -> Json:
        """The core.TaskTemplate flytekit's ContainerTask serializes."""
        o = self.options
        container: Json = {
            "image": self.image,
            "command": self.command,
            "resources": resources_json(o.requests, o.limits, for_container=True),
            "dataConfig": self.data_config_json(),
        }
        if self.arguments is not None:
            container["args"] = self.arguments
        env = {**settings.env, **dict(o.environment)}
        if env:
            container["env"] = [{"key": k, "value": v} for k, v in env.items()]
        template: Json = {
            "id": settings.identifier("TASK", self.name),
            "type": self.task_type,
            "metadata": o.metadata_json(runtime_version),
            "interface": self.interface.to_json(),
            "container": container,
        }
        if o.secret_requests:
            template["securityContext"] = {"secrets": [s.to_json() for s in o.secret_requests]}
        return template

    def documentation_json(self) -> Json:
        return {}
