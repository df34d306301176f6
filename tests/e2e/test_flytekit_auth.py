"""The real flytekit 1.16.31's authentication flows against alula-server, unchanged:

- `ClientSecret` against the built-in authorization server, over TLS (`insecure: false`,
  `caCertFilePath`): `pyflyte register` and `pyflyte run --remote --wait` succeed and the
  execution's principal is the client; without a token every call is UNAUTHENTICATED (flytekit's
  own FlyteAuthenticationException); a viewer's registration is PERMISSION_DENIED.
- `Pkce`, `DeviceFlow` and `ExternalCommand` against a server whose identity provider is the
  test provider (tests/oidc_provider), the logins done in headless Chromium; tokens signed by
  another key, expired, for another audience or unsigned (`alg: none`) are refused.

One server per mode (module fixtures); pyflyte runs in a subprocess with `--config`."""

from __future__ import annotations

import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
from auth_support import (
    PYFLYTE,
    AuthServer,
    MachineClient,
    Tls,
    create_client,
    flytekit_env,
    make_tls,
    pyflyte,
    start_auth_server,
    write_flytekit_config,
)
from conftest import _free_port
from flyteidl.admin import common_pb2, execution_pb2, project_pb2, signal_pb2, task_pb2
from flyteidl.core import identifier_pb2
from flyteidl.service import (
    admin_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    dataproxy_pb2,
    dataproxy_pb2_grpc,
    identity_pb2,
    identity_pb2_grpc,
    signal_pb2_grpc,
)
from flytekit.clients.auth_helper import get_channel, wrap_exceptions_channel
from flytekit.clients.friendly import SynchronousFlyteClient
from flytekit.configuration import Config, PlatformConfig
from flytekit.exceptions.user import FlyteAuthenticationException
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.remote import FlyteRemote
from oidc_provider import Client, Provider, User
from oidc_provider.browser import complete_device_login, write_browser_command

FLOWS = Path(__file__).parent / "auth_flows"
PROJECT, DOMAIN = "flytesnacks", "development"
SUCCEEDED = re.compile(r"Execution (\w+) has succeeded")
DEVICE_URL = re.compile(r"(http://127\.0\.0\.1:\d+/device\?user_code=[A-Z]{4}-[A-Z]{4})")


