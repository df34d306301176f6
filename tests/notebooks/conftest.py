"""The notebooks run against a real alula-server with propeller (tests/e2e/conftest.py builds
and starts it); each notebook is executed once per session and its cells checked by the tests."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from notebook_support import Cell, execute

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
NOTEBOOKS = {
    "suite": HERE / "interactive.ipynb",
    "tour": REPO / "examples" / "notebook.ipynb",
}


def _e2e() -> Any:
    """tests/e2e/conftest.py under a name of its own (every test folder's is `conftest`)."""
    spec = importlib.util.spec_from_file_location("e2e_server", REPO / "tests/e2e/conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


E2E = _e2e()


@pytest.fixture(scope="session")
def notebook_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    running = E2E.start_server(tmp_path_factory.mktemp("notebook-server"), propeller=True)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def executed(
    notebook_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Cell]]:
    """Each notebook executed by a real ipykernel that reaches the server through
    ALULA_ENDPOINT (the notebooks' parameter cells read it), from a folder of its own."""
    endpoint = f"127.0.0.1:{notebook_server.server.grpc_port}"
    saved = os.environ.get("ALULA_ENDPOINT")
    os.environ["ALULA_ENDPOINT"] = endpoint
    try:
        out = {}
        for name, path in NOTEBOOKS.items():
            workdir = tmp_path_factory.mktemp(f"notebook-{name}")
            out[name] = execute(path, workdir)
            print(f"executed notebook: {workdir / path.name}")
    finally:
        if saved is None:
            del os.environ["ALULA_ENDPOINT"]
        else:
            os.environ["ALULA_ENDPOINT"] = saved
    return out


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """Debian's Chromium through Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    assert shutil.which(str(E2E.CHROMIUM)), f"{E2E.CHROMIUM} is missing: scripts/test installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(E2E.CHROMIUM))
        try:
            yield browser
        finally:
            browser.close()
