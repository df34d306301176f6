"""No import cycle among the modules of python/alula.

The graph is built from the source with `ast`, without importing anything. Its rules:

- Only imports executed when the module is first imported count: statements at module level,
  including those nested in module-level `if`/`try`/`with` blocks and class bodies, but not
  those inside functions or under `if TYPE_CHECKING:` (which never run).
- `import a.b.c` is an edge to `a.b.c`; `from a.b import c` is an edge to the module `a.b.c`
  when that is a module of the package, else to `a.b` (a name defined there).
- The parent packages Python initializes on the way to a submodule are not edges: by the time
  `alula.core.task` runs, `alula/core/__init__.py` is already running or done, so a package
  `__init__` that imports its own submodules (`pkg/__init__.py` -> `pkg/sub.py`) only forms a
  cycle when a submodule in turn needs a name from that `__init__` (`from pkg import name`),
  which is exactly when the partially initialized package would bite.

A cycle is a strongly connected component of more than one module; the failure names every
module of each.

Within `alula.core` and `alula.types` the rule is stricter: imports deferred into functions
count too (a deferred import only hides a cycle: the two modules still need each other), so
those packages are layered; the local runner is reached through `alula.core.hooks` and the
built-in transformers register into the type engine.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "python"
PACKAGE = "alula"


def module_files(root: Path = PACKAGE_ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name (`pkg/__init__.py` is named `pkg`)."""
    out: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _executed_imports(
    body: list[ast.stmt], deferred: bool = False
) -> list[ast.Import | ast.ImportFrom]:
    """The import statements that run when the module body runs (with `deferred`, also those
    that run when its functions are called)."""
    found: list[ast.Import | ast.ImportFrom] = []
    for stmt in body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            found.append(stmt)
        elif isinstance(stmt, ast.If):
            if not _is_type_checking(stmt.test):
                found += _executed_imports(stmt.body, deferred)
            found += _executed_imports(stmt.orelse, deferred)
        elif isinstance(stmt, ast.Try):
            found += _executed_imports(stmt.body, deferred)
            for handler in stmt.handlers:
                found += _executed_imports(handler.body, deferred)
            found += _executed_imports(stmt.orelse, deferred)
            found += _executed_imports(stmt.finalbody, deferred)
        elif isinstance(stmt, (ast.With, ast.ClassDef, ast.For, ast.While)):
            found += _executed_imports(stmt.body, deferred)
        elif deferred and isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found += _executed_imports(stmt.body, deferred)
    return found


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(modules: dict[str, Path], deferred: bool = False) -> dict[str, set[str]]:
    """module -> the package's modules it imports at import time (and, with `deferred`, in
    its functions)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        tree = ast.parse(path.read_text(), str(path))
        for node in _executed_imports(tree.body, deferred):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                source = _absolute(name, path.name == "__init__.py", node)
                targets = [
                    f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source
                    for a in node.names
                ]
            edges.update(t for t in targets if t in modules)
        # `from pkg import ext` in pkg/__init__.py, with `ext` an extension module (not a .py
        # file), resolves to the package itself: not a cycle.
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components that are cycles (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph(module_files())
    assert len(graph) > 50, "the package's modules were not found"
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def native_importers(modules: dict[str, Path]) -> list[str]:
    """The modules that import `alula._native` anywhere (deferred imports included)."""
    found = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        for node in _executed_imports(tree.body, deferred=True):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                source = _absolute(name, path.name == "__init__.py", node)
                targets = [source] + [f"{source}.{alias.name}" for alias in node.names]
            if "alula._native" in targets:
                found.append(name)
                break
    return sorted(found)


def test_only_the_bridge_imports_the_native_module() -> None:
    importers = native_importers(module_files())
    assert importers, "the bridge's import of alula._native was not found"
    outside = [m for m in importers if m != "alula._bridge" and not m.startswith("alula._bridge.")]
    assert not outside, f"import alula._native through alula._bridge instead: {outside}"


@pytest.mark.parametrize("package", ["alula.core", "alula.types"])
def test_core_and_types_are_layered_even_through_deferred_imports(package: str) -> None:
    graph = import_graph(module_files(), deferred=True)
    inside = {
        name: {t for t in targets if t.startswith(package)}
        for name, targets in graph.items()
        if name == package or name.startswith(package + ".")
    }
    found = cycles(inside)
    assert not found, f"import cycles in {package}:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_checker_finds_a_cycle(tmp_path: Path) -> None:
    """The check can fail: a two-module cycle, a package `__init__` cycle and a
    TYPE_CHECKING-only or function-level import (which is not one)."""
    pkg = tmp_path / "demo"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from demo.sub import leaf\n")
    (pkg / "a.py").write_text("from demo import b\n")
    (pkg / "b.py").write_text("import demo.a\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from demo import d\n"
    )
    (pkg / "d.py").write_text("def f():\n    from demo import c\n")
    (pkg / "sub" / "__init__.py").write_text("from . import leaf\n")
    (pkg / "sub" / "leaf.py").write_text("from demo.sub import helper\n")
    found = cycles(import_graph(module_files(tmp_path, "demo")))
    assert found == [["demo.a", "demo.b"], ["demo.sub", "demo.sub.leaf"]]
    deferred = cycles(import_graph(module_files(tmp_path, "demo"), deferred=True))
    assert ["demo.c", "demo.d"] not in deferred, "a TYPE_CHECKING import is never executed"
    (pkg / "c.py").write_text("def g():\n    import demo.d\n")
    deferred = cycles(import_graph(module_files(tmp_path, "demo"), deferred=True))
    assert ["demo.c", "demo.d"] in deferred
