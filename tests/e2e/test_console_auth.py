"""The console with an external identity provider, in headless Chromium: a viewer signs in
through the test provider's login page (authorization code with PKCE), lands on the page they
asked for, sees the executions and their own name, gets no launch controls, and a launch they
forge from the page is refused (403) with nothing created. A user in hundreds of groups, whose
access token (~10 KB) is far bigger than the 4 KB a browser keeps of a cookie, stays signed in.

The server is alula-server in OIDC mode against `tests/oidc_provider`; a developer registers
and runs a workflow with the real flytekit first (a token from the provider, ExternalCommand)."""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from auth_support import (
    AuthServer,
    flytekit_env,
    pyflyte,
    start_auth_server,
    write_flytekit_config,
)
from conftest import browser_page
from oidc_provider import Client, Provider, User
from oidc_provider.browser import sign_in

FLOWS = Path(__file__).parent / "auth_flows"
PROJECT, DOMAIN = "flytesnacks", "development"
LAUNCH_PLAN = "auth_flows.greeting.greet"
CONSOLE_CLIENT = "alula-console"
VIEWER_PASSWORD = "victor-sees-all"
MANY_GROUPS_PASSWORD = "gwen-joins-everything"
# Enough groups for a ~10 KB access token, as Entra ID or Keycloak give people in big orgs.
MANY_GROUPS = tuple(f"/org/department-{i:04}/team" for i in range(330)) + ("watchers",)
STARTED = re.compile(r"/executions/(\w+)")


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with Provider(
        users={
            "dana": User("dana-builds", "dana@example.com", "Dana", ("ml",)),
            "victor": User(VIEWER_PASSWORD, "victor@example.com", "Victor", ("watchers",)),
            "gwen": User(MANY_GROUPS_PASSWORD, "gwen@example.com", "Gwen", MANY_GROUPS),
        },
        clients={},
        audience="alula",
    ) as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, provider: Provider) -> Iterator[AuthServer]:
    settings = f"""
[auth]
mode = "oidc"
issuer = "{provider.issuer}"
audience = "alula"
console_client_id = "{CONSOLE_CLIENT}"

[[auth.bindings]]
subject = "group:ml"
project = "{PROJECT}"
domain = "*"
role = "developer"

[[auth.bindings]]
subject = "group:watchers"
project = "{PROJECT}"
domain = "*"
role = "viewer"
"""
    running = start_auth_server(tmp_path_factory.mktemp("console-oidc"), toml=settings)
    try:
        # The console is a public client of the provider (PKCE, no secret), called back on the
        # server's public URL.
        provider.clients[CONSOLE_CLIENT] = Client(
            redirect_uris=[f"{running.http_url}/console/oauth2/callback"]
        )
        yield running
    finally:
        code = running.stop()
    assert code == 0, f"alula-server exited with {code}:\n{running.log()}"