def output(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the `auth_flows` package, pyflyte's working directory."""
    root = tmp_path_factory.mktemp("auth-src")
    shutil.copytree(FLOWS, root / "auth_flows", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def execution_of(config: Path, done: subprocess.CompletedProcess[str]) -> Any:
    """The execution `pyflyte run --remote --wait` reported as succeeded, read back with the
    same config."""
    assert done.returncode == 0, output(done)
    name = SUCCEEDED.search(done.stdout)
    assert name, output(done)
    remote = FlyteRemote(
        Config.auto(config_file=str(config)), default_project=PROJECT, default_domain=DOMAIN
    )
    return remote.fetch_execution(name=name.group(1))


def run_greeting(config: Path, source: Path, name: str, **env: str) -> Any:
    done = pyflyte(
        config,
        "run",
        "--remote",
        "--wait",
        "auth_flows/greeting.py",
        "greet",
        "--name",
        name,
        cwd=source,
        env=flytekit_env(**env),
    )
    execution = execution_of(config, done)
    assert execution.closure.phase == WorkflowExecutionPhase.SUCCEEDED
    return execution


# -- the built-in authorization server, over TLS ----------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def builtin(tmp_path_factory: pytest.TempPathFactory, tls: Tls) -> Iterator[AuthServer]:
    running = start_auth_server(
        tmp_path_factory.mktemp("builtin"), env={"ALULA_AUTH": "builtin"}, tls=tls
    )
    try:
        yield running
    finally:
        code = running.stop()
    assert code == 0, f"alula-server exited with {code}:\n{running.log()}"


@pytest.fixture(scope="module")
def developer(builtin: AuthServer) -> MachineClient:
    return create_client(builtin, "dev", "developer", project=PROJECT)


@pytest.fixture(scope="module")
def viewer(builtin: AuthServer) -> MachineClient:
    return create_client(builtin, "viewer", "viewer", project=PROJECT)


def client_secret_config(server: AuthServer, client: MachineClient, work: Path) -> Path:
    return write_flytekit_config(
        work / f"{client.client_id}.yaml",
        endpoint=server.grpc_target,
        tls=server.tls,
        auth_type="ClientSecret",
        client=client,
    )


def test_client_secret_registers_and_runs_over_tls(
    builtin: AuthServer, developer: MachineClient, source: Path, tmp_path: Path
) -> None:
    config = client_secret_config(builtin, developer, tmp_path)
    registered = pyflyte(config, "register", "--version", "auth-v1", "auth_flows", cwd=source)
    assert registered.returncode == 0, output(registered)
    assert "Successfully registered" in registered.stdout, output(registered)

    execution = run_greeting(config, source, "tls")
    # The principal comes from the token, not from what the client said.
    assert execution.spec.metadata.principal == developer.client_id
    assert execution.outputs["o0"] == len("HELLO TLS")


def test_the_token_endpoint_and_discovery(builtin: AuthServer, developer: MachineClient) -> None:
    assert builtin.tls is not None
    ca = str(builtin.tls.ca_cert)
    channel = grpc.secure_channel(
        builtin.grpc_target, grpc.ssl_channel_credentials(builtin.tls.ca_cert.read_bytes())
    )
    with channel:
        stub = auth_pb2_grpc.AuthMetadataServiceStub(channel)
        metadata = stub.GetOAuth2Metadata(auth_pb2.OAuth2MetadataRequest(), timeout=10)
        assert metadata.issuer == builtin.http_url
        assert metadata.token_endpoint == f"{builtin.http_url}/oauth2/token"
        assert metadata.jwks_uri == f"{builtin.http_url}/oauth2/jwks"
        assert "client_credentials" in metadata.grant_types_supported
        stub.GetPublicClientConfig(auth_pb2.PublicClientAuthConfigRequest(), timeout=10)

    keys = requests.get(metadata.jwks_uri, verify=ca, timeout=10).json()["keys"]
    assert keys and all(key["kty"] == "EC" for key in keys)
    token = requests.post(
        metadata.token_endpoint,
        data={"grant_type": "client_credentials"},
        auth=(developer.client_id, developer.client_secret),
        verify=ca,
        timeout=10,
    )
    assert token.status_code == 200, token.text
    assert token.json()["token_type"].lower() == "bearer" and token.json()["expires_in"] > 0
    wrong = requests.post(
        metadata.token_endpoint,
        data={"grant_type": "client_credentials"},
        auth=(developer.client_id, developer.client_secret + "x"),
        verify=ca,
        timeout=10,
    )
    assert wrong.status_code in (400, 401) and wrong.json()["error"] == "invalid_client"
    assert developer.client_secret not in wrong.text

    # REST: no token is a 401 that says how to authenticate; the probes stay open.
    refused = requests.get(f"{builtin.http_url}/api/v1/projects", verify=ca, timeout=10)
    assert refused.status_code == 401
    assert refused.headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert requests.get(f"{builtin.http_url}/healthz", verify=ca, timeout=10).status_code == 200
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    listed = requests.get(
        f"{builtin.http_url}/api/v1/projects", headers=bearer, verify=ca, timeout=10
    )
    assert listed.status_code == 200, listed.text


def _calls_without_token() -> list[tuple[str, Callable[[grpc.Channel], Any]]]:
    """One call of each served service (reads and writes), none with a token."""
    task_id = identifier_pb2.Identifier(
        resource_type=identifier_pb2.TASK, project=PROJECT, domain=DOMAIN, name="t", version="v"
    )
    execution_id = identifier_pb2.WorkflowExecutionIdentifier(
        project=PROJECT, domain=DOMAIN, name="nope"
    )
    admin = admin_pb2_grpc.AdminServiceStub
    return [
        ("ListProjects", lambda c: admin(c).ListProjects(project_pb2.ProjectListRequest())),
        (
            "ListTasks",
            lambda c: admin(c).ListTasks(
                common_pb2.ResourceListRequest(
                    id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name="t"),
                    limit=10,
                )
            ),
        ),
        ("CreateTask", lambda c: admin(c).CreateTask(task_pb2.TaskCreateRequest(id=task_id))),
        (
            "CreateExecution",
            lambda c: admin(c).CreateExecution(
                execution_pb2.ExecutionCreateRequest(project=PROJECT, domain=DOMAIN, name="x")
            ),
        ),
        (
            "GetExecution",
            lambda c: admin(c).GetExecution(
                execution_pb2.WorkflowExecutionGetRequest(id=execution_id)
            ),
        ),
        (
            "CreateUploadLocation",
            lambda c: dataproxy_pb2_grpc.DataProxyServiceStub(c).CreateUploadLocation(
                dataproxy_pb2.CreateUploadLocationRequest(
                    project=PROJECT, domain=DOMAIN, filename="f"
                )
            ),
        ),
        (
            "ListSignals",
            lambda c: signal_pb2_grpc.SignalServiceStub(c).ListSignals(
                signal_pb2.SignalListRequest(workflow_execution_id=execution_id, limit=10)
            ),
        ),
        (
            "UserInfo",
            lambda c: identity_pb2_grpc.IdentityServiceStub(c).UserInfo(
                identity_pb2.UserInfoRequest()
            ),
        ),
    ]


def test_without_a_token_every_call_is_unauthenticated(
    builtin: AuthServer, source: Path, tmp_path: Path
) -> None:
    assert builtin.tls is not None
    cfg = PlatformConfig(
        endpoint=builtin.grpc_target, insecure=False, ca_cert_file_path=str(builtin.tls.ca_cert)
    )
    # flytekit's channel and error mapping, without its authenticator: no token at all.
    channel = wrap_exceptions_channel(cfg, get_channel(cfg))
    for name, call in _calls_without_token():
        with pytest.raises(FlyteAuthenticationException) as refused:
            call(channel)
        cause = refused.value.__cause__
        assert isinstance(cause, grpc.RpcError), name
        assert cause.code() == grpc.StatusCode.UNAUTHENTICATED, (name, cause)

    # pyflyte with a credential helper that yields no token: flytekit's own error, and the
    # status it got.
    config = write_flytekit_config(
        tmp_path / "no-token.yaml",
        endpoint=builtin.grpc_target,
        tls=builtin.tls,
        auth_type="ExternalCommand",
        command=[sys.executable, "-c", "print('')"],
    )
    done = pyflyte(config, "register", "--version", "auth-none", "auth_flows", cwd=source)
    assert done.returncode != 0, output(done)
    assert "UNAUTHENTICATED" in output(done), output(done)


def test_a_viewer_cannot_register_but_can_read(
    builtin: AuthServer,
    viewer: MachineClient,
    developer: MachineClient,
    source: Path,
    tmp_path: Path,
) -> None:
    config = client_secret_config(builtin, viewer, tmp_path)
    done = pyflyte(config, "register", "--version", "auth-viewer", "auth_flows", cwd=source)
    assert done.returncode != 0, output(done)
    assert "PERMISSION_DENIED" in output(done), output(done)
    assert viewer.client_secret not in output(done)

    remote = FlyteRemote(
        Config.auto(config_file=str(config)), default_project=PROJECT, default_domain=DOMAIN
    )
    projects = remote.client.list_projects_paginated(limit=10)[0]
    assert PROJECT in [p.id for p in projects]


def test_the_server_log_holds_no_secret(
    builtin: AuthServer, developer: MachineClient, viewer: MachineClient
) -> None:
    assert builtin.tls is not None
    token = requests.post(
        f"{builtin.http_url}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(developer.client_id, developer.client_secret),
        verify=str(builtin.tls.ca_cert),
        timeout=10,
    ).json()["access_token"]
    requests.get(
        f"{builtin.http_url}/api/v1/projects",
        headers={"Authorization": f"Bearer {token}"},
        verify=str(builtin.tls.ca_cert),
        timeout=10,
    )
    log = builtin.log()
    assert log, "the server logged nothing at all"
    for secret in (developer.client_secret, viewer.client_secret, token, token.split(".")[2]):
        assert secret not in log


# -- an external OpenID Connect provider -------------------------------------------------------

ALICE_PASSWORD = "alice-in-wonderland"


@pytest.fixture(scope="module")
def redirect_uri() -> str:
    """flytekit's callback: the public client config advertises it, flytekit listens on it."""
    return f"http://localhost:{_free_port()}/callback"


@pytest.fixture(scope="module")
def provider(redirect_uri: str) -> Iterator[Provider]:
    with Provider(
        users={
            "alice": User(ALICE_PASSWORD, "alice@example.com", "Alice", ("ml",)),
            "mallory": User("mallory-pw", "mallory@example.com", "Mallory", ("guests",)),
        },
        clients={"flytectl": Client(redirect_uris=[redirect_uri])},
        audience="alula",
    ) as running:
        yield running


@pytest.fixture(scope="module")
def oidc(
    tmp_path_factory: pytest.TempPathFactory, provider: Provider, redirect_uri: str
) -> Iterator[AuthServer]:
    settings = f"""
[auth]
mode = "oidc"
issuer = "{provider.issuer}"
audience = "alula"
cli_client_id = "flytectl"
redirect_uri = "{redirect_uri}"
scopes = ["openid", "profile", "email", "offline_access"]

[[auth.bindings]]
subject = "group:ml"
project = "{PROJECT}"
domain = "*"
role = "developer"
"""
    running = start_auth_server(tmp_path_factory.mktemp("oidc"), toml=settings)
    try:
        yield running
    finally:
        code = running.stop()
    assert code == 0, f"alula-server exited with {code}:\n{running.log()}"


def token_config(server: AuthServer, token: str, path: Path) -> Path:
    """flytekit's ExternalCommand: a command that prints `token`."""
    return write_flytekit_config(
        path,
        endpoint=server.grpc_target,
        tls=server.tls,
        auth_type="ExternalCommand",
        command=[sys.executable, "-c", f"print({token!r})"],
    )


def test_discovery_advertises_the_provider(oidc: AuthServer, provider: Provider) -> None:
    with grpc.insecure_channel(oidc.grpc_target) as channel:
        stub = auth_pb2_grpc.AuthMetadataServiceStub(channel)
        metadata = stub.GetOAuth2Metadata(auth_pb2.OAuth2MetadataRequest(), timeout=10)
        client = stub.GetPublicClientConfig(auth_pb2.PublicClientAuthConfigRequest(), timeout=10)
    assert metadata.issuer == provider.issuer
    assert metadata.authorization_endpoint == provider.url("/authorize")
    assert metadata.token_endpoint == provider.url("/token")
    assert metadata.device_authorization_endpoint == provider.url("/device/code")
    assert client.client_id == "flytectl"
    assert client.audience == "alula"


def test_pkce_through_the_login_page(
    oidc: AuthServer, provider: Provider, source: Path, tmp_path: Path
) -> None:
    config = write_flytekit_config(
        tmp_path / "pkce.yaml", endpoint=oidc.grpc_target, auth_type="Pkce"
    )
    browser = write_browser_command(tmp_path, "alice", ALICE_PASSWORD)
    before = len(provider.token_requests)
    done = pyflyte(
        config,
        "run",
        "--remote",
        "--wait",
        "auth_flows/greeting.py",
        "greet",
        "--name",
        "pkce",
        cwd=source,
        env=flytekit_env(BROWSER=str(browser)),
    )
    browser_log = (
        (tmp_path / "browser.log").read_text() if (tmp_path / "browser.log").exists() else ""
    )
    assert done.returncode == 0, output(done) + browser_log
    grants = [r["grant_type"] for r in provider.token_requests[before:]]
    assert "authorization_code" in grants, grants
    execution = execution_of(token_config(oidc, provider.mint("alice"), tmp_path / "t.yaml"), done)
    assert execution.closure.phase == WorkflowExecutionPhase.SUCCEEDED
    assert execution.spec.metadata.principal == "alice"


def test_device_flow(oidc: AuthServer, provider: Provider, source: Path, tmp_path: Path) -> None:
    config = write_flytekit_config(
        tmp_path / "device.yaml", endpoint=oidc.grpc_target, auth_type="DeviceFlow"
    )
    proc = subprocess.Popen(
        [str(PYFLYTE), "--config", str(config), "run", "--remote", "--wait"]
        + ["auth_flows/greeting.py", "greet", "--name", "device"],
        cwd=source,
        env=flytekit_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    urls: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            for url in DEVICE_URL.findall(line):
                urls.put(url)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    approved = 0
    deadline = time.monotonic() + 300
    try:
        # Sign in at every verification URL pyflyte prints (one per flow it starts).
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                url = urls.get(timeout=0.5)
            except queue.Empty:
                continue
            complete_device_login(url, "alice", ALICE_PASSWORD)
            approved += 1
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(timeout=10)
    text = "".join(lines)
    assert approved >= 1, text
    done = subprocess.CompletedProcess(proc.args, proc.returncode, text, "")
    execution = execution_of(token_config(oidc, provider.mint("alice"), tmp_path / "t.yaml"), done)
    assert execution.closure.phase == WorkflowExecutionPhase.SUCCEEDED
    assert execution.spec.metadata.principal == "alice"


def test_external_command_token(
    oidc: AuthServer, provider: Provider, source: Path, tmp_path: Path
) -> None:
    config = token_config(oidc, provider.mint("alice"), tmp_path / "command.yaml")
    execution = run_greeting(config, source, "command")
    assert execution.spec.metadata.principal == "alice"


def _client_with_token(server: AuthServer, token: str) -> SynchronousFlyteClient:
    """flytekit's own client, its ExternalCommand authenticator handing out `token`."""
    return SynchronousFlyteClient(
        PlatformConfig(
            endpoint=server.grpc_target,
            insecure=True,
            auth_mode="ExternalCommand",
            command=[sys.executable, "-c", f"print({token!r})"],
        )
    )


@pytest.mark.parametrize(
    "kind", ["another key", "expired", "another audience", "alg none", "another issuer"]
)
def test_bad_tokens_are_refused(oidc: AuthServer, provider: Provider, kind: str) -> None:
    tokens = {
        "another key": lambda: provider.mint("alice", key="other"),
        "expired": lambda: provider.mint("alice", exp=int(time.time()) - 3600, iat=0, nbf=0),
        "another audience": lambda: provider.mint("alice", aud="not-alula"),
        "alg none": lambda: provider.mint("alice", alg="none"),
        "another issuer": lambda: provider.mint("alice", iss="http://127.0.0.1:1"),
    }
    token = tokens[kind]()
    with pytest.raises(FlyteAuthenticationException) as refused:
        _client_with_token(oidc, token).list_projects_paginated(limit=10)
    cause = refused.value.__cause__
    assert isinstance(cause, grpc.RpcError) and cause.code() == grpc.StatusCode.UNAUTHENTICATED
    # The refusal names no token.
    assert token not in (cause.details() or "")
    # The same user with a good token gets in: what was refused is the token.
    good = _client_with_token(oidc, provider.mint("alice"))
    assert good.list_projects_paginated(limit=10)[0]


def test_rotated_provider_keys_and_no_role(oidc: AuthServer, provider: Provider) -> None:
    provider.rotate()
    rotated = _client_with_token(oidc, provider.mint("alice"))
    assert rotated.list_projects_paginated(limit=10)[0]

    # mallory signs in fine but has no role here: PERMISSION_DENIED on a write.
    channel = grpc.insecure_channel(oidc.grpc_target)
    with channel:
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        with pytest.raises(grpc.RpcError) as denied:
            stub.CreateExecution(
                execution_pb2.ExecutionCreateRequest(project=PROJECT, domain=DOMAIN, name="m"),
                metadata=[("authorization", f"Bearer {provider.mint('mallory')}")],
                timeout=10,
            )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert PROJECT in (denied.value.details() or "")
