"""A real headless Chromium (Debian's `chromium`) opens a page of another site while
alula-server runs with its propeller, as a user of `alula start` would (issue 12). The page
sends what any page can send without a CORS preflight: `no-cors` fetches with `text/plain` JSON
bodies and `text/plain` form POSTs, each a CreateTask of a raw container that would `touch` a
marker file followed by a CreateExecution of it. A DNS-rebinding page (Chromium resolves its
name to 127.0.0.1) then calls the API from what the browser takes as its own origin.

Nothing may be created and the marker must not appear, while the same payload sent as a real
client sends it (JSON, the server's own host) runs and touches its own marker: the control
proves the payload would have run. The attacker page's screenshot is saved in the test's
temporary folder."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer
from playwright.sync_api import sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
PROJECT, DOMAIN = "flytesnacks", "development"
# Chromium resolves both names to this machine, as DNS would resolve an attacker's names.
ATTACKER, REBOUND = "attacker.example", "rebind.example"
RUN_TIMEOUT_S = 60


def shell_task(name: str, command: str) -> dict[str, Any]:
    ident = {
        "resourceType": "TASK",
        "project": PROJECT,
        "domain": DOMAIN,
        "name": name,
        "version": "v1",
    }
    template = {
        "id": ident,
        "type": "raw-container",
        "metadata": {"runtime": {"type": "OTHER"}},
        "interface": {"inputs": {}, "outputs": {}},
        "container": {"image": "alpine", "command": ["sh", "-c", command]},
    }
    return {"id": ident, "spec": {"template": template}}


def execution(name: str, task: str) -> dict[str, Any]:
    task_id = shell_task(task, "")["id"]
    return {
        "project": PROJECT,
        "domain": DOMAIN,
        "name": name,
        "spec": {"launchPlan": task_id},
        "inputs": {"literals": {}},
    }


def api(server: RunningServer, method: str, path: str, body: Any = None) -> Any:
    """A call as a real client makes it: JSON, to the server's own address."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.server.http_port}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def created(server: RunningServer) -> tuple[set[str], set[str]]:
    """The names of every task and execution in the project."""
    tasks = api(server, "GET", f"/api/v1/task_ids/{PROJECT}/{DOMAIN}?limit=100")
    executions = api(server, "GET", f"/api/v1/executions/{PROJECT}/{DOMAIN}?limit=100")
    return (
        {t["name"] for t in tasks.get("entities", [])},
        {e["id"]["name"] for e in executions.get("executions", [])},
    )


ATTACK_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>attacking</title></head>
<body>
<h1>An ordinary web page of another site</h1>
<p>It sends no-cors fetches and form posts to the Alula API at <code id="api"></code>.</p>
<ol id="log"></ol>
<iframe name="sink" style="width: 90%; height: 120px"></iframe>
<script>
const setup = __SETUP__;
document.getElementById("api").textContent = setup.api;
function log(text) {
  const item = document.createElement("li");
  item.textContent = text;
  document.getElementById("log").appendChild(item);
}
async function send(path, body) {
  try {
    const response = await fetch(setup.api + path, {
      method: "POST", mode: "no-cors",
      headers: {"Content-Type": "text/plain"}, body: JSON.stringify(body),
    });
    log(`no-cors POST ${path}: sent (${response.type} response)`);
  } catch (e) {
    log(`no-cors POST ${path}: ${e}`);
  }
}
// A text/plain form posts "name=value": the JSON is split where "=" lands inside a string.
function post(path, body, split) {
  return new Promise((resolve) => {
    const [name, value] = JSON.stringify(body).split(split);
    const form = document.createElement("form");
    form.method = "POST";
    form.enctype = "text/plain";
    form.target = "sink";
    form.action = setup.api + path;
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.appendChild(input);
    document.body.appendChild(form);
    const frame = document.querySelector("iframe");
    frame.onload = () => { log(`form POST ${path}: sent`); resolve(); };
    setTimeout(resolve, 5000);
    form.submit();
  });
}
(async () => {
  await send("/api/v1/tasks", setup.fetchTask);
  await send("/api/v1/executions", setup.fetchExecution);
  try {
    const response = await fetch(setup.api + "/api/v1/projects");
    log(`cross-origin GET: read ${response.status}`);
  } catch (e) {
    log(`cross-origin GET: not readable (${e})`);
  }
  await post("/api/v1/tasks", setup.formTask, "SPLIT");
  await post("/api/v1/executions", setup.formExecution, "SPLIT");
  document.title = "done";
})();
</script>
</body></html>
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_attack_page(api: str, marker: Path, template: str = ATTACK_PAGE) -> Iterator[str]:
    """Serves the attack page (`template`, aimed at `api` and at creating `marker`) from
    another origin and yields its URL."""
    touch = f"touch {marker}"
    setup = {
        "api": api,
        "fetchTask": shell_task("fetch-pwn", touch),
        "fetchExecution": execution("fetch-pwn", "fetch-pwn"),
        # The form's "=" lands in a shell comment and in the execution's principal.
        "formTask": shell_task("form-pwn", f"{touch} #SPLIT"),
        "formExecution": {
            **execution("form-pwn", "form-pwn"),
            "spec": {
                "launchPlan": shell_task("form-pwn", "")["id"],
                "metadata": {"principal": "aSPLITb"},
            },
        },
    }
    page = template.replace("__SETUP__", json.dumps(setup)).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    port = _free_port()
    site = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{ATTACKER}:{port}/"
    finally:
        site.shutdown()
        site.server_close()


