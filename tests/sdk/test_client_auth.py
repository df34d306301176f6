"""alula.auth against a tiny local token endpoint: the HTTP Basic encoding of awkward
credentials, the form sent, caching and refreshing, and no credential in any repr or error."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from alula import _native, auth
from alula.auth import AuthError, ClientCredentials, StaticToken, TokenEndpoint
from alula.remote import Remote

CLIENT_ID = "ci bot:1@example"
SECRET = "s3cr:et/+ =&%?ü"


@dataclass
class TokenServer:
    """Answers POST /token: issues `token-N` valid `expires_in` seconds, or `refusal`."""

    url: str = ""
    requests: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    expires_in: int | None = 3600
    refusal: tuple[int, bytes] | None = None

    def issued(self) -> int:
        return len(self.requests)


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    state = TokenServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            state.requests.append((self.headers.get("Authorization", ""), form))
            if state.refusal is not None:
                status, body = state.refusal
            else:
                answer: dict[str, object] = {
                    "access_token": f"token-{state.issued()}",
                    "token_type": "Bearer",
                }
                if state.expires_in is not None:
                    answer["expires_in"] = state.expires_in
                status, body = 200, json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/token"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_basic_header_url_encodes_id_and_secret() -> None:
    header = auth.basic_authorization(CLIENT_ID, SECRET)
    assert header.startswith("Basic ")
    decoded = base64.b64decode(header.removeprefix("Basic ")).decode()
    encoded_id, encoded_secret = decoded.split(":")
    # One colon only: the id's and secret's own colons are encoded.
    assert urllib.parse.unquote_plus(encoded_id) == CLIENT_ID
    assert urllib.parse.unquote_plus(encoded_secret) == SECRET
    # The secret exactly as flytekit encodes it (quote_plus), so servers see the same bytes.
    assert encoded_secret == urllib.parse.quote_plus(SECRET)


def test_token_request_carries_basic_auth_scope_and_audience(token_server: TokenServer) -> None:
    credentials = ClientCredentials(
        CLIENT_ID,
        SECRET,
        TokenEndpoint(token_server.url, ["all", "offline"], "alula"),
    )
    assert credentials.token() == "token-1"
    header, form = token_server.requests[0]
    assert header == auth.basic_authorization(CLIENT_ID, SECRET)
    assert form == {
        "grant_type": ["client_credentials"],
        "scope": ["all offline"],
        "audience": ["alula"],
    }


def test_discovery_runs_once_and_tokens_are_cached(token_server: TokenServer) -> None:
    discovered: list[int] = []

    def discover() -> TokenEndpoint:
        discovered.append(1)
        return TokenEndpoint(token_server.url)

    credentials = ClientCredentials(CLIENT_ID, SECRET, discover)
    assert credentials.token() == "token-1"
    assert credentials.token() == "token-1"
    assert token_server.issued() == 1
    assert credentials.refresh() == "token-2"
    assert credentials.token() == "token-2"
    assert discovered == [1]
    # No scope or audience advertised: none sent.
    assert token_server.requests[0][1] == {"grant_type": ["client_credentials"]}


def test_a_token_is_renewed_before_it_expires(token_server: TokenServer) -> None:
    # Expires within the refresh margin: every use asks for a new one.
    token_server.expires_in = int(auth.REFRESH_MARGIN_S) - 1
    credentials = ClientCredentials(CLIENT_ID, SECRET, token_server.url)
    assert credentials.token() == "token-1"
    assert credentials.token() == "token-2"
    token_server.expires_in = int(auth.REFRESH_MARGIN_S) + 600
    assert credentials.token() == "token-3"
    assert credentials.token() == "token-3"


def test_refusals_name_the_oauth_error_but_no_credential(token_server: TokenServer) -> None:
    token_server.refusal = (
        401,
        json.dumps({"error": "invalid_client", "error_description": "unknown client"}).encode(),
    )
    credentials = ClientCredentials(CLIENT_ID, SECRET, token_server.url)
    with pytest.raises(AuthError) as raised:
        credentials.token()
    message = str(raised.value)
    assert "HTTP 401: invalid_client: unknown client" in message
    assert token_server.url in message
    assert SECRET not in message
    assert urllib.parse.quote_plus(SECRET) not in message
    assert raised.value.__cause__ is None

    # A body echoing the request is not repeated.
    token_server.refusal = (500, b"oops " + SECRET.encode())
    with pytest.raises(AuthError) as raised:
        credentials.token()
    assert SECRET not in str(raised.value)


def test_an_answer_without_a_token_is_an_error(token_server: TokenServer) -> None:
    token_server.refusal = (200, b'{"token_type": "Bearer"}')
    with pytest.raises(AuthError, match="no access_token"):
        ClientCredentials(CLIENT_ID, SECRET, token_server.url).token()


def test_unreachable_endpoint_names_the_url() -> None:
    credentials = ClientCredentials(CLIENT_ID, SECRET, "http://127.0.0.1:1/token", timeout=5)
    with pytest.raises(AuthError, match="127.0.0.1:1/token"):
        credentials.token()


def test_reprs_redact_secret_and_token(token_server: TokenServer) -> None:
    credentials = ClientCredentials(CLIENT_ID, SECRET, token_server.url)
    token = credentials.token()
    assert SECRET not in repr(credentials)
    assert token not in repr(credentials)
    assert CLIENT_ID in repr(credentials)
    assert "secret-token" not in repr(StaticToken("secret-token"))
    assert StaticToken("secret-token").refresh() == "secret-token"


def test_missing_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="client id and a client secret"):
        ClientCredentials(CLIENT_ID, "", "http://127.0.0.1:1/token")


def test_unreadable_ca_file_is_named() -> None:
    with pytest.raises(AuthError, match="no-such-ca.pem"):
        auth.ssl_context("/nonexistent/no-such-ca.pem")


# -- the native call's TLS and metadata arguments (no server needed: they fail before connecting)

HEALTH = "/grpc.health.v1.Health/Check"


def test_native_call_refuses_contradictory_tls_and_bad_metadata(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tls=True"):
        _native.grpc_unary("http://127.0.0.1:1", HEALTH, b"", 5.0, tls=True)
    with pytest.raises(ValueError, match="tls=False"):
        _native.grpc_unary("https://127.0.0.1:1", HEALTH, b"", 5.0, tls=False)
    with pytest.raises(ValueError, match="metadata key"):
        _native.grpc_unary("127.0.0.1:1", HEALTH, b"", 5.0, metadata=[("bad key", "v")])
    with pytest.raises(ValueError) as raised:
        _native.grpc_unary(
            "127.0.0.1:1", HEALTH, b"", 5.0, metadata=[("authorization", "Bearer x\ny-secret")]
        )
    assert "y-secret" not in str(raised.value)
    missing = tmp_path / "missing-ca.pem"
    with pytest.raises(ValueError, match="missing-ca.pem"):
        _native.grpc_unary("127.0.0.1:1", HEALTH, b"", 5.0, tls=True, ca_cert=str(missing))


def test_remote_reads_tls_and_credentials_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "client.secret"
    secret_file.write_text(SECRET + "\n")
    monkeypatch.setenv("ALULA_ENDPOINT", "dns:///example.invalid:443")
    monkeypatch.setenv("ALULA_INSECURE", "0")
    monkeypatch.setenv("ALULA_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("ALULA_CLIENT_SECRET_FILE", str(secret_file))
    monkeypatch.delenv("ALULA_CLIENT_SECRET", raising=False)
    remote = Remote()
    assert remote.tls
    assert isinstance(remote.credentials, ClientCredentials)
    assert remote.credentials.client_id == CLIENT_ID
    assert SECRET not in repr(remote.credentials)
    assert basic_of(remote.credentials) == auth.basic_authorization(CLIENT_ID, SECRET)

    monkeypatch.setenv("ALULA_INSECURE", "1")
    monkeypatch.delenv("ALULA_CLIENT_ID")
    monkeypatch.setenv("ALULA_TOKEN", "ready-token")
    plain = Remote()
    assert not plain.tls
    assert isinstance(plain.credentials, StaticToken)
    assert plain.credentials.token() == "ready-token"
    # An https endpoint is TLS whatever ALULA_INSECURE says.
    assert Remote("https://example.invalid:443").tls


def basic_of(credentials: ClientCredentials) -> str:
    """The Basic header the credentials would send (the secret only inside it)."""
    return auth.basic_authorization(credentials.client_id, credentials._secret)
