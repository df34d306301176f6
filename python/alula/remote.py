"""Register and run workflows on a FlyteAdmin-compatible control plane (alula-server).

Every call is one unary gRPC request made by the native module on protobuf bytes built from
proto3 JSON, so the SDK needs neither grpcio nor generated stubs. Registration is "fast": the
workflow's folder goes up as a code bundle through the data proxy, and the tasks unpack it with
`alula-fast-execute` before running, so no image has to be built for a code change.
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import hashlib
import io
import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, Any, cast
from urllib.parse import quote

from alula import _bridge
from alula.auth import (
    INSECURE_CREDENTIALS_ENV,
    ClientCredentials,
    StaticToken,
    TokenEndpoint,
    refuse_plaintext_credentials,
    ssl_context,
)
from alula.bundle import bundle
from alula.core.interface import Interface
from alula.core.launch_plan import LaunchPlan
from alula.core.package import load_module, module_entities
from alula.core.protojson import Json, duration_json, identifier_json
from alula.core.serialize import LAUNCH_PLAN, TASK, WORKFLOW, Entity, Serialized, serialize
from alula.core.settings import DEFAULT_IMAGE, SerializationSettings
from alula.core.task import PythonFunctionTask
from alula.core.workflow import Workflow
from alula.errors import AlulaError, RpcError
from alula.rpcs import PUBLIC_RPCS, RPCS
from alula.waiting import poll_until_done, still_running_on_interrupt

DEFAULT_ENDPOINT = "127.0.0.1:8089"
# The console's base URL (`http://host:8088`) when browsers should not go through the endpoint.
CONSOLE_ENV = "ALULA_CONSOLE_URL"
ENDPOINT_ENV = "ALULA_ENDPOINT"
# TLS and credentials when `Remote` is not given them (what `alula run --remote` uses).
INSECURE_ENV = "ALULA_INSECURE"
CA_CERT_ENV = "ALULA_CA_CERT"
CLIENT_ID_ENV = "ALULA_CLIENT_ID"
CLIENT_SECRET_ENV = "ALULA_CLIENT_SECRET"
CLIENT_SECRET_FILE_ENV = "ALULA_CLIENT_SECRET_FILE"
TOKEN_ENV = "ALULA_TOKEN"
TERMINAL_PHASES = frozenset({"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"})

_CREATE = {TASK: "CreateTask", WORKFLOW: "CreateWorkflow", LAUNCH_PLAN: "CreateLaunchPlan"}


class ExecutionFailed(AlulaError, RuntimeError):
    """A remote execution ended in FAILED, ABORTED or TIMED_OUT."""

    def __init__(self, execution: Execution, phase: str, message: str) -> None:
        super().__init__(f"execution {execution} {phase}: {message}")
        self.execution = execution
        self.phase = phase
        self.message = message


@dataclass(frozen=True)
class Execution:
    """A handle on a remote workflow execution."""

    project: str
    domain: str
    name: str
    # The workflow's interface, when known here: it turns the outputs back into Python values.
    interface: Interface | None = field(default=None, compare=False, repr=False)

    def id_json(self) -> Json:
        return {"project": self.project, "domain": self.domain, "name": self.name}

    def __str__(self) -> str:
        return f"{self.project}:{self.domain}:{self.name}"

    def _repr_html_(self) -> str:
        """Jupyter's display: the execution's status now, with its outputs or failure once it
        ended, when this process started it (`alula.display`)."""
        from alula.display import execution_repr_html

        return execution_repr_html(self)


@dataclass(frozen=True)
class Registration:
    """What `Remote.register` created: the version, the bundle's URI and every entity."""

    version: str
    native_url: str
    entities: list[Serialized]


def auto_version(code: bytes, entities: Iterable[Serialized]) -> str:
    """A version naming exactly this code and these specs (as pyflyte's automatic versions)."""
    digest = hashlib.sha256(code)
    for e in entities:
        digest.update(e.to_bytes())
    return base64.urlsafe_b64encode(digest.digest()[:16]).decode().rstrip("=")


