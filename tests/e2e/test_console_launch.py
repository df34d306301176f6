"""The console's launch form in a real headless Chromium (Debian's `chromium`, driven by
Playwright) against admin alone: the launch plan's defaults pre-filled (the dataclass default,
stored as msgpack, shown as JSON), a value that is not JSON refused in the browser, a value of
the wrong type refused by the server with the error beside its field, and nothing created
either way; a file input filled by an upload through the data proxy. A successful run of a
launched execution is test_console.py's."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import AlulaServer, browser_page
from playwright.sync_api import Browser, Page, expect

from alula.remote import Registration, Remote

FLOWS = Path(__file__).parent / "console_flows" / "console_flows.py"
FILE_FLOWS = Path(__file__).parent / "launch_flows" / "launch_flows.py"
PROJECT, DOMAIN = "flytesnacks", "development"
LAUNCH_PLAN = "console_flows.typed"


@pytest.fixture(scope="module")
def registration(alula_server: AlulaServer) -> Registration:
    remote = Remote(f"127.0.0.1:{alula_server.grpc_port}", PROJECT, DOMAIN)
    return remote.register(FLOWS)


@pytest.fixture(scope="module")
def file_registration(alula_server: AlulaServer) -> Registration:
    remote = Remote(f"127.0.0.1:{alula_server.grpc_port}", PROJECT, DOMAIN)
    return remote.register(FILE_FLOWS)


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    with browser_page(chromium, height=900, timeout_ms=20_000) as page:
        yield page


def executions(server: AlulaServer) -> list[Any]:
    url = f"http://127.0.0.1:{server.http_port}/api/v1/executions/{PROJECT}/{DOMAIN}?limit=100"
    with urllib.request.urlopen(url, timeout=30) as response:
        found: list[Any] = json.loads(response.read()).get("executions", [])
        return found


def open_form(
    page: Page, server: AlulaServer, registration: Registration, lp: str = LAUNCH_PLAN
) -> None:
    url = (
        f"http://127.0.0.1:{server.http_port}/console/projects/{PROJECT}/domains/{DOMAIN}"
        f"/launchPlans/{lp}/launch?version={registration.version}"
    )
    response = page.goto(url)
    assert response is not None and response.status == 200


def test_defaults_are_prefilled(
    alula_server: AlulaServer, registration: Registration, page: Page
) -> None:
    open_form(page, alula_server, registration)
    expect(page.get_by_label("count")).to_have_value("1")
    expect(page.get_by_label("ratio")).to_have_value("0.5")
    expect(page.get_by_label("title")).to_have_value("hello")
    expect(page.get_by_label("loud")).not_to_be_checked()
    expect(page.get_by_label("color")).to_have_value("red")
    assert json.loads(page.get_by_label("values").input_value()) == [1, 2]
    assert json.loads(page.get_by_label("point").input_value()) == {"x": 0, "y": 0}


def test_bad_values_are_shown_beside_their_fields_and_create_nothing(
    alula_server: AlulaServer, registration: Registration, page: Page
) -> None:
    before = len(executions(alula_server))
    open_form(page, alula_server, registration)
    field = page.locator('.field[data-input="values"]')
    launch = page.locator('[data-action="launch"]')

    # Not JSON: refused in the browser, before any request.
    page.get_by_label("values").fill("[1, 2,")
    expect(field.locator(".field-error")).to_contain_text("not valid JSON")
    launch.click()
    expect(page.locator("#launch-error")).to_be_visible()
    expect(page.get_by_label("values")).to_have_attribute("aria-invalid", "true")

    # JSON of the wrong type: refused by the server, which names the element.
    page.get_by_label("values").fill('[1, "two"]')
    launch.click()
    expect(field.locator(".field-error")).to_contain_text("inputs.values[1]: expected an integer")
    expect(page.locator("#launch-error")).to_contain_text("inputs.values[1]")
    assert "/launch" in page.url
    assert len(executions(alula_server)) == before


def test_a_file_input_is_uploaded_through_the_data_proxy(
    alula_server: AlulaServer, file_registration: Registration, page: Page, tmp_path: Path
) -> None:
    local = tmp_path / "numbers.csv"
    local.write_bytes(b"a,b\n1,2\n")
    open_form(page, alula_server, file_registration, "launch_flows.sized")
    uri = page.locator("#input-f")
    expect(uri).to_have_value("")
    page.locator("#input-f-upload").set_input_files(str(local))
    expect(uri).to_have_value(re.compile(r".*/numbers\.csv$"))
    stored = Path(uri.input_value().removeprefix("file://"))
    assert stored.read_bytes() == local.read_bytes()
    page.locator('[data-action="launch"]').click()
    page.wait_for_url(re.compile(r".*/executions/[^/?]+$"))
    name = page.url.rsplit("/", 1)[-1]
    launched = [e for e in executions(alula_server) if e["id"]["name"] == name]
    assert len(launched) == 1
