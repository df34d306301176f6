"""The console follows a running attempt's log (issue 14): the node's panel shows the first
lines a task printed while it still runs, then appends the later ones as they come, each line
once, across the page's live refreshes (which replace the panel every few seconds)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import RunningServer, browser_page, start_server
from playwright.sync_api import Browser, Page, expect

from alula.remote import Remote

FLOWS = Path(__file__).parent / "console_logs_flows" / "ticker_flows.py"
PROJECT, DOMAIN = "flytesnacks", "development"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("console-logs"), propeller=True)
    try:
        yield running
    finally:
        running.stop()


def test_a_running_tasks_log_is_followed(server: RunningServer, chromium: Browser) -> None:
    remote = Remote(f"127.0.0.1:{server.server.grpc_port}", PROJECT, DOMAIN)
    remote.register(FLOWS)
    run = remote.execute("ticker", {"seconds": 12})
    base = f"http://127.0.0.1:{server.server.http_port}"
    url = f"{base}/console/projects/{PROJECT}/domains/{DOMAIN}/executions/{run.name}?node=n0"
    page: Page
    with browser_page(chromium, timeout_ms=20_000) as page:
        page.goto(url)
        panel = page.locator('section#node-detail[data-node-id="n0"]')
        logs = panel.locator('pre.logs[data-stream="stdout"]')
        expect(logs).to_contain_text("console-logs tick 2")
        # Still running: the page follows, it was not loaded once at the end.
        expect(panel.locator(".logs-panel")).to_have_attribute("data-running", "true")
        expect(logs).not_to_contain_text("console-logs tick 12")
        expect(logs).to_contain_text("console-logs tick 6")
        expect(logs).to_contain_text("console-logs tick 12", timeout=40_000)
        text = logs.inner_text()
        for i in range(1, 13):
            assert text.count(f"console-logs tick {i}\n") == 1, text
        # The stderr stream is shown apart, and the combined one is hidden for a process.
        expect(panel.locator('figure.log[data-stream="output"]')).to_be_hidden()
        expect(panel.locator('pre.logs[data-stream="stderr"]')).to_be_attached()
