"""`alula auth ...` through the CLI against a temporary data folder: clients (secret printed
once, never listed, duplicates refused, revocation), role bindings, key rotation and the audit
log. That the printed secret gets a token is the e2e tests' job (tests/e2e)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _alula(data: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "alula.cli", "auth", *args, "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ok:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0, result.stdout
    return result


def _field(output: str, name: str) -> str:
    for line in output.splitlines():
        if line.startswith(f"{name}: "):
            return line.removeprefix(f"{name}: ")
    raise AssertionError(f"no {name} in {output}")


def test_clients_are_created_listed_and_revoked(tmp_path: Path) -> None:
    created = _alula(tmp_path, "create-client", "ci", "--role", "runner").stdout
    assert _field(created, "client_id") == "ci"
    secret = _field(created, "client_secret")
    assert len(secret) >= 40
    assert "authType: ClientSecret" in created

    duplicate = _alula(tmp_path, "create-client", "ci", ok=False)
    assert "exists" in duplicate.stderr
    assert secret not in duplicate.stdout + duplicate.stderr

    listed = _alula(tmp_path, "list-clients").stdout
    assert "ci" in listed and "active" in listed
    assert secret not in listed and "sha256$" not in listed

    _alula(tmp_path, "revoke-client", "ci")
    assert "revoked" in _alula(tmp_path, "list-clients").stdout
    assert "revoked already" in _alula(tmp_path, "revoke-client", "ci", ok=False).stderr


def test_bindings_are_granted_and_revoked(tmp_path: Path) -> None:
    _alula(tmp_path, "create-client", "deployer", "--role", "developer", "--project", "p1")
    _alula(tmp_path, "grant", "group:ml", "viewer", "--domain", "production")
    bindings = _alula(tmp_path, "bindings").stdout.splitlines()
    assert any(
        line.startswith("client:deployer") and "p1" in line and "developer" in line
        for line in bindings
    ), bindings
    assert any(
        line.startswith("group:ml") and "production" in line and "viewer" in line
        for line in bindings
    ), bindings

    _alula(tmp_path, "revoke", "group:ml", "--domain", "production")
    assert "group:ml" not in _alula(tmp_path, "bindings").stdout
    assert "no role" in _alula(tmp_path, "revoke", "group:ml", ok=False).stderr
    # argparse refuses an unknown role before the server's code sees it.
    assert _alula(tmp_path, "grant", "group:ml", "owner", ok=False).returncode == 2
    assert "team:ml" in _alula(tmp_path, "grant", "team:ml", "viewer", ok=False).stderr


def test_keys_rotate_and_the_audit_log_reads(tmp_path: Path) -> None:
    assert "new signing key" in _alula(tmp_path, "rotate-key").stdout
    audit = _alula(tmp_path, "audit", "--project", "flytesnacks", "--limit", "10").stdout
    assert audit.startswith("TIME")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_start_with_auth_writes_a_client_secret_config(tmp_path: Path) -> None:
    import signal
    import stat
    import time

    args = ["--data", str(tmp_path), "--grpc-port", str(_free_port())]
    args += ["--http-port", str(_free_port()), "--workers", "0"]
    server = subprocess.Popen(
        [sys.executable, "-m", "alula.cli", "start", "--auth", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    config = tmp_path / "flytekit-config.yaml"
    try:
        deadline = time.monotonic() + 60
        while not config.exists() and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert config.exists(), "alula start --auth wrote no flytekit config"
        text = config.read_text()
        secret_file = tmp_path / "auth" / "alula-admin.secret"
        assert "authType: ClientSecret" in text
        assert "clientId: alula-admin" in text
        assert f"clientSecretLocation: {secret_file.resolve()}" in text
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        env = (tmp_path / "alula-client.env").read_text()
        assert "ALULA_CLIENT_ID=alula-admin" in env
        secret = secret_file.read_text()
        assert secret not in text and secret not in env
        listed = _alula(tmp_path, "list-clients").stdout
        assert "alula-admin" in listed
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=60)
    assert "auth           builtin" in output, output
    assert secret not in output


def test_start_refuses_a_public_address_without_auth(tmp_path: Path) -> None:
    args = ["--data", str(tmp_path), "--host", "0.0.0.0"]
    args += ["--grpc-port", str(_free_port()), "--http-port", str(_free_port())]
    result = subprocess.run(
        [sys.executable, "-m", "alula.cli", "start", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "insecure-no-auth" in result.stderr, result.stderr
