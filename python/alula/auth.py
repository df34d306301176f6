"""Credentials of Alula's remote client: OAuth2 client credentials (RFC 6749 §4.4) or a fixed
bearer token, and the TLS context its HTTP requests use.

The token endpoint, scopes and audience come from the server's public discovery RPCs
(`AuthMetadataService.GetOAuth2Metadata` / `GetPublicClientConfig`) unless given; the client
authenticates with HTTP Basic, the id and secret each form-urlencoded first (RFC 6749 §2.3.1,
as flytekit sends them). Neither the secret nor a token ever appears in a repr or a message.

Nor does either travel in clear to another machine: over plain HTTP or gRPC, credentials go
only to a loopback address unless the caller opts in (`ALULA_INSECURE_CREDENTIALS=1`).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from alula.errors import AlulaError

# A token is renewed this long before it expires, so a call never leaves with a token that
# dies on the way.
REFRESH_MARGIN_S = 60.0
# Without `expires_in` a token is assumed to live this long (RFC 6749 makes it optional).
DEFAULT_LIFETIME_S = 300.0
# Set to 1 to send credentials over plaintext HTTP/gRPC to hosts other than this machine.
INSECURE_CREDENTIALS_ENV = "ALULA_INSECURE_CREDENTIALS"


class AuthError(AlulaError, RuntimeError):
    """No token could be obtained (the message names the endpoint and the server's error code,
    never a credential)."""


@dataclass(frozen=True)
class TokenEndpoint:
    """Where and how to ask for a token: the server's discovery answers."""

    url: str
    scopes: list[str] = field(default_factory=list)
    audience: str = ""


