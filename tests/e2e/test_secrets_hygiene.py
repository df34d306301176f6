"""No secret or token leaks into the server's log, its metrics or the client listing (issue 15).

alula-server runs with the built-in authorization server and every module's debug logging.
A machine client gets tokens (`POST /oauth2/token`), makes successful REST and gRPC calls
with them, and the failures a server logs most about happen too: a wrong client secret, a
token whose signature was tampered with, a token that has expired, a token under flytekit's
`flyte-authorization` key. Then neither the client secret, nor its stored hash, nor any token
(nor a token's signature on its own) may appear in the log, in `/metrics`, in the error
replies, or in `alula-server auth list-clients`."""

from __future__ import annotations

import base64
import json
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
from auth_support import AuthServer, create_client, server_cli, start_auth_server
from flyteidl.admin import project_pb2  # type: ignore[import-untyped]
from flyteidl.service import admin_pb2_grpc  # type: ignore[import-untyped]

# Short-lived tokens, and no clock skew allowed, so that one expires while the test waits.
TOKEN_LIFETIME_S = 2
SETTINGS = f"""
[auth]
mode = "builtin"
token_lifetime_seconds = {TOKEN_LIFETIME_S}
leeway_seconds = 0
authorization_metadata_key = "flyte-authorization"
"""


def http(
    server: AuthServer,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"{server.http_url}{path}", data=body, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as refused:
        return int(refused.code), bytes(refused.read())


def fetch_token(server: AuthServer, client_id: str, secret: str) -> tuple[int, dict[str, Any]]:
    basic = base64.b64encode(
        f"{urllib.parse.quote(client_id)}:{urllib.parse.quote(secret)}".encode()
    ).decode()
    status, body = http(
        server,
        "POST",
        "/oauth2/token",
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        body=b"grant_type=client_credentials",
    )
    return status, json.loads(body)


def list_projects_rest(server: AuthServer, token: str) -> tuple[int, bytes]:
    return http(server, "GET", "/api/v1/projects", headers={"Authorization": f"Bearer {token}"})


def list_projects_grpc(
    server: AuthServer, token: str, key: str = "authorization"
) -> grpc.StatusCode:
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        try:
            stub.ListProjects(
                project_pb2.ProjectListRequest(limit=10),
                metadata=[(key, f"Bearer {token}")],
                timeout=30,
            )
        except grpc.RpcError as refused:
            code: grpc.StatusCode = refused.code()
            return code
        return grpc.StatusCode.OK


def tampered(token: str) -> str:
    """The same token with another signature (its last character changed)."""
    head, _, signature = token.rpartition(".")
    last = "A" if signature[-1] != "A" else "B"
    return f"{head}.{signature[:-1]}{last}"


def assert_absent(text: str, where: str, secrets: dict[str, str]) -> None:
    for name, value in secrets.items():
        # The names only: the message must not be a leak of its own.
        assert value not in text, f"{name} appears in {where}"


def test_no_secret_or_token_in_logs_metrics_or_listings(tmp_path: Path) -> None:
    server = start_auth_server(
        tmp_path,
        propeller=False,
        env={"ALULA_AUTH": "builtin", "RUST_LOG": "debug", "ALULA_LOG": "debug"},
        toml=SETTINGS,
    )
    try:
        client = create_client(server, "hygiene", "admin")
        secrets: dict[str, str] = {"the client secret": client.client_secret}

        # A wrong secret is refused, and the refusal quotes neither secret.
        wrong = client.client_secret[::-1]
        secrets["the wrong secret"] = wrong
        status, refusal = fetch_token(server, client.client_id, wrong)
        assert status == 401, refusal
        assert_absent(json.dumps(refusal), "the token refusal", secrets)

        # Successful calls over REST and gRPC (both metadata keys), each with a fresh token.
        tokens: list[str] = []

        def fresh() -> str:
            status, issued = fetch_token(server, client.client_id, client.client_secret)
            assert status == 200, issued
            token = str(issued["access_token"])
            tokens.append(token)
            return token

        status, body = list_projects_rest(server, fresh())
        assert status == 200, body
        # Codes compared out of the assertion: pytest would print the token in its report.
        code = list_projects_grpc(server, fresh())
        assert code == grpc.StatusCode.OK, code
        code = list_projects_grpc(server, fresh(), "flyte-authorization")
        assert code == grpc.StatusCode.OK, code

        # Failures: a tampered signature, a made-up token, then an expired one.
        forged = tampered(fresh())
        tokens.append(forged)
        status, body = list_projects_rest(server, forged)
        assert status == 401, body
        assert_absent(body.decode(errors="replace"), "a 401 reply", {"the token": forged})
        code = list_projects_grpc(server, forged)
        assert code == grpc.StatusCode.UNAUTHENTICATED, code
        made_up = "not-a-jwt-but-a-secret-looking-string-0123456789"
        tokens.append(made_up)
        code = list_projects_grpc(server, made_up)
        assert code == grpc.StatusCode.UNAUTHENTICATED, code
        expiring = fresh()
        time.sleep(TOKEN_LIFETIME_S + 1.5)
        status, body = list_projects_rest(server, expiring)
        assert status == 401, body
        assert b"expired" in body.lower(), body
        code = list_projects_grpc(server, expiring)
        assert code == grpc.StatusCode.UNAUTHENTICATED, code

        for i, token in enumerate(tokens):
            secrets[f"token {i}"] = token
            # A token's signature alone is what a forger lacks.
            secrets[f"the signature of token {i}"] = token.rpartition(".")[2]
        with sqlite3.connect(tmp_path / "alula.db") as db:
            (stored_hash,) = db.execute(
                "SELECT secret_hash FROM auth_clients WHERE client_id = ?", (client.client_id,)
            ).fetchone()
        assert stored_hash and client.client_secret not in stored_hash
        secrets["the stored secret hash"] = stored_hash

        status, metrics = http(server, "GET", "/metrics")
        assert status == 200
        assert b"alula" in metrics, "the metrics page is empty"
        assert_absent(metrics.decode(errors="replace"), "/metrics", secrets)

        listing = server_cli(server, "auth", "list-clients")
        assert listing.returncode == 0, listing.stderr
        assert client.client_id in listing.stdout, listing.stdout
        assert_absent(listing.stdout + listing.stderr, "auth list-clients", secrets)
    finally:
        server.stop()

    log = server.log()
    # The log is the debug log, and it saw the calls: the check below is not vacuous.
    assert "DEBUG" in log, "the server did not log at debug level"
    assert "issued an access token" in log
    assert_absent(log, "the server log", secrets)
