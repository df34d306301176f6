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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import _free_port, _wait_for_port, browser_page
from flytekit.configuration import Config
from flytekit.models.core.identifier import Identifier, ResourceType
from flytekit.remote import FlyteRemote
from playwright.sync_api import Browser, Page, expect

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


def _run(
    command: list[str | Path], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A CLI run to its end in `cwd` (with `env`, else this process's), its output captured."""
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _printed_execution_link(
    done: subprocess.CompletedProcess[str], pattern: str, base: str
) -> tuple[str, str]:
    """The execution page a CLI printed (group 1 of `pattern`, `^`/`$` matching per line),
    checked to be under `base`: its URL and the execution's name."""
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(pattern, done.stdout, re.MULTILINE)
    assert found, done.stdout
    url = found.group(1)
    assert url.startswith(f"{base}/executions/"), url
    return url, url.rsplit("/", 1)[-1]


@contextmanager
def _page_at(chromium: Browser, url: str) -> Iterator[Page]:
    """A fresh browser context's page opened at `url` (which must answer 200)."""
    with browser_page(chromium) as page:
        response = page.goto(url)
        assert response is not None and response.status == 200
        yield page


def test_the_link_pyflyte_prints_opens_the_execution(
    started: Started, chromium: Browser, tmp_path: Path
) -> None:
    (tmp_path / "hello_link.py").write_text(WORKFLOW)
    done = _run(
        [
            BIN / "pyflyte",
            "--config",
            started.config,
            "run",
            "--remote",
            "hello_link.py",
            "wf",
            "--name",
            "console",
        ],
        tmp_path,
    )
    base = f"http://127.0.0.1:{started.http}/console/projects/{PROJECT}/domains/{DOMAIN}"
    url, name = _printed_execution_link(done, r"Go to (\S+) to see execution in the console", base)

    with _page_at(chromium, url) as page:
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


def test_the_link_alula_run_prints_opens_the_execution(
    started: Started, chromium: Browser, tmp_path: Path
) -> None:
    """`alula run --remote` knows only the gRPC endpoint: its link goes there, and that port
    sends the browser on to the console (as it does for flytekit without `console.endpoint`)."""
    (tmp_path / "shout.py").write_text(ALULA_WORKFLOW)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALULA_")}
    done = _run(
        [
            BIN / "alula",
            "run",
            "--remote",
            "--endpoint",
            f"127.0.0.1:{started.grpc}",
            "shout.py",
            "wf",
            "--word",
            "loud",
        ],
        tmp_path,
        env,
    )
    prefix = f"http://127.0.0.1:{started.grpc}/console/projects/{PROJECT}/domains/{DOMAIN}"
    url, name = _printed_execution_link(done, r"^console\s+(\S+)$", prefix)

    with _page_at(chromium, url) as page:
        # Redirected to the HTTP port's console, on that execution's page.
        assert page.url.startswith(f"http://127.0.0.1:{started.http}/console/"), page.url
        expect(page.locator("main")).to_contain_text(name)
        expect(page.locator("main span.phase[data-phase]").first).to_have_attribute(
            "data-phase", "SUCCEEDED", timeout=60_000
        )


def test_flytekit_reads_the_console_endpoint(tmp_path: Path) -> None:
    """The config `alula start` writes is read by flytekit as intended (the address itself is
    the server's `public_http_url`: rust/server's `wildcard_binds_are_reached_on_loopback`)."""
    from alula.start import _client_config

    # flytekit reads the config alula start writes as intended.
    config = tmp_path / "config.yaml"
    config.write_text(_client_config("127.0.0.1:8089", "https://alula.example"))
    platform = Config.auto(config_file=str(config)).platform
    assert platform.endpoint == "127.0.0.1:8089"
    assert platform.insecure
    assert platform.console_endpoint == "https://alula.example"