def ssl_context(ca_cert: str | None) -> ssl.SSLContext:
    """Verifies servers against the system's roots plus the CA(s) in `ca_cert` (a PEM file):
    the same context reaches the server (its own CA) and S3's presigned URLs or a public
    identity provider (the web PKI)."""
    context = ssl.create_default_context()
    if ca_cert is None:
        return context
    try:
        context.load_verify_locations(cafile=ca_cert)
    except (OSError, ssl.SSLError) as e:
        raise AuthError(f"cannot load CA certificate {ca_cert}: {e}") from e
    return context


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an IP address, maybe in brackets) is this machine:
    `localhost`, 127.0.0.0/8 or ::1."""
    host = host.strip().strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def host_of(endpoint: str) -> str:
    """The host of an endpoint or URL (`dns:///h:p`, `https://h:p/x`, `h:p`, `[::1]:p`)."""
    bare = endpoint.strip().removeprefix("dns:///")
    return urllib.parse.urlsplit(bare if "://" in bare else f"//{bare}").hostname or ""


def refuse_plaintext_credentials(what: str, endpoint: str, *, tls: bool, allowed: bool) -> None:
    """Raises `AuthError` when `what` (a token, a client secret) would go without TLS to
    `endpoint` on another machine and the caller did not opt in to that."""
    if tls or allowed:
        return
    host = host_of(endpoint)
    if is_loopback(host):
        return
    raise AuthError(
        f"refusing to send {what} to {host or endpoint!r} without TLS: use an https:// "
        f"endpoint (or ALULA_INSECURE=0 with the server's TLS), or set "
        f"{INSECURE_CREDENTIALS_ENV}=1 (Remote(allow_plaintext_credentials=True)) to send it "
        "in clear"
    )


def basic_authorization(client_id: str, client_secret: str) -> str:
    """The `Authorization` header of HTTP Basic client authentication."""
    pair = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


class StaticToken:
    """A bearer token obtained elsewhere (`ALULA_TOKEN`): sent as is, never refreshed."""

    def __init__(self, token: str) -> None:
        self._token = token

    def token(self) -> str:
        return self._token

    def refresh(self) -> str:
        """Nothing to refresh: the same token (a retry with it fails the same way)."""
        return self._token

    def __repr__(self) -> str:
        return "StaticToken(<redacted>)"


class ClientCredentials:
    """A client id and secret exchanged for access tokens, cached until `REFRESH_MARGIN_S`
    before they expire. Thread-safe: concurrent callers share one request.

    `endpoint` is the token endpoint, or a function that discovers it (called once, when the
    first token is needed); `ca_cert` a PEM file of the CA(s) the token endpoint's certificate
    must chain to (default: the system's roots). The secret is sent over plain `http://` only
    to a loopback address, unless `allow_plaintext`."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        endpoint: TokenEndpoint | str | Callable[[], TokenEndpoint],
        *,
        ca_cert: str | None = None,
        timeout: float = 30.0,
        allow_plaintext: bool = False,
    ) -> None:
        if not client_id or not client_secret:
            raise ValueError("client credentials need both a client id and a client secret")
        self.client_id = client_id
        self._secret = client_secret
        self._endpoint = endpoint
        self.ca_cert = ca_cert
        self.timeout = timeout
        self.allow_plaintext = allow_plaintext
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self.client_id!r}, client_secret=<redacted>)"

    def endpoint(self) -> TokenEndpoint:
        """The token endpoint, discovered on first use."""
        if isinstance(self._endpoint, str):
            self._endpoint = TokenEndpoint(self._endpoint)
        elif not isinstance(self._endpoint, TokenEndpoint):
            self._endpoint = self._endpoint()
        return self._endpoint

    def token(self) -> str:
        """A valid access token: the cached one unless it expires within the margin."""
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at - REFRESH_MARGIN_S:
                return self._fetch()
            return self._token

    def refresh(self) -> str:
        """A new access token (after the server refused the cached one)."""
        with self._lock:
            return self._fetch()

    def _fetch(self) -> str:
        endpoint = self.endpoint()
        refuse_plaintext_credentials(
            "a client secret",
            endpoint.url,
            tls=endpoint.url.lower().startswith("https:"),
            allowed=self.allow_plaintext,
        )
        form = {"grant_type": "client_credentials"}
        if endpoint.scopes:
            form["scope"] = " ".join(endpoint.scopes)
        if endpoint.audience:
            form["audience"] = endpoint.audience
        request = urllib.request.Request(
            endpoint.url,
            data=urllib.parse.urlencode(form).encode(),
            headers={
                "Authorization": basic_authorization(self.client_id, self._secret),
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                "Cache-Control": "no-cache",
            },
            method="POST",
        )
        context = ssl_context(self.ca_cert) if endpoint.url.startswith("https:") else None
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=context) as r:
                body = r.read()
        except urllib.error.HTTPError as e:
            raise AuthError(
                f"token request to {endpoint.url} for client {self.client_id!r} failed: "
                f"HTTP {e.code}{_oauth_error(e.read())}"
            ) from None
        except OSError as e:
            raise AuthError(
                f"token request to {endpoint.url} failed: {_tls_hint(e, self.ca_cert)}"
            ) from None
        try:
            answer = json.loads(body)
            token = answer["access_token"]
            lifetime = float(answer.get("expires_in", DEFAULT_LIFETIME_S))
        except (ValueError, KeyError, TypeError):
            raise AuthError(f"token endpoint {endpoint.url} sent no access_token") from None
        if not isinstance(token, str) or not token:
            raise AuthError(f"token endpoint {endpoint.url} sent no access_token")
        self._token = token
        self._expires_at = started + lifetime
        return token


def _oauth_error(body: bytes) -> str:
    """The OAuth2 error code and description of a refusal (RFC 6749 §5.2), which name no
    credential; anything else from the server is left out."""
    try:
        answer = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(answer, dict) or not isinstance(answer.get("error"), str):
        return ""
    description = answer.get("error_description")
    if isinstance(description, str) and description:
        return f": {answer['error']}: {description}"
    return f": {answer['error']}"


def _tls_hint(error: OSError, ca_cert: str | None) -> str:
    """The error, saying which CA was trusted when it is a certificate problem."""
    reason = getattr(error, "reason", error)
    if isinstance(reason, ssl.SSLError):
        trusted = f"the CA in {ca_cert}" if ca_cert else "the system's root certificates"
        return f"TLS failed (trusting {trusted}): {reason}"
    return str(reason)


__all__ = [
    "INSECURE_CREDENTIALS_ENV",
    "AuthError",
    "ClientCredentials",
    "StaticToken",
    "TokenEndpoint",
    "basic_authorization",
    "host_of",
    "is_loopback",
    "refuse_plaintext_credentials",
    "ssl_context",
]
