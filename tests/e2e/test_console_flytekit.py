"""The link the real flytekit prints opens the console (issue 14): `alula start` writes a
flytekit config with `console.endpoint` and prints the console's URL; `pyflyte --config <that
config> run --remote` prints `Go to <url>`; Chromium opens that URL and it is the execution
page of that very execution."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import _free_port, _wait_for_port
from flytekit.configuration import Config
from flytekit.models.core.identifier import Identifier, ResourceType
from flytekit.remote import FlyteRemote
from playwright.sync_api import Browser, expect

BIN = Path(sys.executable).parent
PROJECT, DOMAIN = "flytesnacks", "development"
WORKFLOW = """from flytekit import task, workflow


@task
def greet(name: str) -> str:
    print(f"console-link greeting {name}")
    return f"Hello, {name}!"


@workflow
def wf(name: str = "world") -> str:
    return greet(name=name)
"""


ALULA_WORKFLOW = """from alula import task, workflow


@task
def shout(word: str) -> str:
    return word.upper()


@workflow
def wf(word: str = "hi") -> str:
    return shout(word=word)
"""


@dataclass
class Started:
    folder: Path
    grpc: int
    http: int
    output: Path

    @property
    def config(self) -> Path:
        return self.folder / "alula-data" / "flytekit-config.yaml"


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    """`alula start` on free ports in a folder of its own, as a user runs it."""
    folder = tmp_path_factory.mktemp("alula-start")
    grpc, http = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALULA_")}
    output = folder / "start.log"
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [BIN / "alula", "start", "--grpc-port", str(grpc), "--http-port", str(http)],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_port(http, proc, output)
        # The banner and the config are written once the server is ready.
        deadline = time.monotonic() + 30
        while "Stop with Ctrl-C" not in output.read_text():
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.1)
        yield Started(folder, grpc, http, output)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_start_writes_the_console_endpoint(started: Started) -> None:
    console = f"http://127.0.0.1:{started.http}"
    config = started.config.read_text()
    assert f"console:\n  endpoint: {console}\n" in config, config
    banner = started.output.read_text()
    assert re.search(rf"console\s+{re.escape(console)}/console\n", banner), banner


def test_the_link_pyflyte_prints_opens_the_execution(
    started: Started, chromium: Browser, tmp_path: Path
) -> None:
    (tmp_path / "hello_link.py").write_text(WORKFLOW)
    done = subprocess.run(
        [BIN / "pyflyte", "--config", started.config, "run", "--remote"]
        + ["hello_link.py", "wf", "--name", "console"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"Go to (\S+) to see execution in the console", done.stdout)
    assert found, done.stdout
    url = found.group(1)
    base = f"http://127.0.0.1:{started.http}/console/projects/{PROJECT}/domains/{DOMAIN}"
    assert url.startswith(f"{base}/executions/"), url
    name = url.rsplit("/", 1)[-1]

    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        response = page.goto(url)
        assert response is not None and response.status == 200
        # The page of that execution: its name, its phase badge and its graph.
        expect(page.locator("main span.phase[data-phase]").first).to_have_attribute(
            "data-phase", re.compile("QUEUED|RUNNING|SUCCEEDED")
        )
        expect(page.locator("main")).to_contain_text(name)
        expect(page.locator("svg#graph g.node").first).to_be_attached()
        # The page follows the run (live refresh, no reload) to its end, then shows its
        # outputs, and the task's node its logs.
        expect(page.locator("main span.phase[data-phase]").first).to_have_attribute(
            "data-phase", "SUCCEEDED", timeout=120_000
        )
        page.reload()
        expect(page.locator('div.value[data-name="o0"]').first).to_contain_text("Hello, console!")
        page.locator('svg#graph g.node[data-node-id="n0"] a').first.click()
        panel = page.locator('section#node-detail[data-node-id="n0"]')
        expect(panel.locator('pre.logs[data-stream="stdout"]')).to_contain_text(
            "console-link greeting console", timeout=20_000
        )
        page.screenshot(path=str(tmp_path / "pyflyte-link.png"), full_page=True)

        # The entity links flytekit prints (`pyflyte register`: .../{workflow|task|launch_plan}/
        # {name}/version/{v}) open their entity's page too.
        remote = FlyteRemote(
            Config.auto(config_file=str(started.config)),
            default_project=PROJECT,
            default_domain=DOMAIN,
        )
        execution = remote.fetch_execution(name=name)
        assert remote.generate_console_url(execution) == url
        plan = execution.spec.launch_plan
        entities = {
            ResourceType.LAUNCH_PLAN: plan.name,
            ResourceType.WORKFLOW: plan.name,
            ResourceType.TASK: "hello_link.greet",
        }
        for kind, entity in entities.items():
            ident = Identifier(kind, PROJECT, DOMAIN, entity, plan.version)
            link = remote.generate_console_url(ident)
            response = page.goto(link)
            assert response is not None and response.status == 200, link
            expect(page.locator("main")).to_contain_text(entity)
            page.screenshot(path=str(tmp_path / f"pyflyte-entity-{kind}.png"), full_page=True)
    finally:
        context.close()


def test_the_link_alula_run_prints_opens_the_execution(
    started: Started, chromium: Browser, tmp_path: Path
) -> None:
    """`alula run --remote` knows only the gRPC endpoint: its link goes there, and that port
    sends the browser on to the console (as it does for flytekit without `console.endpoint`)."""
    (tmp_path / "shout.py").write_text(ALULA_WORKFLOW)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALULA_")}
    done = subprocess.run(
        [BIN / "alula", "run", "--remote", "--endpoint", f"127.0.0.1:{started.grpc}"]
        + ["shout.py", "wf", "--word", "loud"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"^console\s+(\S+)$", done.stdout, re.MULTILINE)
    assert found, done.stdout
    url = found.group(1)
    prefix = f"http://127.0.0.1:{started.grpc}/console/projects/{PROJECT}/domains/{DOMAIN}"
    assert url.startswith(f"{prefix}/executions/"), url
    name = url.rsplit("/", 1)[-1]

    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        response = page.goto(url)
        assert response is not None and response.status == 200
        # Redirected to the HTTP port's console, on that execution's page.
        assert page.url.startswith(f"http://127.0.0.1:{started.http}/console/"), page.url
        expect(page.locator("main")).to_contain_text(name)
        expect(page.locator("main span.phase[data-phase]").first).to_have_attribute(
            "data-phase", "SUCCEEDED", timeout=60_000
        )
    finally:
        context.close()


def test_console_address_for_wildcard_binds_and_public_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alula.start import _client_config, _console_base, _public_http_url

    monkeypatch.delenv("ALULA_PUBLIC_HTTP_URL", raising=False)
    assert _console_base("0.0.0.0:8088", None) == "http://127.0.0.1:8088"
    assert _console_base("[::]:8088", None) == "http://[::1]:8088"
    assert _console_base("10.1.2.3:80", None) == "http://10.1.2.3:80"
    # The server's own setting wins: from its TOML file, or the variable over the file.
    settings = tmp_path / "alula.toml"
    settings.write_text('public_http_url = "https://alula.example/base/"\n')
    assert _public_http_url(str(settings)) == "https://alula.example/base/"
    assert _console_base("0.0.0.0:8088", _public_http_url(str(settings))) == (
        "https://alula.example/base"
    )
    monkeypatch.setenv("ALULA_PUBLIC_HTTP_URL", "https://other.example")
    assert _public_http_url(str(settings)) == "https://other.example"
    # flytekit reads the config alula start writes as intended.
    config = tmp_path / "config.yaml"
    config.write_text(_client_config("127.0.0.1:8089", "https://alula.example"))
    platform = Config.auto(config_file=str(config)).platform
    assert platform.endpoint == "127.0.0.1:8089"
    assert platform.insecure
    assert platform.console_endpoint == "https://alula.example"
