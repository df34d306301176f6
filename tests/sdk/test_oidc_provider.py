"""The test OpenID Connect provider (tests/oidc_provider) does what a real one does: PKCE is
verified, codes are single-use and bound to their client and redirect URI, unregistered
redirects are refused, the device flow goes pending -> approved (or expired), confidential
clients authenticate, and its broken tokens are broken."""

from __future__ import annotations

import base64
import secrets
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oidc_provider import (  # noqa: E402
    Client,
    Provider,
    User,
    browser,  # noqa: E402
    pkce_challenge,
    unverified_claims,
)
from oidc_provider.tokens import decode_verified  # noqa: E402

REDIRECT = "http://127.0.0.1:53999/callback"


@pytest.fixture()
def provider() -> Iterator[Provider]:
    with Provider(
        users={"alice": User("wonderland", "alice@example.com", "Alice", ("ml",))},
        clients={
            "flytectl": Client(redirect_uris=[REDIRECT]),
            "machine": Client(secret="s3cret/with+odd=chars"),
        },
        audience="alula",
    ) as running:
        yield running


def authorize(provider: Provider, verifier: str, **overrides: str) -> requests.Response:
    params = {
        "client_id": "flytectl",
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": "openid offline_access",
        "state": "st4te",
        "code_challenge": pkce_challenge(verifier),
        "code_challenge_method": "S256",
        **overrides,
    }
    form = {**params, "username": "alice", "password": "wonderland"}
    return requests.post(provider.url("/authorize"), data=form, allow_redirects=False, timeout=10)


def code_of(response: requests.Response) -> str:
    assert response.status_code == 302, response.text
    location = urllib.parse.urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = dict(urllib.parse.parse_qsl(location.query))
    assert query["state"] == "st4te"
    return query["code"]


def exchange(provider: Provider, code: str, verifier: str, **overrides: str) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": "flytectl",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        **overrides,
    }
    return requests.post(provider.url("/token"), data=form, timeout=10)


def test_discovery_and_keys(provider: Provider) -> None:
    meta = requests.get(provider.url("/.well-known/openid-configuration"), timeout=10).json()
    assert meta["issuer"] == provider.issuer
    assert meta["token_endpoint"] == provider.url("/token")
    assert meta["device_authorization_endpoint"] == provider.url("/device/code")
    assert meta["code_challenge_methods_supported"] == ["S256"]
    first = requests.get(meta["jwks_uri"], timeout=10).json()["keys"]
    assert [k["kid"] for k in first] == ["key-1"]
    old_token = provider.mint("alice")
    new_kid = provider.rotate()
    keys = requests.get(meta["jwks_uri"], timeout=10).json()["keys"]
    assert [k["kid"] for k in keys] == ["key-1", new_kid]
    assert provider.verify(old_token) is not None
    assert provider.verify(provider.mint("alice"))["sub"] == "alice"  # type: ignore[index]
    provider.retire_old_keys()
    assert provider.verify(old_token) is None


