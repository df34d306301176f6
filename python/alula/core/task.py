"""`@task` and `@dynamic`: Python functions that run as one container each."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from alula.core import redefine
from alula.core.errors import WorkflowAuthoringError
from alula.core.interface import Interface, def_site, from_function
from alula.core.protojson import Json
from alula.core.resolver import task_location
from alula.core.resources import Resources, Secret, resources_json
from alula.core.settings import EXECUTE_ENTRYPOINT, SerializationSettings, execute_args
from alula.core.trace import Node, add_call_node, call_site, timeout_json, tracing


@dataclass(frozen=True)
class Documentation:
    short_description: str | None = None
    long_description: str | None = None


@dataclass(frozen=True)
class TaskOptions:
    """Everything `@task` accepts besides the function."""

    cache: bool = False
    cache_version: str = ""
    cache_serialize: bool = False
    cache_ignore_input_vars: tuple[str, ...] = ()
    retries: int = 0
    timeout: timedelta | int | None = None
    interruptible: bool | None = None
    requests: Resources | None = None
    limits: Resources | None = None
    container_image: str | None = None
    environment: tuple[tuple[str, str], ...] = ()
    secret_requests: tuple[Secret, ...] = ()
    pod_template_name: str | None = None
    deprecated: str = ""
    docs: Documentation | None = None

    def metadata_json(self, runtime_version: str) -> Json:
        """The task's core.TaskMetadata."""
        md: Json = {}
        if self.cache:
            md["discoverable"] = True
        md["runtime"] = {"type": "FLYTE_SDK", "version": runtime_version, "flavor": "python"}
        md.update(timeout_json(self.timeout))
        md["retries"] = {"retries": self.retries} if self.retries else {}
        if self.cache_version:
            md["discoveryVersion"] = self.cache_version
        if self.deprecated:
            md["deprecatedErrorMessage"] = self.deprecated
        if self.interruptible is not None:
            md["interruptible"] = self.interruptible
        if self.cache_serialize:
            md["cacheSerializable"] = True
        if self.pod_template_name:
            md["podTemplateName"] = self.pod_template_name
        if self.cache_ignore_input_vars:
            md["cacheIgnoreInputVars"] = list(self.cache_ignore_input_vars)
        md["generatesDeck"] = False
        md["metadata"] = {}
        return md

    def node_metadata(self, name: str) -> Json:
        """The NodeMetadata of a call to the task, before overrides."""
        md: Json = {"name": name, **timeout_json(self.timeout)}
        md["retries"] = {"retries": self.retries} if self.retries else {}
        if self.interruptible is not None:
            md["interruptible"] = self.interruptible
        return md