@pytest.fixture(scope="module")
def execution(
    server: AuthServer, provider: Provider, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """An execution of the greeting workflow, started by the developer with the real flytekit."""
    work = tmp_path_factory.mktemp("console-auth-src")
    shutil.copytree(FLOWS, work / "auth_flows", ignore=shutil.ignore_patterns("__pycache__"))
    config = write_flytekit_config(
        work / "dana.yaml",
        endpoint=server.grpc_target,
        tls=server.tls,
        auth_type="ExternalCommand",
        command=[sys.executable, "-c", f"print({provider.mint('dana')!r})"],
    )
    done = pyflyte(
        config,
        "run",
        "--remote",
        "auth_flows/greeting.py",
        "greet",
        "--name",
        "console",
        cwd=work,
        env=flytekit_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr + server.log()
    started = STARTED.search(done.stdout)
    assert started, done.stdout + done.stderr
    return started.group(1)


def executions_count(server: AuthServer, provider: Provider) -> int:
    answer = requests.get(
        f"{server.http_url}/api/v1/executions/{PROJECT}/{DOMAIN}",
        params={"limit": 100},
        headers={"Authorization": f"Bearer {provider.mint('dana')}"},
        timeout=30,
    )
    answer.raise_for_status()
    return len(answer.json().get("executions", []))


def test_a_viewer_signs_in_sees_executions_and_cannot_launch(
    server: AuthServer,
    provider: Provider,
    execution: str,
    chromium: Any,
    tmp_path: Path,
) -> None:
    executions_url = f"{server.http_url}/console/projects/{PROJECT}/domains/{DOMAIN}/executions"
    with browser_page(chromium, timeout_ms=60_000) as page:
        # Not signed in: the console sends the browser to the provider's login page.
        page.goto(executions_url)
        assert page.url.startswith(provider.issuer), page.url
        sign_in(page, "victor", VIEWER_PASSWORD)
        page.wait_for_url(executions_url)
        page.wait_for_selector(f'tr[data-execution="{execution}"]')
        # The header shows the token's readable name (records keep the `sub`).
        assert page.locator("span.user-name").get_attribute("data-user") == "Victor"
        assert page.locator("button#logout").count() == 1
        page.screenshot(path=str(tmp_path / "viewer-executions.png"), full_page=True)
        print(f"console screenshots: {tmp_path}")

        # Read-only: the execution's page has no controls, the launch plan no launch link.
        page.goto(f"{executions_url}/{execution}")
        page.wait_for_selector(f'#execution-header[data-execution="{execution}"]')
        assert page.locator("[data-action]").count() == 0
        page.screenshot(path=str(tmp_path / "viewer-execution.png"), full_page=True)
        page.goto(
            f"{server.http_url}/console/projects/{PROJECT}/domains/{DOMAIN}/launchPlans/{LAUNCH_PLAN}"
        )
        page.wait_for_selector("h1")
        assert page.locator('[data-action="launch"]').count() == 0

        # A launch forged from the page, with the session cookie: refused, nothing created.
        before = executions_count(server, provider)
        body = {
            "launch_plan": {"project": PROJECT, "domain": DOMAIN, "name": LAUNCH_PLAN},
            "inputs": {"name": "forged"},
        }
        status, text = page.evaluate(
            """async (body) => {
                const answer = await fetch('/console/actions/launch', {
                    method: 'POST',
                    headers: {'content-type': 'application/json'},
                    body: JSON.stringify(body),
                });
                return [answer.status, await answer.text()];
            }""",
            body,
        )
        assert status == 403, text
        assert json.loads(text)["code"] == 7, text
        assert executions_count(server, provider) == before

        # Signing out drops the session: the console asks for a login again.
        page.click("button#logout")
        page.goto(executions_url)
        assert page.url.startswith(provider.issuer), page.url


def test_a_user_with_a_ten_kilobyte_token_stays_signed_in(
    server: AuthServer, provider: Provider, execution: str, chromium: Any
) -> None:
    assert len(provider.mint("gwen")) > 10_000
    executions_url = f"{server.http_url}/console/projects/{PROJECT}/domains/{DOMAIN}/executions"
    with browser_page(chromium, timeout_ms=60_000) as page:
        page.goto(executions_url)
        assert page.url.startswith(provider.issuer), page.url
        sign_in(page, "gwen", MANY_GROUPS_PASSWORD)
        page.wait_for_url(executions_url)
        page.wait_for_selector(f'tr[data-execution="{execution}"]')
        assert page.locator("span.user-name").get_attribute("data-user") == "Gwen"
        # Still signed in on the next page: the browser kept the session cookie.
        page.goto(f"{executions_url}/{execution}")
        page.wait_for_selector(f'#execution-header[data-execution="{execution}"]')
        assert page.url.startswith(server.http_url), page.url
        cookies = [c for c in page.context.cookies() if c["name"] == "alula_session"]
        assert len(cookies) == 1 and len(cookies[0]["value"]) < 4096, cookies

        page.click("button#logout")
        page.goto(executions_url)
        assert page.url.startswith(provider.issuer), page.url
