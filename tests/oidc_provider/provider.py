"""A small but real OpenID Connect provider for the tests, served from a thread on 127.0.0.1.

It speaks what flytekit, the console and Alula's verifier use: discovery, JWKS (with key
rotation), the authorization code flow with PKCE (an HTML login page a browser fills in),
refresh tokens, the device authorization grant (RFC 8628), client credentials and userinfo.
Access tokens are RS256 JWTs for the configured audience. `mint` makes the broken tokens the
negative tests need (another key, expired, another audience, `alg: none`).

Nothing here is hardened beyond what a test needs, but the checks a real provider makes are
made: registered clients and exact redirect URIs, single-use codes bound to their client,
redirect URI and PKCE challenge, client authentication for confidential clients."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, final

from .tokens import RsaKey, decode_verified, encode

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CODE_LIFETIME_S = 120


@dataclass(frozen=True)
class User:
    password: str
    email: str = ""
    name: str = ""
    groups: tuple[str, ...] = ()
    # The `sub` claim; the user name when empty.
    subject: str = ""


@dataclass(frozen=True)
class Client:
    redirect_uris: list[str] = field(default_factory=list)
    # None: a public client (PKCE, device flow); else confidential.
    secret: str | None = field(default=None, repr=False)


@dataclass
class _CodeGrant:
    client_id: str
    redirect_uri: str
    code_challenge: str
    username: str
    scope: str
    nonce: str
    expires_at: float


@dataclass
class _DeviceGrant:
    client_id: str
    user_code: str
    scope: str
    expires_at: float
    approved_by: str | None = None
    denied: bool = False


@dataclass
class _RefreshGrant:
    client_id: str
    username: str
    scope: str


class OAuthError(Exception):
    """An OAuth2 error response: `error` code, HTTP status, optional description."""

    def __init__(self, error: str, status: int = 400, description: str = "") -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.description = description


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of `verifier` (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _user_code() -> str:
    letters = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels: no words, as RFC 8628 suggests
    raw = "".join(secrets.choice(letters) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


@final
class Provider:
    """`with Provider(users=..., clients=...) as provider:` serves on `provider.issuer`."""

    def __init__(
        self,
        users: dict[str, User],
        clients: dict[str, Client],
        audience: str = "alula",
        token_lifetime_s: int = 3600,
        device_code_lifetime_s: int = 600,
    ) -> None:
        self.users = dict(users)
        self.clients = dict(clients)
        self.audience = audience
        self.token_lifetime_s = token_lifetime_s
        self.device_code_lifetime_s = device_code_lifetime_s
        self._lock = threading.Lock()
        self._keys: list[RsaKey] = [RsaKey.generate("key-1")]
        # Never published: signs the "another key" tokens.
        self._foreign_key = RsaKey.generate("foreign")
        self._codes: dict[str, _CodeGrant] = {}
        self._devices: dict[str, _DeviceGrant] = {}
        self._refresh: dict[str, _RefreshGrant] = {}
        # What the token endpoint saw, for tests that check how clients called it.
        self.token_requests: list[dict[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.issuer + path

    def start(self) -> Provider:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="oidc-provider", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Provider:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- keys and tokens ---------------------------------------------------------------------

    @property
    def current_kid(self) -> str:
        return self._keys[-1].kid

    def rotate(self) -> str:
        """A new key signs from now on; the old ones stay in the JWKS. Returns the new kid."""
        with self._lock:
            key = RsaKey.generate(f"key-{len(self._keys) + 1}")
            self._keys.append(key)
            return key.kid

    def retire_old_keys(self) -> None:
        """Only the current key stays in the JWKS."""
        with self._lock:
            self._keys = self._keys[-1:]

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [key.jwk() for key in self._keys]}

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.url("/authorize"),
            "token_endpoint": self.url("/token"),
            "jwks_uri": self.url("/jwks"),
            "userinfo_endpoint": self.url("/userinfo"),
            "device_authorization_endpoint": self.url("/device/code"),
            "response_types_supported": ["code"],
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                DEVICE_GRANT,
                "client_credentials",
            ],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access", "all"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "email",
                "name",
                "preferred_username",
                "groups",
            ],
        }

    def mint(
        self,
        sub: str = "alice",
        *,
        aud: str | None = None,
        exp: int | None = None,
        key: str = "current",
        alg: str = "RS256",
        **claims: Any,
    ) -> str:
        """An access token as this provider would issue for user `sub` (its profile claims when
        `sub` is a known user), with overrides: `aud` (default the audience), `exp` (absolute,
        seconds), `key` "current", "other" (a key not in the JWKS, under the current kid) or a
        kid, `alg` "none" for an unsigned token. Extra `claims` are added as given."""
        now = int(time.time())
        body: dict[str, Any] = self._user_claims(sub) if sub in self.users else {"sub": sub}
        body.update(
            {
                "iss": self.issuer,
                "aud": self.audience if aud is None else aud,
                "iat": now,
                "nbf": now,
                "exp": now + self.token_lifetime_s if exp is None else exp,
                "jti": secrets.token_urlsafe(12),
                "scope": "openid profile email",
                "client_id": "flytectl",
                "azp": "flytectl",
            }
        )
        body.update(claims)
        if alg == "none":
            return encode(body, None, alg="none", kid=self.current_kid)
        if key == "other":
            return encode(body, self._foreign_key, kid=self.current_kid)
        with self._lock:
            signer = self._keys[-1] if key == "current" else self._key(key)
        return encode(body, signer, alg=alg)

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of an unexpired token this provider signed, else None."""
        with self._lock:
            keys = list(self._keys)
        claims = decode_verified(token, keys)
        if claims is None or int(claims.get("exp", 0)) < time.time():
            return None
        return claims

    def _key(self, kid: str) -> RsaKey:
        for candidate in self._keys:
            if candidate.kid == kid:
                return candidate
        raise KeyError(f"no key {kid!r}")

    def _user_claims(self, username: str) -> dict[str, Any]:
        user = self.users[username]
        return {
            "sub": user.subject or username,
            "email": user.email,
            "email_verified": bool(user.email),
            "name": user.name,
            "preferred_username": username,
            "groups": list(user.groups),
        }

    def _sign(self, body: dict[str, Any]) -> str:
        with self._lock:
            signer = self._keys[-1]
        return encode(body, signer)

    def _tokens(
        self, client_id: str, username: str | None, scope: str, nonce: str = ""
    ) -> dict[str, Any]:
        """The token response for `username` (None: the client itself) through `client_id`."""
        now = int(time.time())
        common = {
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime_s,
        }
        subject_claims = self._user_claims(username) if username else {"sub": client_id}
        access = {
            **common,
            **subject_claims,
            "aud": self.audience,
            "jti": secrets.token_urlsafe(12),
            "scope": scope,
            "client_id": client_id,
            "azp": client_id,
        }
        response: dict[str, Any] = {
            "access_token": self._sign(access),
            "token_type": "Bearer",
            "expires_in": self.token_lifetime_s,
            "scope": scope,
        }
        if username is not None:
            id_claims = {**common, **subject_claims, "aud": client_id, "azp": client_id}
            if nonce:
                id_claims["nonce"] = nonce
            response["id_token"] = self._sign(id_claims)
            refresh = secrets.token_urlsafe(32)
            with self._lock:
                self._refresh[refresh] = _RefreshGrant(client_id, username, scope)
            response["refresh_token"] = refresh
        return response

    # -- the flows (called by the HTTP handler; raise OAuthError) ----------------------------

    def check_password(self, username: str, password: str) -> bool:
        user = self.users.get(username)
        return user is not None and secrets.compare_digest(user.password, password)

    def check_authorize_request(self, params: dict[str, str]) -> None:
        """Refuses, without redirecting anywhere, an authorization request from an unknown
        client or to a redirect URI the client did not register (exact match)."""
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            raise OAuthError("unauthorized_client", description="unknown client_id")
        if params.get("redirect_uri", "") not in client.redirect_uris:
            raise OAuthError("invalid_request", description="redirect_uri is not registered")
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type")
        method = params.get("code_challenge_method", "")
        challenge = params.get("code_challenge", "")
        if challenge and method != "S256":
            raise OAuthError("invalid_request", description="only S256 code challenges")
        if client.secret is None and not challenge:
            raise OAuthError("invalid_request", description="public clients must use PKCE")

    def issue_code(self, params: dict[str, str], username: str) -> str:
        """A single-use code for a checked authorization request and an authenticated user."""
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _CodeGrant(
                client_id=params["client_id"],
                redirect_uri=params["redirect_uri"],
                code_challenge=params.get("code_challenge", ""),
                username=username,
                scope=params.get("scope", "openid"),
                nonce=params.get("nonce", ""),
                expires_at=time.time() + CODE_LIFETIME_S,
            )
        return code

    def start_device_flow(self, client_id: str, scope: str) -> dict[str, Any]:
        if client_id not in self.clients:
            raise OAuthError("invalid_client", 401)
        device_code = secrets.token_urlsafe(32)
        user_code = _user_code()
        with self._lock:
            self._devices[device_code] = _DeviceGrant(
                client_id=client_id,
                user_code=user_code,
                scope=scope or "openid",
                expires_at=time.time() + self.device_code_lifetime_s,
            )
        return {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": self.url("/device"),
            "verification_uri_complete": self.url(f"/device?user_code={user_code}"),
            "expires_in": self.device_code_lifetime_s,
            "interval": 1,
        }

    def approve_device(self, user_code: str, username: str, approve: bool = True) -> bool:
        """Approves (or denies) the pending device grant of `user_code`; False if none."""
        with self._lock:
            for grant in self._devices.values():
                pending = grant.approved_by is None and not grant.denied
                if grant.user_code == user_code.strip().upper() and pending:
                    if grant.expires_at < time.time():
                        return False
                    if approve:
                        grant.approved_by = username
                    else:
                        grant.denied = True
                    return True
        return False

    def expire_device_codes(self) -> None:
        """Every pending device code expires now (tests of `expired_token`)."""
        with self._lock:
            for grant in self._devices.values():
                grant.expires_at = 0

    def token(self, form: dict[str, str], authorization: str | None) -> dict[str, Any]:
        """The token endpoint: the response body, or OAuthError."""
        self.token_requests.append({k: v for k, v in form.items() if k != "client_secret"})
        grant_type = form.get("grant_type", "")
        client_id = self._authenticate_client(form, authorization)
        if grant_type == "authorization_code":
            return self._code_grant(client_id, form)
        if grant_type == "refresh_token":
            with self._lock:
                grant = self._refresh.pop(form.get("refresh_token", ""), None)
            if grant is None or grant.client_id != client_id:
                raise OAuthError("invalid_grant", description="unknown refresh token")
            return self._tokens(client_id, grant.username, grant.scope)
        if grant_type == DEVICE_GRANT:
            return self._device_grant(client_id, form.get("device_code", ""))
        if grant_type == "client_credentials":
            if self.clients[client_id].secret is None:
                raise OAuthError("unauthorized_client", description="public client")
            return self._tokens(client_id, None, form.get("scope", ""))
        raise OAuthError("unsupported_grant_type")

    def _authenticate_client(self, form: dict[str, str], authorization: str | None) -> str:
        """The client of a token request: HTTP Basic (id and secret form-URL-encoded, RFC 6749
        2.3.1) or form fields; a public client names itself with `client_id`."""
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode("utf-8")
            except ValueError as error:
                raise OAuthError("invalid_client", 401) from error
            raw_id, _, raw_secret = decoded.partition(":")
            client_id = urllib.parse.unquote_plus(raw_id)
            secret = urllib.parse.unquote_plus(raw_secret)
        client = self.clients.get(client_id)
        if client is None:
            raise OAuthError("invalid_client", 401, "unknown client")
        if client.secret is not None:
            if secret is None or not secrets.compare_digest(client.secret, secret):
                raise OAuthError("invalid_client", 401, "bad client credentials")
        return client_id

    def _code_grant(self, client_id: str, form: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            # Popped before any check: a code is spent by its first use, right or wrong.
            grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or grant.expires_at < time.time():
            raise OAuthError("invalid_grant", description="unknown, used or expired code")
        if grant.client_id != client_id:
            raise OAuthError("invalid_grant", description="code of another client")
        if form.get("redirect_uri", "") != grant.redirect_uri:
            raise OAuthError("invalid_grant", description="redirect_uri differs")
        if grant.code_challenge:
            verifier = form.get("code_verifier", "")
            if not verifier or not secrets.compare_digest(
                pkce_challenge(verifier), grant.code_challenge
            ):
                raise OAuthError("invalid_grant", description="PKCE verification failed")
        return self._tokens(client_id, grant.username, grant.scope, grant.nonce)

    def _device_grant(self, client_id: str, device_code: str) -> dict[str, Any]:
        with self._lock:
            grant = self._devices.get(device_code)
            if grant is None or grant.client_id != client_id:
                raise OAuthError("invalid_grant", description="unknown device code")
            if grant.expires_at < time.time():
                del self._devices[device_code]
                raise OAuthError("expired_token")
            if grant.denied:
                del self._devices[device_code]
                raise OAuthError("access_denied")
            if grant.approved_by is None:
                raise OAuthError("authorization_pending")
            del self._devices[device_code]
        return self._tokens(client_id, grant.approved_by, grant.scope)

    def userinfo(self, authorization: str | None) -> dict[str, Any]:
        token = (authorization or "").removeprefix("Bearer ").strip()
        claims = self.verify(token) if token else None
        if claims is None:
            raise OAuthError("invalid_token", 401)
        keys = ("sub", "email", "email_verified", "name", "preferred_username", "groups")
        return {k: claims[k] for k in keys if k in claims}


# -- HTTP ------------------------------------------------------------------------------------

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1>{error}
<form method="post" action="{action}">
{hidden}
{extra}
<label>User <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button id="login" type="submit">Sign in</button>
</form></body></html>
"""


def _login_page(action: str, hidden: dict[str, str], extra: str = "", error: str = "") -> str:
    fields = "\n".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in hidden.items()
        if k not in ("username", "password")
    )
    title = "Device sign-in" if action == "/device" else "Sign in"
    shown_error = f'<p id="error">{html.escape(error)}</p>' if error else ""
    return _PAGE.format(title=title, action=action, hidden=fields, extra=extra, error=shown_error)


def _handler_for(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "alula-test-oidc/1"

        def log_message(self, format: str, *args: Any) -> None:
            # Quiet: requests carry codes and tokens in their query strings.
            return

        def _send(
            self,
            status: int,
            body: str | bytes,
            content_type: str,
            headers: dict[str, str] | None = None,
        ) -> None:
            data = body.encode("utf-8") if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _json(self, status: int, body: dict[str, Any]) -> None:
            self._send(status, json.dumps(body), "application/json")

        def _oauth_error(self, error: OAuthError) -> None:
            body = {"error": error.error}
            if error.description:
                body["error_description"] = error.description
            self._json(error.status, body)

        def _form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8")
            return dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))

        def _query(self) -> tuple[str, dict[str, str]]:
            parsed = urllib.parse.urlsplit(self.path)
            return parsed.path, dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))

        def do_GET(self) -> None:
            path, query = self._query()
            if path == "/.well-known/openid-configuration":
                self._json(200, provider.metadata())
            elif path == "/.well-known/oauth-authorization-server":
                self._json(200, provider.metadata())
            elif path == "/jwks":
                self._json(200, provider.jwks())
            elif path == "/authorize":
                try:
                    provider.check_authorize_request(query)
                except OAuthError as error:
                    self._send(400, f"<p id='error'>{html.escape(error.error)}</p>", "text/html")
                    return
                self._send(200, _login_page("/authorize", query), "text/html")
            elif path == "/device":
                code = html.escape(query.get("user_code", ""))
                extra = f'<label>Code <input name="user_code" value="{code}"></label>'
                self._send(200, _login_page("/device", {}, extra), "text/html")
            elif path == "/userinfo":
                try:
                    self._json(200, provider.userinfo(self.headers.get("Authorization")))
                except OAuthError as error:
                    self._oauth_error(error)
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            path, _ = self._query()
            form = self._form()
            if path == "/authorize":
                self._authorize(form)
            elif path == "/token":
                try:
                    body = provider.token(form, self.headers.get("Authorization"))
                except OAuthError as error:
                    self._oauth_error(error)
                    return
                self._json(200, body)
            elif path == "/device/code":
                try:
                    body = provider.start_device_flow(
                        form.get("client_id", ""), form.get("scope", "")
                    )
                except OAuthError as error:
                    self._oauth_error(error)
                    return
                self._json(200, body)
            elif path == "/device":
                self._device(form)
            else:
                self._json(404, {"error": "not_found"})

        def _authorize(self, form: dict[str, str]) -> None:
            params = {k: v for k, v in form.items() if k not in ("username", "password")}
            try:
                provider.check_authorize_request(params)
            except OAuthError as error:
                self._send(400, f"<p id='error'>{html.escape(error.error)}</p>", "text/html")
                return
            username = form.get("username", "")
            if not provider.check_password(username, form.get("password", "")):
                page = _login_page("/authorize", params, error="wrong user name or password")
                self._send(401, page, "text/html")
                return
            code = provider.issue_code(params, username)
            answer = {"code": code}
            if "state" in params:
                answer["state"] = params["state"]
            separator = "&" if "?" in params["redirect_uri"] else "?"
            location = params["redirect_uri"] + separator + urllib.parse.urlencode(answer)
            self._send(302, "", "text/plain", {"Location": location})

        def _device(self, form: dict[str, str]) -> None:
            username = form.get("username", "")
            code = form.get("user_code", "")
            extra = f'<label>Code <input name="user_code" value="{html.escape(code)}"></label>'
            if not provider.check_password(username, form.get("password", "")):
                page = _login_page("/device", {}, extra, error="wrong user name or password")
                self._send(401, page, "text/html")
            elif not provider.approve_device(code, username):
                page = _login_page("/device", {}, extra, error="unknown or expired code")
                self._send(400, page, "text/html")
            else:
                done = "<!doctype html><p id='approved'>Device approved. Close this window.</p>"
                self._send(HTTPStatus.OK, done, "text/html")

    return Handler
