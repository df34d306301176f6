"""Notifications from a real alula-server (admin + propeller, settings from a TOML file) with the
real flytekit: launch plans registered with `Email` and `Slack` notifications; a failed execution
mails an aiosmtpd server, a succeeded one posts to a local webhook."""

from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from conftest import _free_port, _wait_for_port, pyflyte_register, server_binary
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.remote import FlyteRemote

PROJECT, DOMAIN, VERSION = "flytesnacks", "development", "notify-v1"
TIMEOUT_S = 180

FLOW = """
from flytekit import Email, LaunchPlan, Slack, WorkflowExecutionPhase, task, workflow


@task
def ok(x: int) -> int:
    return x + 1


@task
def boom(x: int) -> int:
    if x > 0:
        raise ValueError(f"boom {x}")
    return x


@workflow
def fine(x: int = 1) -> int:
    return ok(x=x)


@workflow
def broken(x: int = 1) -> int:
    return boom(x=x)


mail_on_failure = LaunchPlan.get_or_create(
    broken,
    name="mail_on_failure",
    notifications=[
        Email(phases=[WorkflowExecutionPhase.FAILED], recipients_email=["ops@example.com"]),
    ],
)
slack_on_success = LaunchPlan.get_or_create(
    fine,
    name="slack_on_success",
    notifications=[
        Slack(phases=[WorkflowExecutionPhase.SUCCEEDED], recipients_email=["team@x.slack.com"]),
        Email(phases=[WorkflowExecutionPhase.FAILED], recipients_email=["ops@example.com"]),
    ],
)
"""


class Mailbox:
    """aiosmtpd's handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


class Hooks(BaseHTTPRequestHandler):
    bodies: list[Any] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length", "0"))
        Hooks.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[int, Mailbox]]:
    box = Mailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, box
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def webhook() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, mailbox: tuple[int, Mailbox], webhook: str
) -> Iterator[tuple[Path, int]]:
    """alula-server with admin and propeller, notifications set in its TOML file."""
    work = tmp_path_factory.mktemp("notify")
    grpc_port, http_port = _free_port(), _free_port()
    settings = work / "alula.toml"
    settings.write_text(
        f"""
[notifications]
poll_interval_ms = 100
[notifications.smtp]
host = "127.0.0.1"
port = {mailbox[0]}
from = "Alula <alula@example.com>"
security = "none"
[notifications.slack]
webhook_url = "{webhook}"
"""
    )
    flytekit_config = work / "config.yaml"
    flytekit_config.write_text(
        f"admin:\n  endpoint: dns:///127.0.0.1:{grpc_port}\n  insecure: true\n"
    )
    env = {
        **os.environ,
        "ALULA_GRPC_PORT": str(grpc_port),
        "ALULA_HTTP_PORT": str(http_port),
        "ALULA_STORAGE_ROOT": str(work / "storage"),
        "ALULA_DATABASE_URL": f"sqlite://{work / 'alula.db'}?mode=rwc",
        "ALULA_TASK_PATH": str(Path(sys.executable).parent),
    }
    log_file = work / "server.log"
    with log_file.open("wb") as log:
        proc = subprocess.Popen(
            [server_binary(), "--config", str(settings)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(grpc_port, proc, log_file)
        yield flytekit_config, http_port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def remote(server: tuple[Path, int], tmp_path_factory: pytest.TempPathFactory) -> FlyteRemote:
    config_file, _ = server
    root = tmp_path_factory.mktemp("src")
    (root / "notify_flows").mkdir()
    (root / "notify_flows" / "__init__.py").write_text("")
    (root / "notify_flows" / "flow.py").write_text(FLOW)
    return pyflyte_register(config_file, root, "notify_flows", VERSION)


def wait_for(what: str, check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_failed_execution_sends_its_email(
    remote: FlyteRemote, mailbox: tuple[int, Mailbox], server: tuple[Path, int]
) -> None:
    lp = remote.fetch_launch_plan(name="mail_on_failure", version=VERSION)
    done = remote.wait(remote.execute(lp, inputs={"x": 7}), timeout=TIMEOUT_S, poll_interval=0.2)
    assert done.closure.phase == WorkflowExecutionPhase.FAILED
    name = done.id.name

    box = mailbox[1]
    recipients, raw = wait_for("the email", lambda: box.messages and box.messages[0])
    assert recipients == ["ops@example.com"]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == f'Notice: Execution "{name}" has failed in "development".'
    assert message["From"] == "Alula <alula@example.com>"
    body = message.get_body().get_content()  # type: ignore[union-attr]
    link = f"http://127.0.0.1:{server[1]}/console/projects/{PROJECT}/domains/{DOMAIN}/executions/{name}"
    assert f'Execution "{name}" has failed in "development". View details at {link}.' in body
    assert "The execution failed with error: [" in body and "boom 7" in body


def test_a_succeeded_execution_posts_to_the_webhook(
    remote: FlyteRemote, mailbox: tuple[int, Mailbox]
) -> None:
    sent_before = len(mailbox[1].messages)
    lp = remote.fetch_launch_plan(name="slack_on_success", version=VERSION)
    done = remote.wait(remote.execute(lp, inputs={"x": 1}), timeout=TIMEOUT_S, poll_interval=0.2)
    assert done.closure.phase == WorkflowExecutionPhase.SUCCEEDED
    name = done.id.name

    body = wait_for("the webhook", lambda: Hooks.bodies and Hooks.bodies[0])
    assert list(body) == ["text"]
    assert body["text"].startswith(
        f'Notice: Execution "{name}" has succeeded in "development".\n'
        f'Execution "{name}" has succeeded in "development". View details at '
    )
    assert body["text"].endswith("\nRecipients: team@x.slack.com")
    # Its FAILED-only email is not sent.
    time.sleep(1)
    assert len(mailbox[1].messages) == sent_before
