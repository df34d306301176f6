"""Starts a real alula-server (built with cargo) on free ports, with a temporary SQLite file
and storage root, and writes a flytekit config pointing at it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


@pytest.fixture(scope="module")
def alula_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlulaServer]:
    subprocess.run(["cargo", "build", "-q", "-p", "alula-server"], cwd=REPO, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    binary = target / "debug" / "alula-server"
    work = tmp_path_factory.mktemp("alula-server")
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
    }
    with server.log_file.open("wb") as log:
        proc = subprocess.Popen([binary], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(server.grpc_port, proc, server.log_file)
        yield server
    finally:
        # Ctrl-C is the graceful shutdown path; it must end the process cleanly.
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, f"alula-server exited with {code}:\n{server.log_file.read_text()}"