def test_pkce_code_flow_gives_tokens_once(provider: Provider) -> None:
    login_page = requests.get(
        provider.url("/authorize"),
        params={
            "client_id": "flytectl",
            "response_type": "code",
            "redirect_uri": REDIRECT,
            "state": "st4te",
            "code_challenge": pkce_challenge("v" * 50),
            "code_challenge_method": "S256",
        },
        timeout=10,
    )
    assert login_page.status_code == 200
    assert 'name="username"' in login_page.text and 'id="login"' in login_page.text

    verifier = secrets.token_urlsafe(48)
    code = code_of(authorize(provider, verifier))
    tokens = exchange(provider, code, verifier)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    claims = provider.verify(body["access_token"])
    assert claims is not None
    assert claims["sub"] == "alice" and claims["aud"] == "alula"
    assert claims["groups"] == ["ml"] and claims["email"] == "alice@example.com"
    assert claims["iss"] == provider.issuer and claims["client_id"] == "flytectl"
    assert unverified_claims(body["id_token"])["aud"] == "flytectl"

    # Single use: the same code again is refused.
    again = exchange(provider, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_pkce_verifier_is_checked_and_a_failed_try_spends_the_code(provider: Provider) -> None:
    verifier = secrets.token_urlsafe(48)
    code = code_of(authorize(provider, verifier))
    wrong = exchange(provider, code, secrets.token_urlsafe(48))
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert exchange(provider, code, verifier).status_code == 400

    code = code_of(authorize(provider, verifier))
    missing = exchange(provider, code, "")
    assert missing.status_code == 400


def test_wrong_redirect_and_wrong_password_are_refused(provider: Provider) -> None:
    verifier = secrets.token_urlsafe(48)
    elsewhere = authorize(provider, verifier, redirect_uri="http://127.0.0.1:1/evil")
    assert elsewhere.status_code == 400 and "Location" not in elsewhere.headers
    unknown = authorize(provider, verifier, client_id="nobody")
    assert unknown.status_code == 400 and "Location" not in unknown.headers
    plain = authorize(provider, verifier, code_challenge_method="plain")
    assert plain.status_code == 400

    bad_password = requests.post(
        provider.url("/authorize"),
        data={
            "client_id": "flytectl",
            "response_type": "code",
            "redirect_uri": REDIRECT,
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
            "username": "alice",
            "password": "guess",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert bad_password.status_code == 401 and "Location" not in bad_password.headers

    # A code is bound to the redirect URI it was issued for.
    code = code_of(authorize(provider, verifier))
    moved = exchange(provider, code, verifier, redirect_uri="http://127.0.0.1:53999/other")
    assert moved.status_code == 400 and moved.json()["error"] == "invalid_grant"


def test_device_flow_pending_then_approved_then_spent(provider: Provider) -> None:
    start = requests.post(
        provider.url("/device/code"), data={"client_id": "flytectl", "scope": "openid"}, timeout=10
    ).json()
    assert start["verification_uri"] == provider.url("/device") and start["interval"] == 1
    assert len(start["user_code"]) == 9 and start["user_code"][4] == "-"
    poll = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "client_id": "flytectl",
        "device_code": start["device_code"],
    }
    pending = requests.post(provider.url("/token"), data=poll, timeout=10)
    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"

    wrong = requests.post(
        provider.url("/device"),
        data={"user_code": start["user_code"], "username": "alice", "password": "nope"},
        timeout=10,
    )
    assert wrong.status_code == 401
    approved = requests.post(
        provider.url("/device"),
        data={"user_code": start["user_code"], "username": "alice", "password": "wonderland"},
        timeout=10,
    )
    assert approved.status_code == 200 and 'id="approved"' in approved.text.replace("'", '"')
    tokens = requests.post(provider.url("/token"), data=poll, timeout=10)
    assert tokens.status_code == 200, tokens.text
    assert provider.verify(tokens.json()["access_token"])["sub"] == "alice"  # type: ignore[index]
    spent = requests.post(provider.url("/token"), data=poll, timeout=10)
    assert spent.status_code == 400 and spent.json()["error"] == "invalid_grant"


def test_device_code_expires(provider: Provider) -> None:
    start = requests.post(
        provider.url("/device/code"), data={"client_id": "flytectl"}, timeout=10
    ).json()
    provider.expire_device_codes()
    poll = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "client_id": "flytectl",
        "device_code": start["device_code"],
    }
    expired = requests.post(provider.url("/token"), data=poll, timeout=10)
    assert expired.status_code == 400 and expired.json()["error"] == "expired_token"
    assert not provider.approve_device(start["user_code"], "alice")


def test_client_credentials_and_refresh(provider: Provider) -> None:
    secret = "s3cret/with+odd=chars"
    # flytekit's shape: HTTP Basic over the form-URL-encoded secret.
    basic = base64.b64encode(f"machine:{urllib.parse.quote_plus(secret)}".encode()).decode()
    ok = requests.post(
        provider.url("/token"),
        data={"grant_type": "client_credentials", "scope": "all"},
        headers={"Authorization": f"Basic {basic}"},
        timeout=10,
    )
    assert ok.status_code == 200, ok.text
    claims = provider.verify(ok.json()["access_token"])
    assert claims is not None and claims["sub"] == "machine" == claims["client_id"]
    assert "refresh_token" not in ok.json()
    refused = requests.post(
        provider.url("/token"),
        data={"grant_type": "client_credentials", "client_id": "machine", "client_secret": "x"},
        timeout=10,
    )
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    public = requests.post(
        provider.url("/token"),
        data={"grant_type": "client_credentials", "client_id": "flytectl"},
        timeout=10,
    )
    assert public.status_code == 400

    verifier = secrets.token_urlsafe(48)
    refresh = exchange(provider, code_of(authorize(provider, verifier)), verifier).json()[
        "refresh_token"
    ]
    form = {"grant_type": "refresh_token", "client_id": "flytectl", "refresh_token": refresh}
    renewed = requests.post(provider.url("/token"), data=form, timeout=10)
    assert renewed.status_code == 200 and renewed.json()["refresh_token"] != refresh
    # Refresh tokens rotate: the old one is spent.
    assert requests.post(provider.url("/token"), data=form, timeout=10).status_code == 400


def test_userinfo(provider: Provider) -> None:
    token = provider.mint("alice")
    info = requests.get(
        provider.url("/userinfo"), headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert info.json()["preferred_username"] == "alice"
    bad = provider.mint("alice", key="other")
    refused = requests.get(
        provider.url("/userinfo"), headers={"Authorization": f"Bearer {bad}"}, timeout=10
    )
    assert refused.status_code == 401


def test_minted_negative_tokens(provider: Provider) -> None:
    keys = provider._keys
    good = provider.mint("alice")
    assert decode_verified(good, keys) is not None
    other = provider.mint("alice", key="other")
    assert unverified_claims(other)["sub"] == "alice"
    assert decode_verified(other, keys) is None
    unsigned = provider.mint("alice", alg="none")
    assert unsigned.endswith(".") and decode_verified(unsigned, keys) is None
    expired = provider.mint("alice", exp=int(time.time()) - 600)
    assert provider.verify(expired) is None
    elsewhere = provider.mint("alice", aud="someone-else")
    assert unverified_claims(elsewhere)["aud"] == "someone-else"


class _Callback(BaseHTTPRequestHandler):
    """Stands for a client's redirect URI: records the query it was called with."""

    seen: list[str] = []

    def do_GET(self) -> None:
        _Callback.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<p>done</p>")

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_chromium_completes_the_login_and_the_device_page(provider: Provider) -> None:
    callback = HTTPServer(("127.0.0.1", 0), _Callback)
    redirect = f"http://127.0.0.1:{callback.server_address[1]}/callback"
    provider.clients["browser-client"] = Client(redirect_uris=[redirect])
    thread = threading.Thread(target=callback.serve_forever, daemon=True)
    thread.start()
    try:
        url = provider.url("/authorize?") + urllib.parse.urlencode(
            {
                "client_id": "browser-client",
                "response_type": "code",
                "redirect_uri": redirect,
                "state": "xyz",
                "code_challenge": pkce_challenge("w" * 60),
                "code_challenge_method": "S256",
            }
        )
        landed = browser.complete_login(url, "alice", "wonderland")
        assert landed.startswith(redirect + "?")
        # The client's redirect URI was really called (a browser also asks it for a favicon).
        called = [path for path in _Callback.seen if path.startswith("/callback?")]
        assert called == ["/callback?" + landed.split("?", 1)[1]]
        query = dict(urllib.parse.parse_qsl(called[0].split("?", 1)[1]))
        assert query["state"] == "xyz"
        tokens = requests.post(
            provider.url("/token"),
            data={
                "grant_type": "authorization_code",
                "client_id": "browser-client",
                "code": query["code"],
                "redirect_uri": redirect,
                "code_verifier": "w" * 60,
            },
            timeout=10,
        )
        assert tokens.status_code == 200, tokens.text
        with pytest.raises(RuntimeError, match="login refused"):
            browser.complete_login(url, "alice", "not-her-password")
    finally:
        callback.shutdown()
        callback.server_close()

    start = requests.post(
        provider.url("/device/code"), data={"client_id": "flytectl"}, timeout=10
    ).json()
    browser.complete_device_login(start["verification_uri_complete"], "alice", "wonderland")
    poll = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "client_id": "flytectl",
        "device_code": start["device_code"],
    }
    assert requests.post(provider.url("/token"), data=poll, timeout=10).status_code == 200
