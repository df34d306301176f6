"""The task image holds what Alula tasks run, and every place that names it agrees.

No Docker daemon is needed: deploy/docker/task.Dockerfile is read as text. It must install the
alula wheel (whose console scripts are the entrypoints the SDK writes into task containers) and
the alula-copilot binary (the copilot of raw-container tasks); the SDK's default image, the
Helm chart's copilot image and the pod plugin's default copilot image name the same repository.
"""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy/docker/task.Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = DOCKERFILE.read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _scripts() -> dict[str, str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    scripts: dict[str, str] = pyproject["project"]["scripts"]
    return scripts


def test_the_entrypoints_tasks_run_are_console_scripts_of_the_wheel() -> None:
    from alula.core.settings import (
        EXECUTE_ENTRYPOINT,
        FAST_EXECUTE_ENTRYPOINT,
        MAP_EXECUTE_ENTRYPOINT,
    )

    scripts = _scripts()
    for entrypoint in (EXECUTE_ENTRYPOINT, MAP_EXECUTE_ENTRYPOINT, FAST_EXECUTE_ENTRYPOINT):
        assert entrypoint in scripts, f"{entrypoint} is not a [project.scripts] entry"
        module, _, function = scripts[entrypoint].partition(":")
        assert callable(getattr(importlib.import_module(module), function)), scripts[entrypoint]


def test_the_dockerfile_installs_the_wheel_and_the_copilot() -> None:
    steps = _instructions()
    runs = [args for word, args in steps if word == "RUN"]
    copies = [shlex.split(args) for word, args in steps if word == "COPY"]
    stages = [args for word, args in steps if word == "FROM"]
    assert len(stages) == 2 and stages[0].endswith("AS builder"), stages

    # The builder makes the wheel (maturin, with pyproject's scripts) and the copilot binary.
    assert any("maturin build" in r and "--out /wheels" in r for r in runs), runs
    copilot = tomllib.loads((ROOT / "rust/copilot/Cargo.toml").read_text())
    [binary] = copilot["bin"]
    assert binary["name"] == "alula-copilot"
    assert any(
        f"-p {copilot['package']['name']}" in r
        and f"target/release/{binary['name']} /out/{binary['name']}" in r
        for r in runs
    ), runs

    # The final stage installs the wheel and puts the binary on PATH.
    final = steps[[i for i, (w, _) in enumerate(steps) if w == "FROM"][1] :]
    final_runs = [a for w, a in final if w == "RUN"]
    assert any("pip install" in r and "/wheels/alula-*.whl" in r for r in final_runs), final_runs
    assert ["--from=builder", "/out/alula-copilot", "/usr/local/bin/alula-copilot"] in copies

    # What the builder copies in exists (the build context is the repository root).
    for args in copies:
        if args[0].startswith("--from"):
            continue
        for source in args[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_every_place_names_the_same_task_image() -> None:
    from alula import __version__
    from alula.core.settings import DEFAULT_IMAGE, TASK_IMAGE_REPOSITORY

    assert DEFAULT_IMAGE == f"{TASK_IMAGE_REPOSITORY}:{__version__}"
    assert "flyteorg" not in DEFAULT_IMAGE, "flytekit's image has no alula-execute"
    assert TASK_IMAGE_REPOSITORY.endswith("/alula-task")  # README: $REGISTRY/alula-task

    values = yaml.safe_load((ROOT / "deploy/helm/alula/values.yaml").read_text())
    assert values["tasks"]["copilot"]["image"]["repository"] == TASK_IMAGE_REPOSITORY
    chart = yaml.safe_load((ROOT / "deploy/helm/alula/Chart.yaml").read_text())
    assert chart["appVersion"] == __version__

    plugin = (ROOT / "rust/k8s/src/copilot.rs").read_text()
    assert f'format!("{TASK_IMAGE_REPOSITORY}:{{}}", env!("CARGO_PKG_VERSION"))' in plugin
    assert 'command: vec!["alula-copilot".into()]' in plugin
    assert "alula-task" in DOCKERFILE.read_text().split("FROM")[0]


def test_registration_takes_the_image_and_tasks_override_it() -> None:
    from alula import SerializationSettings, task
    from alula.cli import parser
    from alula.core.serialize import serialize
    from alula.core.settings import DEFAULT_IMAGE

    args = parser().parse_args(["package", "f.py", "-p", "p", "-d", "d", "-v", "1"])
    assert args.image == DEFAULT_IMAGE
    args = parser().parse_args(["package", "f.py", "-p", "p", "-d", "d", "-v", "1", "-i", "x:1"])
    assert args.image == "x:1"

    @task
    def plain() -> None: ...

    @task(container_image="mine:2")
    def own() -> None: ...

    settings = SerializationSettings("p", "d", "1", "registry.example.com/alula-task:9")
    images = {
        e.name.rsplit(".", 1)[-1]: e.message["template"]["container"]["image"]
        for e in serialize([plain, own], settings)
    }
    assert images == {"plain": "registry.example.com/alula-task:9", "own": "mine:2"}