def _paths(source: str | Path | ModuleType | Iterable[str | Path]) -> list[str]:
    if isinstance(source, ModuleType):
        if not source.__file__:
            raise ValueError(f"module {source.__name__} has no file to register")
        return [source.__file__]
    if isinstance(source, (str, Path)):
        return [str(source)]
    # mypy does not narrow ModuleType out of the union.
    return [str(p) for p in cast("Iterable[str | Path]", source)]


def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return None
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    raise ValueError(f"{name}={value!r}: expected 1 or 0")


def _use_tls(endpoint: str, insecure: bool | None, ca_cert: str | None) -> bool:
    """`https://` means TLS and `http://` none; other forms follow `insecure` (else
    `ALULA_INSECURE`), and without either a CA file asks for TLS."""
    bare = endpoint.strip().removeprefix("dns:///")
    if bare.startswith("https://"):
        return True
    if bare.startswith("http://"):
        return False
    if insecure is None:
        insecure = _env_flag(INSECURE_ENV)
    if insecure is None:
        return ca_cert is not None
    return not insecure


class Remote:
    """A client of one control plane, registering into and running in one project and domain.

    Server errors surface as `alula.errors.RpcError` naming the RPC, with the gRPC `code`
    ("NOT_FOUND", ...) and the server's `message`.

    TLS: an `https://` endpoint, or `insecure=False` (`ALULA_INSECURE=0`); `ca_cert`
    (`ALULA_CA_CERT`) is a PEM file of the CA(s) to trust instead of the system's. Credentials:
    `client_id` and `client_secret` (`ALULA_CLIENT_ID`, `ALULA_CLIENT_SECRET` or a file named
    by `ALULA_CLIENT_SECRET_FILE`) exchanged for tokens at the token endpoint the server
    advertises, or a ready `token` (`ALULA_TOKEN`). Every call then carries the bearer token;
    a call refused UNAUTHENTICATED is retried once with a new token. Credentials go without
    TLS only to a loopback address, unless `allow_plaintext_credentials`
    (`ALULA_INSECURE_CREDENTIALS=1`): elsewhere the constructor refuses them.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        project: str = "flytesnacks",
        domain: str = "development",
        *,
        image: str = DEFAULT_IMAGE,
        timeout: float = 30.0,
        insecure: bool | None = None,
        ca_cert: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        token: str | None = None,
        allow_plaintext_credentials: bool | None = None,
    ) -> None:
        self.endpoint = endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT
        self.project = project
        self.domain = domain
        self.image = image
        self.timeout = timeout
        self.ca_cert = ca_cert or os.environ.get(CA_CERT_ENV) or None
        self.tls = _use_tls(self.endpoint, insecure, self.ca_cert)
        self._ssl: ssl.SSLContext | None = None
        if allow_plaintext_credentials is None:
            allow_plaintext_credentials = _env_flag(INSECURE_CREDENTIALS_ENV) or False
        self.allow_plaintext_credentials = allow_plaintext_credentials
        self.credentials = self._credentials(client_id, client_secret, token)
        if self.credentials is not None:
            # Before any call: a bearer token over plaintext gRPC is anyone's on the way.
            refuse_plaintext_credentials(
                "credentials",
                self.endpoint,
                tls=self.tls,
                allowed=self.allow_plaintext_credentials,
            )
        # Launch plans registered through this client: name -> (version, workflow interface).
        self._launch_plans: dict[str, tuple[str, Interface]] = {}
        # Notebook entities known to exist on the server: (resource type, name, version).
        self._interactive_registered: set[tuple[str, str, str]] = set()

    def _credentials(
        self, client_id: str | None, client_secret: str | None, token: str | None
    ) -> ClientCredentials | StaticToken | None:
        if token:
            return StaticToken(token)
        client_id = client_id or os.environ.get(CLIENT_ID_ENV) or None
        if client_secret is None and client_id:
            client_secret = os.environ.get(CLIENT_SECRET_ENV) or None
            secret_file = os.environ.get(CLIENT_SECRET_FILE_ENV)
            if client_secret is None and secret_file:
                try:
                    with open(secret_file) as f:
                        client_secret = f.read().strip()
                except OSError as e:
                    raise ValueError(
                        f"{CLIENT_SECRET_FILE_ENV}: cannot read {secret_file}: {e.strerror}"
                    ) from None
        if client_id and client_secret:
            return ClientCredentials(
                client_id,
                client_secret,
                self._token_endpoint,
                ca_cert=self.ca_cert,
                timeout=self.timeout,
                allow_plaintext=self.allow_plaintext_credentials,
            )
        if client_id or client_secret:
            raise ValueError(
                "client credentials need both a client id and a client secret "
                f"(or {CLIENT_SECRET_ENV} / {CLIENT_SECRET_FILE_ENV})"
            )
        env_token = os.environ.get(TOKEN_ENV)
        return StaticToken(env_token) if env_token else None

    def _token_endpoint(self) -> TokenEndpoint:
        """The token endpoint, scopes and audience the server advertises (public RPCs)."""
        metadata = self.call("GetOAuth2Metadata", {})
        url = metadata.get("tokenEndpoint", "")
        if not url:
            raise RuntimeError(
                f"{self.endpoint} advertises no token endpoint: is authentication on?"
            )
        config = self.call("GetPublicClientConfig", {})
        return TokenEndpoint(url, list(config.get("scopes", [])), str(config.get("audience", "")))

    def ssl_context(self) -> ssl.SSLContext:
        """What HTTPS requests (uploads, logs, the token endpoint) verify servers with."""
        if self._ssl is None:
            self._ssl = ssl_context(self.ca_cert)
        return self._ssl

    def _urlopen(self, request: urllib.request.Request) -> Any:
        context = self.ssl_context() if request.full_url.startswith("https:") else None
        return urllib.request.urlopen(request, timeout=self.timeout, context=context)

    def _http_failure(self, url: str, error: OSError) -> str:
        """An HTTP request's failure, saying which CA was trusted when it is about TLS."""
        reason = getattr(error, "reason", error)
        if isinstance(reason, ssl.SSLError):
            trusted = f"the CA in {self.ca_cert}" if self.ca_cert else "the system's roots"
            return f"{url}: TLS failed (trusting {trusted}): {reason}"
        return f"{url}: {reason}"

    def console_url(self, execution: Execution) -> str:
        """The execution's page in the web console: under `ALULA_CONSOLE_URL` when set, else on
        the admin endpoint itself, whose port sends browsers on to the console (as flytekit
        derives its links when its config names no console endpoint)."""
        base = os.environ.get(CONSOLE_ENV)
        if not base:
            host = self.endpoint
            for prefix in ("dns:///", "http://", "https://", "grpc://"):
                host = host.removeprefix(prefix)
            base = f"{'https' if self.tls else 'http'}://{host.rstrip('/')}"
        path = "/".join(
            quote(part, safe="")
            for part in (
                "projects",
                execution.project,
                "domains",
                execution.domain,
                "executions",
                execution.name,
            )
        )
        return f"{base.rstrip('/')}/console/{path}"

    def call(self, rpc: str, request: Json) -> Json:
        """One RPC of `alula.rpcs.RPCS` with its request and response as proto3 JSON (the
        SDK's own calls and every `alula get/create/update` verb)."""
        service, request_type, response_type = RPCS[rpc]
        data = _bridge.message_from_json(f"flyteidl.{request_type}", json.dumps(request))
        token = None
        if self.credentials is not None and rpc not in PUBLIC_RPCS:
            token = self.credentials.token()
        out = self._unary(f"/{service}/{rpc}", data, token)
        result: Json = json.loads(_bridge.message_to_json(f"flyteidl.{response_type}", out))
        return result

    def _unary(self, method: str, data: bytes, token: str | None) -> bytes:
        try:
            return self._send(method, data, token)
        except RpcError as e:
            if token is None or self.credentials is None or e.code != "UNAUTHENTICATED":
                raise
        # The token expired or was revoked early: one retry with a new one.
        return self._send(method, data, self.credentials.refresh())

    def _send(self, method: str, data: bytes, token: str | None) -> bytes:
        metadata = [("authorization", f"Bearer {token}")] if token else []
        return _bridge.grpc_unary(
            self.endpoint,
            method,
            data,
            self.timeout,
            tls=self.tls,
            ca_cert=self.ca_cert if self.tls else None,
            metadata=metadata,
        )

    def register(
        self,
        source: str | Path | ModuleType | Iterable[str | Path],
        version: str | None = None,
    ) -> Registration:
        """Upload the code of the given workflow file(s) (all in one folder, which becomes the
        bundle) and create every task, workflow and launch plan they define. Entities already
        registered identically count as created. A module without a file (a notebook's
        `sys.modules["__main__"]`) has its entities pickled instead (`alula.interactive`)."""
        if isinstance(source, ModuleType) and not getattr(source, "__file__", None):
            from alula.interactive import register_module

            return register_module(self, source)
        paths = [os.path.abspath(p) for p in _paths(source)]
        folders = {os.path.dirname(p) for p in paths}
        if len(folders) != 1:
            raise ValueError(f"files to register together must share a folder: {sorted(folders)}")
        entities = [e for p in paths for e in module_entities(load_module(p))]
        code = bundle(folders.pop())
        return self._publish(entities, code, version or self._content_version(code, entities))

    def _content_version(self, code: bytes, entities: list[Entity]) -> str:
        """The version naming exactly this bundle and these entities' specs, known before
        anything is sent (the bundle's URL adds nothing: its content is digested)."""
        return auto_version(code, serialize(entities, self._settings("auto", "")))

    def _publish(self, entities: list[Entity], code: bytes, version: str) -> Registration:
        """Uploads `code` and creates `entities` under `version` (what `register` and the
        notebook path of `alula.interactive` share)."""
        native_url = self.upload(code)
        serialized = serialize(entities, self._settings(version, native_url))
        for s in serialized:
            self._create(s)
        for e in entities:
            if isinstance(e, LaunchPlan):
                self._launch_plans[e.name] = (version, e.interface)
        return Registration(version, native_url, serialized)

    def upload(self, data: bytes, filename: str | None = None) -> str:
        """Upload `data` through the data proxy; returns its native URL."""
        md5 = hashlib.md5(data).digest()
        name = filename or f"fast{md5.hex()}.tar.gz"
        return self._put(name, md5, io.BytesIO(data), len(data))

    def upload_file(self, path: str | os.PathLike[str], filename: str | None = None) -> str:
        """Upload a local file through the data proxy, streamed from disk (a file of any size
        costs a buffer of memory); returns its native URL."""
        path = os.fspath(path)
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            md5 = _file_md5(f)
            f.seek(0)
            return self._put(filename or os.path.basename(path), md5, f, size)

    def upload_directory(self, path: str | os.PathLike[str]) -> str:
        """Upload every file of a local folder through the data proxy under one root named by
        the folder's content; returns the folder's native URL."""
        path = os.fspath(path)
        files: list[tuple[str, bytes]] = []
        for folder, _, names in os.walk(path):
            for name in names:
                full = os.path.join(folder, name)
                with open(full, "rb") as f:
                    files.append((os.path.relpath(full, path).replace(os.sep, "/"), _file_md5(f)))
        if not files:
            raise ValueError(f"cannot upload {path!r}: the folder has no files")
        files.sort()
        root = hashlib.md5(b"".join(n.encode() + b"\0" + m for n, m in files)).hexdigest()
        native = ""
        for relative, md5 in files:
            full = os.path.join(path, *relative.split("/"))
            with open(full, "rb") as f:
                url = self._put(relative, md5, f, os.path.getsize(full), root=root)
            native = url[: -len(relative) - 1]
        return native

    def _upload_value(self, local: str, is_dir: bool) -> str:
        """What the type engine calls for a local file or folder among an execution's inputs:
        the server's tasks read it from the server's storage, as flytekit arranges too."""
        return self.upload_directory(local) if is_dir else self.upload_file(local)

    def _put(self, filename: str, md5: bytes, body: IO[bytes], size: int, root: str = "") -> str:
        md5_b64 = base64.b64encode(md5).decode()
        request: Json = {
            "project": self.project,
            "domain": self.domain,
            "filename": filename,
            "contentMd5": md5_b64,
            "expiresIn": duration_json(600),
        }
        if root:
            request["filenameRoot"] = root
        location = self.call("CreateUploadLocation", request)
        # The URL may be presigned by S3: only headers outside its signature may be added. An
        # explicit Content-Type keeps urllib from announcing a form, which some S3-compatible
        # servers then parse instead of storing; Content-Length keeps a streamed body from
        # being sent chunked, which presigned PUTs refuse.
        headers = {
            "Content-MD5": md5_b64,
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size),
            **location.get("headers", {}),
        }
        put = urllib.request.Request(
            location["signedUrl"], data=body, headers=headers, method="PUT"
        )
        try:
            with self._urlopen(put) as response:
                response.read()
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace").strip()
            raise RuntimeError(
                f"upload to {location['signedUrl']} failed: HTTP {e.code}: {detail or e.reason}"
            ) from e
        except OSError as e:
            failure = self._http_failure(location["signedUrl"], e)
            raise RuntimeError(f"upload to {failure}") from e
        url: str = location["nativeUrl"]
        return url

    def _settings(self, version: str, native_url: str) -> SerializationSettings:
        return SerializationSettings(
            self.project, self.domain, version, self.image, fast_distribution=native_url
        )

    def _create(self, entity: Serialized) -> None:
        message = entity.message
        if entity.kind == LAUNCH_PLAN:
            request = {"id": message["id"], "spec": message["spec"]}
        else:
            request = {"id": message["template"]["id"], "spec": message}
        try:
            self.call(_CREATE[entity.kind], request)
        except RpcError as e:
            if e.code != "ALREADY_EXISTS":
                raise

    def execute(
        self,
        entity: str | Workflow | LaunchPlan | PythonFunctionTask,
        inputs: dict[str, Any] | None = None,
        *,
        wait: bool = False,
        name: str | None = None,
        version: str | None = None,
    ) -> Execution:
        """Start the launch plan `entity` (a workflow stands for its default launch plan)
        registered through this client; inputs it leaves out take the plan's defaults.

        An entity defined in a notebook, a REPL or `python -c` (no file a worker could import)
        is registered first, pickled, under a version named by its content: an unchanged one
        is not registered again (`alula.interactive`). A task of one runs on its own."""
        from alula.interactive import ensure_registered, is_interactive

        kind = "LAUNCH_PLAN"
        if not isinstance(entity, str) and version is None and is_interactive(entity):
            kind, lp_name, registered_version, interface = ensure_registered(self, entity)
        elif isinstance(entity, PythonFunctionTask):
            raise ValueError(
                f"{entity!r}: only tasks defined in a notebook or `python -c` run on their "
                "own; call it from a workflow registered with Remote.register"
            )
        else:
            lp_name, registered_version, interface = self._launch_plan(entity, version)
        values = dict(inputs or {})
        unknown = sorted(set(values) - set(interface.inputs))
        if unknown:
            raise ValueError(f"{lp_name} has no input(s) {unknown}: {list(interface.inputs)}")
        from alula.core.local import value_kind
        from alula.types.context import uploading

        kinds = [(n, value_kind(t)) for n, t in interface.inputs.items() if n in values]
        # Local files, folders, data sets and pickles among the inputs go to the server.
        with uploading(self._upload_value):
            literals = _bridge.encode_values(values, kinds)
        request: Json = {
            "project": self.project,
            "domain": self.domain,
            "spec": {
                "launchPlan": identifier_json(
                    kind,
                    self.project,
                    self.domain,
                    lp_name,
                    registered_version,
                ),
                "metadata": {"mode": "MANUAL", "principal": _principal()},
            },
            "inputs": json.loads(_bridge.message_to_json("flyteidl.core.LiteralMap", literals)),
        }
        if name:
            request["name"] = name
        created = self.call("CreateExecution", request)["id"]
        execution = Execution(created["project"], created["domain"], created["name"], interface)
        from alula.display import remember

        remember(self, execution, entity)  # what its notebook display reads and names
        if wait:
            self.wait(execution)
        return execution

    def _launch_plan(
        self, entity: str | Workflow | LaunchPlan, version: str | None
    ) -> tuple[str, str, Interface]:
        """The launch plan's full name, version and interface (a workflow's default launch
        plan has the workflow's name; a bare name may omit the module)."""
        if not isinstance(entity, str):
            if version is not None:
                return entity.name, version, entity.interface
            entity = entity.name
        names = [n for n in self._launch_plans if entity in (n, n.rsplit(".", 1)[-1])]
        if len(names) != 1:
            found = sorted(self._launch_plans)
            raise ValueError(
                f"launch plan {entity!r}: {'ambiguous' if names else 'not registered'} "
                f"through this client (registered: {found}); pass the entity and its version"
            )
        registered, interface = self._launch_plans[names[0]]
        return names[0], version or registered, interface

    def phase(self, execution: Execution) -> str:
        """The execution's phase name ("QUEUED", "RUNNING", "SUCCEEDED", ...)."""
        return str(self._get(execution).get("closure", {}).get("phase", "UNDEFINED"))

    def _get(self, execution: Execution) -> Json:
        return self.call("GetExecution", {"id": execution.id_json()})

    def wait(self, execution: Execution, timeout: float | None = None, poll: float = 0.2) -> Any:
        """Wait for the execution to end; returns its outputs as a local run does (None, the
        one output, or a tuple). Raises ExecutionFailed unless it SUCCEEDED, TimeoutError
        after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with still_running_on_interrupt(self, execution):
            while True:
                closure = self._get(execution).get("closure", {})
                phase = closure.get("phase", "UNDEFINED")
                if phase in TERMINAL_PHASES:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"execution {execution} still {phase} after {timeout}s")
                time.sleep(poll)
        return self._result(execution, closure)

    async def wait_async(
        self, execution: Execution, timeout: float | None = None, poll: float = 0.2
    ) -> Any:
        """`wait` for event loops (`await remote.wait_async(ex)` in a notebook cell): each
        status call runs on a thread and the pauses are `asyncio.sleep`, so the kernel stays
        responsive. An interrupt or cancellation leaves the execution running, and says so."""
        closure = await poll_until_done(self, execution, timeout, poll)
        return await asyncio.to_thread(self._result, execution, closure)

    def watch(self, execution: Execution, timeout: float | None = None, poll: float = 0.5) -> Any:
        """`wait`, showing the execution live in a notebook (nodes by phase, elapsed time, map
        progress, then its outputs or failure; status lines outside one), `alula.display`."""
        from alula.display import watch

        return watch(self, execution, poll, timeout)

    async def watch_async(
        self, execution: Execution, timeout: float | None = None, poll: float = 0.5
    ) -> Any:
        """`watch` for `await` in a notebook cell: the kernel stays responsive meanwhile."""
        from alula.display import watch_async

        return await watch_async(self, execution, poll, timeout)

    def _result(self, execution: Execution, closure: Json) -> Any:
        """The outputs of an execution whose closure is terminal, or its failure raised."""
        phase = closure.get("phase", "UNDEFINED")
        if phase != "SUCCEEDED":
            message = closure.get("error", {}).get("message") or closure.get(
                "abortMetadata", {}
            ).get("cause", "")
            raise ExecutionFailed(execution, phase, message)
        values = self.outputs(execution)
        if execution.interface is None:
            return values
        names = list(execution.interface.outputs)
        if not names:
            return None
        if len(names) == 1:
            return values[names[0]]
        result = tuple(values[n] for n in names)
        shape = execution.interface.output_tuple
        return shape(*result) if shape else result

    def outputs(self, execution: Execution) -> dict[str, Any]:
        """The outputs of a finished execution, name -> Python value (literal JSON when the
        handle does not know the workflow's interface)."""
        data = self.call("GetExecutionData", {"id": execution.id_json()})
        full: Json = data.get("fullOutputs", {})
        if execution.interface is None:
            return dict(full.get("literals", {}))
        from alula.core.local import value_kind

        kinds = [(n, value_kind(t)) for n, t in execution.interface.outputs.items()]
        encoded = _bridge.message_from_json("flyteidl.core.LiteralMap", json.dumps(full))
        return _bridge.decode_values(encoded, kinds)

    def terminate(self, execution: Execution, cause: str = "terminated by alula") -> None:
        self.call("TerminateExecution", {"id": execution.id_json(), "cause": cause})

    def logs(
        self,
        execution: Execution,
        node_id: str,
        attempt: int | None = None,
        stream: str = "stderr",
        index: int | None = None,
    ) -> str:
        """What attempt `attempt` (default: the last) of node `node_id` printed to `stream`
        ("stdout" or "stderr"), read through the log link its task events carry. A pod keeps
        one combined log (Kubernetes does not separate the streams): it answers either.

        For a map task, `index` names the element: its links are on the map node's task
        execution, one external resource per element, for the element's last attempt."""
        listed = self.call(
            "ListTaskExecutions",
            {
                "nodeExecutionId": {"nodeId": node_id, "executionId": execution.id_json()},
                "limit": 1000,
            },
        )
        attempts = {
            int(t.get("id", {}).get("retryAttempt", 0)): t for t in listed.get("taskExecutions", [])
        }
        if not attempts:
            raise LookupError(f"node {node_id} of execution {execution} has no task attempts")
        if index is None:
            chosen = max(attempts) if attempt is None else attempt
            if chosen not in attempts:
                raise LookupError(
                    f"node {node_id} of execution {execution} has no attempt {chosen} "
                    f"(attempts: {sorted(attempts)})"
                )
            what = f"attempt {chosen} of node {node_id}"
            logs = attempts[chosen].get("closure", {}).get("logs", [])
        else:
            what, logs = _element_logs(attempts[max(attempts)], node_id, index, attempt)
        links = {log.get("name", ""): log.get("uri", "") for log in logs}
        uri = links.get(stream) or links.get("output")
        if not uri:
            raise LookupError(f"{what} links no {stream} log (links: {sorted(links)})")
        return self.read_log(uri).decode(errors="replace")

    def read_log(self, uri: str, offset: int = 0) -> bytes:
        """The bytes of the log link `uri` after the first `offset` (the server's log route
        answers `?offset=` with only what is new: how `alula logs -f` follows an attempt)."""
        if offset:
            uri += ("&" if "?" in uri else "?") + f"offset={offset}"
        request = urllib.request.Request(uri, headers=self._log_headers(uri))
        try:
            with self._urlopen(request) as response:
                body: bytes = response.read()
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace").strip()
            raise RuntimeError(f"reading {uri} failed: HTTP {e.code}: {detail or e.reason}") from e
        except OSError as e:
            raise RuntimeError(f"reading {self._http_failure(uri, e)}") from e
        return body

    def _log_headers(self, uri: str) -> dict[str, str]:
        """The bearer for the server's own log endpoint; a link to anywhere else (a cloud
        logging console) must not receive the token."""
        if self.credentials is None:
            return {}
        link = urllib.parse.urlsplit(uri)
        host = self.endpoint.strip().removeprefix("dns:///")
        server = urllib.parse.urlsplit(host if "://" in host else f"//{host}")
        if link.path.startswith("/api/v1/logs") and link.hostname == server.hostname:
            refuse_plaintext_credentials(
                "a token",
                uri,
                tls=link.scheme == "https",
                allowed=self.allow_plaintext_credentials,
            )
            return {"Authorization": f"Bearer {self.credentials.token()}"}
        return {}


def _element_logs(
    task_execution: dict[str, Any], node_id: str, index: int, attempt: int | None
) -> tuple[str, list[dict[str, Any]]]:
    """The log links of element `index` of a map node, from the external resources of its task
    execution (proto3 JSON leaves out zeros: a missing index or retry attempt is 0)."""
    metadata = task_execution.get("closure", {}).get("metadata", {})
    resources = {int(r.get("index", 0)): r for r in metadata.get("externalResources", [])}
    if index not in resources:
        raise LookupError(f"node {node_id} has no element {index} (elements: {sorted(resources)})")
    resource = resources[index]
    retry = int(resource.get("retryAttempt", 0))
    if attempt is not None and attempt != retry:
        raise LookupError(
            f"element {index} of node {node_id} links only its last attempt ({retry}), "
            f"not attempt {attempt}"
        )
    return f"attempt {retry} of element {index} of node {node_id}", list(resource.get("logs", []))


def _file_md5(f: IO[bytes]) -> bytes:
    digest = hashlib.md5()
    while chunk := f.read(1 << 20):
        digest.update(chunk)
    return digest.digest()


def _principal() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "alula"


__all__ = [
    "DEFAULT_ENDPOINT",
    "Execution",
    "ExecutionFailed",
    "Registration",
    "Remote",
    "RpcError",
    "auto_version",
    "bundle",
]