@pytest.fixture
def attacker_site(alula_cluster: RunningServer, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Serves the attack page from another origin; yields its URL and the marker it aims at."""
    marker = tmp_path / "pwned"
    api = f"http://127.0.0.1:{alula_cluster.server.http_port}"
    with serve_attack_page(api, marker) as url:
        yield url, marker


def wait_for(path: Path) -> bool:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.2)
    return False


def test_web_pages_cannot_run_commands(
    alula_cluster: RunningServer, attacker_site: tuple[str, Path], tmp_path: Path
) -> None:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: scripts/test installs Debian's chromium"
    page_url, marker = attacker_site
    http_port = alula_cluster.server.http_port
    rebound: list[tuple[str, int, str]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[f"--host-resolver-rules=MAP {ATTACKER} 127.0.0.1, MAP {REBOUND} 127.0.0.1"],
        )
        try:
            page = browser.new_page()
            page.goto(page_url)
            page.wait_for_function("document.title === 'done'", timeout=60_000)
            page.screenshot(path=str(tmp_path / "attacker-page.png"), full_page=True)
            print(f"attacker page screenshot: {tmp_path / 'attacker-page.png'}")

            # DNS rebinding: the browser takes rebind.example:<port> for the page's own origin,
            # so its fetches are same-origin (any content type, responses readable).
            rebinding = browser.new_page()
            response = rebinding.goto(f"http://{REBOUND}:{http_port}/api/v1/projects")
            assert response is not None
            rebound.append(("GET (navigation)", response.status, response.text()))
            result = rebinding.evaluate(
                """async (body) => {
                    const r = await fetch("/api/v1/tasks", {method: "POST",
                        headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
                    return [r.status, await r.text()];
                }""",
                shell_task("rebound-pwn", f"touch {marker}"),
            )
            rebound.append(("POST (same-origin fetch)", result[0], result[1]))
        finally:
            browser.close()

    # The control: the same kind of payload, sent as a client sends it, runs (and gives any
    # execution the page managed to start the time to run too).
    control = tmp_path / "control"
    api(alula_cluster, "POST", "/api/v1/tasks", shell_task("control", f"touch {control}"))
    api(alula_cluster, "POST", "/api/v1/executions", execution("control", "control"))
    assert wait_for(control), "the control execution never ran its command"

    assert created(alula_cluster) == ({"control"}, {"control"})
    assert not marker.exists(), "a web page ran a command on this machine"
    for what, status, body in rebound:
        assert status == 403, f"{what} through {REBOUND}: {status} {body}"
        assert "host" in json.loads(body)["message"], body


def plain_request(
    port: int, method: str, path: str, headers: dict[str, str], body: Any = None
) -> Any:
    """One request on its own connection (the server closes one whose body it refused)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = None if body is None else json.dumps(body)
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_rebinding_hosts_are_refused_over_plain_http(alula_cluster: RunningServer) -> None:
    port = alula_cluster.server.http_port
    foreign = {"Host": f"{ATTACKER}:{port}", "Content-Type": "application/json"}
    for method, path, body in [
        ("GET", "/api/v1/projects", None),
        ("POST", "/api/v1/tasks", shell_task("rebound", "true")),
    ]:
        status, reply = plain_request(port, method, path, foreign, body)
        assert (status, json.loads(reply)["code"]) == (403, 7), reply
    # The probes keep answering Kubernetes, which sends the pod IP as the host.
    status, reply = plain_request(port, "GET", "/healthz", {"Host": "10.1.2.3:8088"})
    assert (status, reply) == (200, b"ok\n")
    assert "rebound" not in created(alula_cluster)[0]
