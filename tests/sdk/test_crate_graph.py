"""`scripts/crate-graph`: the crate graph in ARCHITECTURE.md is generated from `cargo metadata`,
and `--check` fails when the document no longer matches the manifests."""

from __future__ import annotations

import importlib.machinery
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "crate-graph"
BEGIN = "<!-- crate-graph:begin -->"
END = "<!-- crate-graph:end -->"


def _run(doc: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--file", str(doc), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def _block(text: str) -> str:
    return text[text.index(BEGIN) : text.index(END)]


def test_a_stale_graph_fails_the_check_and_writing_fixes_it(tmp_path: Path) -> None:
    doc = tmp_path / "ARCHITECTURE.md"
    original = (REPO / "ARCHITECTURE.md").read_text(encoding="utf-8")
    # A stale table: one edge missing (the engine no longer "depends" on the compiler) and a
    # crate that does not exist.
    stale_block = _block(original)
    stale_block = re.sub(r"(\| `alula-engine` \|)[^\n]*", r"\1 `alula-idl` |", stale_block)
    stale_block += "| `alula-gone` | `alula-idl` |\n"
    doc.write_text(original.replace(_block(original), stale_block), encoding="utf-8")

    check = _run(doc, "--check")
    assert check.returncode == 1, check.stdout + check.stderr
    assert "out of date" in check.stderr
    # --check never writes.
    assert "alula-gone" in doc.read_text(encoding="utf-8")

    write = _run(doc)
    assert write.returncode == 0, write.stderr
    fixed = doc.read_text(encoding="utf-8")
    assert "alula-gone" not in fixed
    assert "| `alula-engine` | `alula-compiler`, `alula-idl` |" in fixed
    assert "    engine --> compiler" in fixed
    # Only the block changed: the prose around it is kept.
    assert fixed[: fixed.index(BEGIN)] == original[: original.index(BEGIN)]
    assert fixed[fixed.index(END) :] == original[original.index(END) :]

    again = _run(doc, "--check")
    assert again.returncode == 0, again.stderr


def test_dev_dependencies_are_left_out(tmp_path: Path) -> None:
    doc = tmp_path / "ARCHITECTURE.md"
    doc.write_text(f"# crates\n\n{BEGIN}\n{END}\n", encoding="utf-8")
    assert _run(doc).returncode == 0
    text = doc.read_text(encoding="utf-8")
    # alula-fuzz is a dev-dependency of several crates (the property tests), never a normal one.
    assert "--> fuzz" not in text
    assert '    fuzz["alula-fuzz"]' in text


def test_a_document_without_markers_is_refused(tmp_path: Path) -> None:
    doc = tmp_path / "ARCHITECTURE.md"
    doc.write_text("# no markers here\n", encoding="utf-8")
    result = _run(doc, "--check")
    assert result.returncode == 2
    assert "markers" in result.stderr


def _script() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("crate_graph", str(SCRIPT))
    module = ModuleType(loader.name)
    module.__file__ = str(SCRIPT)
    loader.exec_module(module)
    return module


def test_the_data_plane_reaching_admin_is_refused_with_its_path() -> None:
    graph = _script()
    ok = {
        "alula-admin": ["alula-plane"],
        "alula-plane": ["alula-idl"],
        "alula-propeller": ["alula-plane"],
        "alula-idl": [],
        "alula-server": ["alula-admin", "alula-propeller"],
        "alula-py": ["alula-server"],
    }
    assert graph.violations(ok) == []
    # Through a crate in between, as a forgotten dependency would come in.
    bad = {
        **ok,
        "alula-propeller": ["alula-plane", "alula-console"],
        "alula-console": ["alula-admin"],
    }
    found = graph.violations(bad)
    assert any(v.startswith("alula-propeller -> alula-console -> alula-admin:") for v in found), (
        found
    )
    # Only the bridge may depend on the server.
    found = graph.violations({**ok, "alula-engine": ["alula-server"]})
    assert any(v.startswith("alula-engine -> alula-server:") for v in found), found
    # And the real workspace keeps the rules.
    assert graph.violations(graph.workspace_graph(REPO / "Cargo.toml")) == []