class PythonFunctionTask:
    """A task defined by a Python function; calling it outside a workflow runs the function."""

    task_type = "python-task"

    def __init__(self, fn: Callable[..., Any], options: TaskOptions, *, dynamic: bool) -> None:
        self.fn = fn
        self.options = options
        self.dynamic = dynamic
        self.module = fn.__module__
        self.short_name = fn.__name__
        self.name = f"{self.module}.{self.short_name}"
        self.interface: Interface = from_function(fn, f"task '{self.short_name}'")
        ignored = set(options.cache_ignore_input_vars) - set(self.interface.inputs)
        if ignored:
            raise WorkflowAuthoringError(
                f"task '{self.short_name}' ({def_site(fn)}): cache_ignore_input_vars names "
                f"{sorted(ignored)}, which are not inputs"
            )
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        redefine.defined(self.module)

    def __repr__(self) -> str:
        return f"<task {self.name}>"

    def _repr_html_(self) -> str:
        """Jupyter's display: the interface (`alula.display`)."""
        from alula.display import task_html

        return task_html(self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        state = tracing()
        if state is None:
            return self.fn(*args, **kwargs)
        label = f"task '{self.short_name}'"
        metadata = self.options.node_metadata(self.short_name)
        return add_call_node(
            state, self, label, self.interface, metadata, args, kwargs, call_site()
        )

    def target_json(self, node: Node, settings: SerializationSettings) -> Json:
        reference = settings.identifier("TASK", self.name)
        return {"taskNode": {"referenceId": reference, "overrides": node.overrides}}

    def loader_args(self) -> list[str]:
        return task_location(self.module, self.short_name)[1]

    def resolver(self) -> str:
        """The resolver that finds this task in the container (`alula.core.resolver`)."""
        return task_location(self.module, self.short_name)[0]

    def container_json(self, settings: SerializationSettings, args: list[str]) -> Json:
        o = self.options
        container: Json = {
            "image": o.container_image or settings.image,
            "args": args,
            "resources": resources_json(o.requests, o.limits, for_container=True),
        }
        env = {**settings.env, **dict(o.environment)}
        if self.dynamic:
            env[settings.ENV_VAR] = settings.compressed()
        if env:
            container["env"] = [{"key": k, "value": v} for k, v in env.items()]
        return container

    def template_json(self, settings: SerializationSettings, runtime_version: str) -> Json:
        """The core.TaskTemplate of this task."""
        args = execute_args(
            EXECUTE_ENTRYPOINT, self.resolver(), self.loader_args(), settings.fast_distribution
        )
        template: Json = {
            "id": settings.identifier("TASK", self.name),
            "type": self.task_type,
            "metadata": self.options.metadata_json(runtime_version),
            "interface": self.interface.to_json(),
            "container": self.container_json(settings, args),
        }
        if self.options.secret_requests:
            secrets = [s.to_json() for s in self.options.secret_requests]
            template["securityContext"] = {"secrets": secrets}
        return template

    def documentation_json(self) -> Json:
        long: Json = {"format": "DESCRIPTION_FORMAT_RST"}
        docs = self.options.docs
        out: Json = {"longDescription": long}
        if docs is not None:
            if docs.long_description:
                long["value"] = docs.long_description
            if docs.short_description:
                out["shortDescription"] = docs.short_description
        return out


def _options(**kw: Any) -> TaskOptions:
    if kw["cache"] and not kw["cache_version"]:
        raise WorkflowAuthoringError(
            "cache=True needs cache_version=...: alula does not derive one from the source"
        )
    timeout = kw["timeout"]
    if timeout is not None and not isinstance(timeout, (int, timedelta)):
        raise WorkflowAuthoringError(
            f"timeout must be seconds (int) or a timedelta, got {type(timeout).__name__}"
        )
    kw["environment"] = tuple((kw["environment"] or {}).items())
    kw["secret_requests"] = tuple(kw["secret_requests"] or ())
    kw["cache_ignore_input_vars"] = tuple(kw["cache_ignore_input_vars"] or ())
    return TaskOptions(**kw)


def task(
    _fn: Callable[..., Any] | None = None,
    *,
    cache: bool = False,
    cache_version: str = "",
    cache_serialize: bool = False,
    cache_ignore_input_vars: Iterable[str] = (),
    retries: int = 0,
    timeout: timedelta | int | None = None,
    interruptible: bool | None = None,
    requests: Resources | None = None,
    limits: Resources | None = None,
    container_image: str | None = None,
    environment: dict[str, str] | None = None,
    secret_requests: Iterable[Secret] | None = None,
    pod_template_name: str | None = None,
    deprecated: str = "",
    docs: Documentation | None = None,
    _dynamic: bool = False,
) -> Any:
    """Declare a task; usable bare (`@task`) or with options (`@task(retries=3)`)."""
    options = _options(
        cache=cache,
        cache_version=cache_version,
        cache_serialize=cache_serialize,
        cache_ignore_input_vars=cache_ignore_input_vars,
        retries=retries,
        timeout=timeout,
        interruptible=interruptible,
        requests=requests,
        limits=limits,
        container_image=container_image,
        environment=environment,
        secret_requests=secret_requests,
        pod_template_name=pod_template_name,
        deprecated=deprecated,
        docs=docs,
    )

    def wrap(fn: Callable[..., Any]) -> PythonFunctionTask:
        return PythonFunctionTask(fn, options, dynamic=_dynamic)

    return wrap(_fn) if _fn is not None else wrap


def dynamic(_fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Declare a task whose body builds a workflow at run time; takes `@task`'s options."""
    return task(_fn, _dynamic=True, **options)
