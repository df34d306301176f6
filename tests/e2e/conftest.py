"""Starts a real alula-server (built with cargo) on free ports, with a temporary SQLite file
and storage root, and writes a flytekit config pointing at it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60


@dataclass
class AlulaServer:
    grpc_port: int
    http_port: int
    storage_root: Path
    config_file: Path
    log_file: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"alula-server exited early:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"alula-server did not listen on {port}:\n{log.read_text()}")


def server_binary() -> Path:
    subprocess.run(["cargo", "build", "-q", "-p", "alula-server"], cwd=REPO, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "debug" / "alula-server"


@dataclass
class RunningServer:
    server: AlulaServer
    proc: subprocess.Popen[bytes]
    env: dict[str, str]
    # Arguments of the server binary (`--config FILE` when the test wrote a settings file).
    args: tuple[str, ...] = ()

    def stop(self, sig: int = signal.SIGINT) -> int:
        """Stops the server (Ctrl-C by default, the graceful path) and returns its exit code."""
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def restart(self) -> None:
        """Starts the server again on the same ports, database and storage."""
        with self.server.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [server_binary(), *self.args], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        _wait_for_port(self.server.grpc_port, self.proc, self.server.log_file)


def pyflyte_register(
    config_file: Path | str,
    root: Path,
    package: str,
    version: str,
    project: str = "flytesnacks",
    domain: str = "development",
    extra_args: tuple[str, ...] = (),
) -> Any:
    """Registers the package `root/package` with the real flytekit (`pyflyte register`: a
    fast-registered code bundle) on the server `config_file` points at, and answers a
    `FlyteRemote` on it (flytekit is imported here, not for every module using this file)."""
    from flytekit.configuration import Config
    from flytekit.remote import FlyteRemote

    pyflyte = Path(sys.executable).parent / "pyflyte"
    done = subprocess.run(
        [pyflyte, "--config", config_file, "register", *extra_args, "--version", version, package],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return FlyteRemote(
        Config.auto(config_file=str(config_file)),
        default_project=project,
        default_domain=domain,
    )


def start_server(
    work: Path,
    propeller: bool,
    extra_env: dict[str, str] | None = None,
    settings: str | None = None,
) -> RunningServer:
    """`settings`: the server's TOML settings file's text, if any (environment wins)."""
    binary = server_binary()
    args: tuple[str, ...] = ()
    if settings is not None:
        (work / "server.toml").write_text(settings)
        args = ("--config", str(work / "server.toml"))
    server = AlulaServer(
        grpc_port=_free_port(),
        http_port=_free_port(),
        storage_root=work / "storage",
        config_file=work / "config.yaml",
        log_file=work / "server.log",
    )
    server.config_file.write_text(
        f"admin:\n  endpoint: dns:///127.0.0.1:{server.grpc_port}\n  insecure: true\n"
    )
    env = {
        **os.environ,
        "ALULA_GRPC_PORT": str(server.grpc_port),
        "ALULA_HTTP_PORT": str(server.http_port),
        "ALULA_STORAGE_ROOT": str(server.storage_root),
        "ALULA_DATABASE_URL": f"sqlite://{work / 'alula.db'}?mode=rwc",
        "ALULA_PROPELLER": "1" if propeller else "0",
        # Tasks run with this test environment's tools (pyflyte-execute, alula-execute).
        "ALULA_TASK_PATH": str(Path(sys.executable).parent),
        **(extra_env or {}),
    }
    with server.log_file.open("wb") as log:
        proc = subprocess.Popen([binary, *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    running = RunningServer(server, proc, env, args)
    try:
        _wait_for_port(server.grpc_port, proc, server.log_file)
    except Exception:
        proc.kill()
        raise
    return running


@pytest.fixture(scope="module")
def alula_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlulaServer]:
    """Admin alone (no propeller): executions stay as the tests leave them."""
    running = start_server(tmp_path_factory.mktemp("alula-server"), propeller=False)
    try:
        yield running.server
    finally:
        # Ctrl-C is the graceful shutdown path; it must end the process cleanly.
        code = running.stop()
    assert code == 0, f"alula-server exited with {code}:\n{running.server.log_file.read_text()}"


@pytest.fixture(scope="module")
def alula_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Admin and propeller: executions run."""
    running = start_server(tmp_path_factory.mktemp("alula-cluster"), propeller=True)
    try:
        yield running
    finally:
        code = running.stop()
    assert code == 0, f"alula-server exited with {code}:\n{running.server.log_file.read_text()}"


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The S3-compatible endpoint scripts/test started (ALULA_TEST_S3_ENDPOINT), or a moto
    server of the module's own."""
    given = os.environ.get("ALULA_TEST_S3_ENDPOINT")
    if given:
        yield given.rstrip("/")
        return
    port = _free_port()
    log_file = tmp_path_factory.mktemp("moto") / "moto.log"
    moto = Path(sys.executable).parent / "moto_server"
    with log_file.open("wb") as log:
        proc = subprocess.Popen(
            [moto, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_for_port(port, proc, log_file)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def s3_env(endpoint: str) -> dict[str, str]:
    """What alula-server (object_store) and fsspec/s3fs (boto) read to reach `endpoint` with
    moto's fake credentials."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """One headless Debian Chromium per module, driven by Playwright's sync API (never a
    downloaded browser). Typed `object` so that modules not using it need no Playwright types."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def browser_page(
    browser: Any, *, width: int = 1280, height: int = 800, timeout_ms: int | None = None
) -> Iterator[Any]:
    """A page in a fresh context of `browser` (the `chromium` fixture's), closed afterwards;
    `timeout_ms` sets the context's default wait. Typed `Any` for the same reason as above."""
    context = browser.new_context(viewport={"width": width, "height": height})
    if timeout_ms is not None:
        context.set_default_timeout(timeout_ms)
    try:
        yield context.new_page()
    finally:
        context.close()
