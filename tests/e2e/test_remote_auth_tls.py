"""Alula's own client against a server with the built-in authorization server and TLS on both
ports: `Remote` with a CA file and client credentials registers and runs a workflow to
SUCCEEDED (uploads through the signed HTTPS URL with the same CA); without credentials every
call is UNAUTHENTICATED; trusting another CA (or only the system's) it fails with a TLS
message naming what it trusted; `alula run --remote` takes all of it from the environment, and
`alula start --auth --tls-cert ...` writes that environment (`<data>/alula-client.env`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from auth_support import AuthServer, MachineClient, Tls, create_client, make_tls, start_auth_server
from conftest import _free_port

from alula._native import RpcError
from alula.remote import Remote

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "examples" / "hello.py"
ALULA = Path(sys.executable).parent / "alula"
TIMEOUT_S = 90


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tls: Tls) -> Iterator[AuthServer]:
    running = start_auth_server(
        tmp_path_factory.mktemp("remote-auth"), env={"ALULA_AUTH": "builtin"}, tls=tls
    )
    try:
        yield running
    finally:
        code = running.stop()
    assert code == 0, f"alula-server exited with {code}:\n{running.log()}"


@pytest.fixture(scope="module")
def client(server: AuthServer) -> MachineClient:
    return create_client(server, "remote-e2e", "admin")


def https_endpoint(server: AuthServer) -> str:
    return f"https://127.0.0.1:{server.server.grpc_port}"


def test_registers_and_runs_over_tls_with_client_credentials(
    server: AuthServer, tls: Tls, client: MachineClient
) -> None:
    remote = Remote(
        https_endpoint(server),
        ca_cert=str(tls.ca_cert),
        client_id=client.client_id,
        client_secret=client.client_secret,
    )
    assert client.client_secret not in repr(remote.credentials)
    remote.register(HELLO)
    execution = remote.execute("wf", {"name": "TLS"})
    assert remote.wait(execution, timeout=TIMEOUT_S) == "Hello, TLS!"
    assert remote.phase(execution) == "SUCCEEDED"
    assert remote.console_url(execution).startswith("https://")


def test_credentials_and_tls_come_from_the_environment(
    server: AuthServer, tls: Tls, client: MachineClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALULA_ENDPOINT", f"127.0.0.1:{server.server.grpc_port}")
    monkeypatch.setenv("ALULA_INSECURE", "0")
    monkeypatch.setenv("ALULA_CA_CERT", str(tls.ca_cert))
    monkeypatch.setenv("ALULA_CLIENT_ID", client.client_id)
    monkeypatch.setenv("ALULA_CLIENT_SECRET_FILE", str(client.secret_file))
    remote = Remote()
    assert remote.tls
    # CreateUploadLocation needs the token; the PUT goes to the HTTPS port with the CA.
    native_url = remote.upload(b"uploaded over TLS")
    assert native_url.endswith(".tar.gz")


def test_without_credentials_calls_are_unauthenticated(server: AuthServer, tls: Tls) -> None:
    remote = Remote(https_endpoint(server), ca_cert=str(tls.ca_cert))
    with pytest.raises(RpcError) as raised:
        remote.upload(b"no token")
    assert raised.value.code == "UNAUTHENTICATED"


def test_a_bad_token_is_unauthenticated(server: AuthServer, tls: Tls) -> None:
    remote = Remote(https_endpoint(server), ca_cert=str(tls.ca_cert), token="not-a-jwt")
    with pytest.raises(RpcError) as raised:
        remote.upload(b"bad token")
    assert raised.value.code == "UNAUTHENTICATED"
    assert "not-a-jwt" not in str(raised.value)


def test_an_untrusted_certificate_fails_with_a_tls_message(
    server: AuthServer, client: MachineClient, tmp_path: Path
) -> None:
    other = make_tls(tmp_path / "other")
    remote = Remote(
        https_endpoint(server),
        ca_cert=str(other.ca_cert),
        client_id=client.client_id,
        client_secret=client.client_secret,
    )
    with pytest.raises(RpcError) as raised:
        remote.upload(b"x")
    assert raised.value.code == "UNAVAILABLE"
    message = str(raised.value)
    assert f"trusting the CA in {other.ca_cert}" in message, message
    assert "certificate" in message.lower(), message
    assert client.client_secret not in message

    # No CA file: the system's roots, which do not include the test CA.
    system = Remote(https_endpoint(server), client_id="x", client_secret="y")
    with pytest.raises(RpcError) as raised:
        system.upload(b"x")
    assert "trusting the system's root certificates" in str(raised.value)


def test_alula_run_remote_uses_the_environment(
    server: AuthServer, tls: Tls, client: MachineClient
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALULA_")}
    env.update(
        ALULA_ENDPOINT=https_endpoint(server),
        ALULA_CA_CERT=str(tls.ca_cert),
        ALULA_CLIENT_ID=client.client_id,
        ALULA_CLIENT_SECRET=client.client_secret,
    )
    result = subprocess.run(
        [ALULA, "run", "--remote", str(HELLO), "wf", "--name", "CLI"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Hello, CLI!" in output
    assert client.client_secret not in output


def read_env_file(path: Path, timeout: float = 180) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} was not written"
        time.sleep(0.2)
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_alula_start_writes_the_environment_of_a_tls_client(
    tmp_path: Path, tls: Tls, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    grpc_port, http_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALULA_")}
    log = (tmp_path / "start.log").open("wb")
    proc = subprocess.Popen(
        [
            ALULA,
            "start",
            "--auth",
            "--data",
            str(data),
            "--grpc-port",
            str(grpc_port),
            "--http-port",
            str(http_port),
            "--tls-cert",
            str(tls.cert),
            "--tls-key",
            str(tls.key),
            "--tls-ca",
            str(tls.ca_cert),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        client_env = read_env_file(data / "alula-client.env")
        assert client_env["ALULA_CA_CERT"] == str(tls.ca_cert.resolve())
        for key in list(os.environ):
            if key.startswith("ALULA_"):
                monkeypatch.delenv(key)
        for key, value in client_env.items():
            monkeypatch.setenv(key, value)
        remote = Remote()
        assert remote.tls and remote.credentials is not None
        remote.register(HELLO)
        execution = remote.execute("wf", {"name": "start"})
        assert remote.wait(execution, timeout=TIMEOUT_S) == "Hello, start!"

        monkeypatch.delenv("ALULA_CLIENT_ID")
        anonymous = Remote()
        assert anonymous.credentials is None
        with pytest.raises(RpcError) as raised:
            anonymous.upload(b"no token")
        assert raised.value.code == "UNAUTHENTICATED"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
