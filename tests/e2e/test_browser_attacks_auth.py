"""The CSRF and DNS-rebinding attacks of test_browser_attacks.py again, with the built-in
authorization server on (issue 15), and worse for the defender: the browser holds a valid
console session (`alula_session`, an admin's access token) for the server's origin, and the
attacking page asks for credentials on its cross-origin requests. The Host/Origin guard must
still refuse the page (403) before any credential counts: nothing is created and no command
runs, while the same payload sent by a client with its bearer token runs (the control), and the
session cookie itself is shown to work for the server's own pages."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from auth_support import AuthServer, create_client, start_auth_server
from playwright.sync_api import sync_playwright
from test_browser_attacks import (
    ATTACK_PAGE,
    ATTACKER,
    CHROMIUM,
    DOMAIN,
    PROJECT,
    REBOUND,
    execution,
    plain_request,
    serve_attack_page,
    shell_task,
    wait_for,
)

# The page of test_browser_attacks.py, its fetches asking the browser to attach cookies.
CREDENTIALED_ATTACK_PAGE = ATTACK_PAGE.replace(
    'method: "POST", mode: "no-cors",', 'method: "POST", mode: "no-cors", credentials: "include",'
)
assert CREDENTIALED_ATTACK_PAGE != ATTACK_PAGE


def admin_token(server: AuthServer) -> str:
    client = create_client(server, "browser-admin", "admin")
    request = urllib.request.Request(
        f"{server.http_url}/oauth2/token",
        data=(
            "grant_type=client_credentials"
            f"&client_id={client.client_id}&client_secret={client.client_secret}"
        ).encode(),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.loads(response.read())["access_token"])


def api(server: AuthServer, token: str | None, method: str, path: str, body: Any = None) -> Any:
    """A call as a real client makes it: JSON, to the server's own address, with its token."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"{server.http_url}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers=headers,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def created(server: AuthServer, token: str) -> tuple[set[str], set[str]]:
    tasks = api(server, token, "GET", f"/api/v1/task_ids/{PROJECT}/{DOMAIN}?limit=100")
    executions = api(server, token, "GET", f"/api/v1/executions/{PROJECT}/{DOMAIN}?limit=100")
    return (
        {t["name"] for t in tasks.get("entities", [])},
        {e["id"]["name"] for e in executions.get("executions", [])},
    )


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[tuple[AuthServer, str]]:
    server = start_auth_server(tmp_path / "server", env={"ALULA_AUTH": "builtin"})
    try:
        yield server, admin_token(server)
    finally:
        server.stop()


@pytest.fixture
def attacker_site(
    auth_server: tuple[AuthServer, str], tmp_path: Path
) -> Iterator[tuple[str, Path]]:
    """Serves the attack page from another origin; yields its URL and the marker it aims at."""
    server, _ = auth_server
    marker = tmp_path / "pwned"
    with serve_attack_page(server.http_url, marker, CREDENTIALED_ATTACK_PAGE) as url:
        yield url, marker


def test_a_logged_in_browser_still_refuses_other_sites(
    auth_server: tuple[AuthServer, str], attacker_site: tuple[str, Path], tmp_path: Path
) -> None:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: scripts/test installs Debian's chromium"
    server, token = auth_server
    page_url, marker = attacker_site
    http_port = server.server.http_port
    rebound: list[tuple[str, int, str]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[f"--host-resolver-rules=MAP {ATTACKER} 127.0.0.1, MAP {REBOUND} 127.0.0.1"],
        )
        try:
            context = browser.new_context()
            own = context.new_page()
            # Logged out, the server's own page is refused; with the session it is served:
            # the cookie the attack rides on is a valid one.
            response = own.goto(f"{server.http_url}/api/v1/projects")
            assert response is not None and response.status == 401, response
            context.add_cookies(
                [
                    {
                        "name": "alula_session",
                        "value": token,
                        "domain": "127.0.0.1",
                        "path": "/",
                        "httpOnly": True,
                        "secure": False,
                        "sameSite": "Lax",
                    }
                ]
            )
            response = own.goto(f"{server.http_url}/api/v1/projects")
            assert response is not None
            assert response.status == 200, response.text()

            page = context.new_page()
            page.goto(page_url)
            page.wait_for_function("document.title === 'done'", timeout=60_000)
            page.screenshot(path=str(tmp_path / "attacker-page.png"), full_page=True)

            # DNS rebinding, from the same logged-in browser.
            rebinding = context.new_page()
            response = rebinding.goto(f"http://{REBOUND}:{http_port}/api/v1/projects")
            assert response is not None
            rebound.append(("GET (navigation)", response.status, response.text()))
            result = rebinding.evaluate(
                """async (body) => {
                    const r = await fetch("/api/v1/tasks", {method: "POST",
                        credentials: "include",
                        headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
                    return [r.status, await r.text()];
                }""",
                shell_task("rebound-pwn", f"touch {marker}"),
            )
            rebound.append(("POST (same-origin fetch)", result[0], result[1]))
        finally:
            browser.close()

    # Without a token a client is refused; with one, the same kind of payload runs.
    with pytest.raises(urllib.error.HTTPError) as refused:
        api(server, None, "POST", "/api/v1/tasks", shell_task("anonymous", "true"))
    assert refused.value.code == 401
    control = tmp_path / "control"
    api(server, token, "POST", "/api/v1/tasks", shell_task("control", f"touch {control}"))
    api(server, token, "POST", "/api/v1/executions", execution("control", "control"))
    assert wait_for(control), "the control execution never ran its command"

    assert created(server, token) == ({"control"}, {"control"})
    assert not marker.exists(), "a web page ran a command on this machine"
    for what, status, body in rebound:
        assert status == 403, f"{what} through {REBOUND}: {status} {body}"
        assert "host" in json.loads(body)["message"], body


def test_rebinding_hosts_are_refused_even_with_a_token(
    auth_server: tuple[AuthServer, str],
) -> None:
    server, token = auth_server
    port = server.server.http_port
    foreign = {
        "Host": f"{ATTACKER}:{port}",
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
    }
    for method, path, body in [
        ("GET", "/api/v1/projects", None),
        ("POST", "/api/v1/tasks", shell_task("rebound", "true")),
    ]:
        status, reply = plain_request(port, method, path, foreign, body)
        # Not the reply in the message on success paths: only the code is compared.
        assert (status, json.loads(reply)["code"]) == (403, 7), reply
    # A cross-origin page's request, credentials attached: refused by its Origin.
    status, reply = plain_request(
        port,
        "POST",
        "/api/v1/tasks",
        {
            "Origin": f"http://{ATTACKER}:{port}",
            "Content-Type": "text/plain",
            "Cookie": f"alula_session={token}",
        },
        shell_task("cross-origin", "true"),
    )
    assert status == 403, reply
    assert "rebound" not in created(server, token)[0]
    assert "cross-origin" not in created(server, token)[0]
