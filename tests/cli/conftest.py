"""One alula-server (admin and propeller) per test module, started as tests/e2e starts it, and
`alula` run as a command against it."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alula.remote import Registration, Remote

REPO = Path(__file__).resolve().parents[2]
FLOWS = Path(__file__).parent / "flows" / "ctl_flows.py"
ALULA = Path(sys.executable).parent / "alula"
PROJECT, DOMAIN = "flytesnacks", "development"


def _e2e() -> Any:
    """tests/e2e/conftest.py, loaded under its own name (both files are `conftest`)."""
    spec = importlib.util.spec_from_file_location(
        "alula_e2e_conftest", REPO / "tests" / "e2e" / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs: its dataclasses look their module up.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    binary = os.environ.get("ALULA_TEST_SERVER_BINARY")
    if binary:
        # A server built already (the suite's caller built it): no cargo run per module.
        module.server_binary = lambda: Path(binary)
    return module


@dataclass
class Cli:
    """`alula` against one server, with a clean config-less environment."""

    endpoint: str
    home: Path
    remote: Remote
    registration: Registration

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ALULA_", "FLYTECTL"))}
        env.update({"ALULA_ENDPOINT": self.endpoint, "HOME": str(self.home), "COLUMNS": "200"})
        return env

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ALULA), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, f"alula {' '.join(args)}: {done.returncode}\n{done.stderr}"
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "-o", "json"))

    def fails(self, *args: str, code: int = 2) -> str:
        """A bad invocation: one line on stderr, the given exit code, no traceback."""
        done = self.run(*args)
        assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "Traceback" not in done.stderr
        return lines[0]


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    work = tmp_path_factory.mktemp("alula-ctl")
    running = _e2e().start_server(work, propeller=True)
    try:
        endpoint = f"127.0.0.1:{running.server.grpc_port}"
        remote = Remote(endpoint, PROJECT, DOMAIN)
        home = work / "home"
        home.mkdir()
        yield Cli(endpoint, home, remote, remote.register(FLOWS))
    finally:
        code = running.stop()
    assert code == 0, running.server.log_file.read_text()
