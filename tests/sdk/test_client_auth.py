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
    # Plaintext to another machine: only with the explicit opt-in.
    monkeypatch.setenv("ALULA_INSECURE_CREDENTIALS", "1")
    plain = Remote()
    assert not plain.tls
    assert isinstance(plain.credentials, StaticToken)
    assert plain.credentials.token() == "ready-token"
    # An https endpoint is TLS whatever ALULA_INSECURE says.
    assert Remote("https://example.invalid:443").tls


# -- credentials never travel in clear to another machine


@pytest.fixture
def no_alula_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (
        "ALULA_ENDPOINT",
        "ALULA_INSECURE",
        "ALULA_INSECURE_CREDENTIALS",
        "ALULA_CA_CERT",
        "ALULA_CLIENT_ID",
        "ALULA_CLIENT_SECRET",
        "ALULA_CLIENT_SECRET_FILE",
        "ALULA_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://alula.example.com:8089",
        "dns:///10.0.0.7:8089",
        "192.168.1.5:8089",
        "[2001:db8::1]:8089",
        "http://127.0.0.1.example.com:8089",
    ],
)
def test_remote_refuses_credentials_in_clear_to_another_host(
    endpoint: str, no_alula_env: pytest.MonkeyPatch
) -> None:
    for credentials in ({"token": "a-token"}, {"client_id": "ci", "client_secret": SECRET}):
        with pytest.raises(AuthError) as raised:
            Remote(endpoint, insecure=True, **credentials)  # type: ignore[arg-type]
        message = str(raised.value)
        assert "\n" not in message
        assert "https://" in message and "ALULA_INSECURE_CREDENTIALS=1" in message
        assert SECRET not in message and "a-token" not in message
    # Through the environment too (what the CLI uses).
    no_alula_env.setenv("ALULA_ENDPOINT", endpoint)
    no_alula_env.setenv("ALULA_INSECURE", "1")
    no_alula_env.setenv("ALULA_TOKEN", "a-token")
    with pytest.raises(AuthError, match="without TLS"):
        Remote()
    # Without credentials, plaintext stays possible (a server without auth).
    no_alula_env.delenv("ALULA_TOKEN")
    assert Remote().credentials is None


def test_plaintext_credentials_are_allowed_to_loopback_tls_or_by_opt_in(
    no_alula_env: pytest.MonkeyPatch,
) -> None:
    for endpoint in ("127.0.0.1:8089", "http://localhost:8089", "[::1]:8089", "127.8.9.10:1"):
        assert Remote(endpoint, insecure=True, token="t").credentials is not None
    assert Remote("https://alula.example.com", token="t").tls
    assert Remote("alula.example.com:443", insecure=False, token="t").tls
    opted = Remote("http://alula.example.com:8089", token="t", allow_plaintext_credentials=True)
    assert opted.credentials is not None
    no_alula_env.setenv("ALULA_INSECURE_CREDENTIALS", "1")
    assert Remote("http://alula.example.com:8089", token="t").credentials is not None
    # The argument wins over the environment.
    with pytest.raises(AuthError):
        Remote("http://alula.example.com:8089", token="t", allow_plaintext_credentials=False)


def test_the_client_secret_goes_to_a_plaintext_token_endpoint_only_on_loopback(
    token_server: TokenServer,
) -> None:
    # The server may advertise an http:// token endpoint even when its gRPC port is TLS.
    remote_endpoint = "http://auth.example.com:8088/oauth2/token"
    credentials = ClientCredentials(CLIENT_ID, SECRET, remote_endpoint, timeout=5)
    with pytest.raises(AuthError, match="without TLS.*ALULA_INSECURE_CREDENTIALS"):
        credentials.token()
    # Loopback: sent (the fixture's server is on 127.0.0.1).
    assert ClientCredentials(CLIENT_ID, SECRET, token_server.url).token() == "token-1"


def test_log_links_get_the_token_only_through_tls_or_loopback(
    no_alula_env: pytest.MonkeyPatch,
) -> None:
    remote = Remote("https://alula.example.com:8089", token="t")
    link = "https://alula.example.com:8089/api/v1/logs/x"
    assert remote._log_headers(link) == {"Authorization": "Bearer t"}
    with pytest.raises(AuthError, match="without TLS"):
        remote._log_headers("http://alula.example.com:8089/api/v1/logs/x")
    local = Remote("127.0.0.1:8089", insecure=True, token="t")
    assert local._log_headers("http://127.0.0.1:8088/api/v1/logs/x") == {
        "Authorization": "Bearer t"
    }


def test_the_cli_refuses_in_one_line(
    no_alula_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from alula import cli

    no_alula_env.setenv("ALULA_ENDPOINT", "10.0.0.7:8089")
    no_alula_env.setenv("ALULA_INSECURE", "1")
    no_alula_env.setenv("ALULA_TOKEN", "a-token")
    hello = Path(__file__).resolve().parents[2] / "examples" / "hello.py"
    assert cli.main(["run", "--remote", str(hello), "wf", "--name", "x"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("alula run: refusing to send credentials to '10.0.0.7' without TLS")
    assert "\n" not in err and "a-token" not in err


def test_loopback_addresses() -> None:
    for host in ("localhost", "LOCALHOST.", "127.0.0.1", "127.255.0.3", "::1", "[::1]"):
        assert auth.is_loopback(host), host
    for host in ("", "10.0.0.1", "::", "0.0.0.0", "localhost.example.com", "::ffff:10.0.0.1"):
        assert not auth.is_loopback(host), host
    assert auth.is_loopback("::ffff:127.0.0.1")
    assert auth.host_of("dns:///[::1]:8089") == "::1"
    assert auth.host_of("https://Alula.example.com/x") == "alula.example.com"


def basic_of(credentials: ClientCredentials) -> str:
    """The Basic header the credentials would send (the secret only inside it)."""
    return auth.basic_authorization(credentials.client_id, credentials._secret)
