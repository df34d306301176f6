"""End to end with the real flytekit: `pyflyte register` against alula-server, then
FlyteRemote reads, executions and termination."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import AlulaServer
from flytekit.configuration import Config
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.remote import FlyteRemote

SAMPLES = Path(__file__).parent / "samples"
PYFLYTE = Path(sys.executable).parent / "pyflyte"
PROJECT, DOMAIN, VERSION = "flytesnacks", "development", "e2e-v1"


@pytest.fixture(scope="module")
def source_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the samples: the tests edit a task in it, and fast registration
    packages the whole source root."""
    root = tmp_path_factory.mktemp("src")
    shutil.copytree(SAMPLES, root / "samples")
    return root


def register(server: AlulaServer, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYFLYTE, "--config", server.config_file, "register", "--version", VERSION, "samples"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def remote(alula_server: AlulaServer) -> FlyteRemote:
    return FlyteRemote(
        Config.auto(config_file=str(alula_server.config_file)),
        default_project=PROJECT,
        default_domain=DOMAIN,
    )


def test_register_twice_then_a_changed_task_is_refused(
    alula_server: AlulaServer, source_root: Path
) -> None:
    first = register(alula_server, source_root)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Successfully registered 9 entities" in first.stdout, first.stdout
    uploads = list((alula_server.storage_root / "uploads").rglob("*.tar.gz"))
    assert len(uploads) == 1, uploads

    # Identical entities: ALREADY_EXISTS, which flytekit counts as success.
    second = register(alula_server, source_root)
    assert second.returncode == 0, second.stdout + second.stderr

    module = source_root / "samples" / "pipeline.py"
    original = module.read_text()
    module.write_text(original.replace("return a + b", "return a * b"))
    try:
        changed = register(alula_server, source_root)
    finally:
        module.write_text(original)
    output = changed.stdout + changed.stderr
    assert changed.returncode != 0, output
    assert "INVALID_ARGUMENT" in output, output
    # Tasks register concurrently, so either one may be the first refused; both changed because
    # the fast-register tarball (in the container args) changed.
    assert re.search(rf"samples\.pipeline\.(add|greet)@{VERSION}", output), output
    assert "template.container.args" in output, output
    assert "already registered with a different definition" in output, output


def test_remote_reads_executes_and_terminates(
    remote: FlyteRemote, alula_server: AlulaServer, source_root: Path
) -> None:
    # Registration is shared with the test above but must not depend on its order.
    register(alula_server, source_root)

    task = remote.fetch_task(name="samples.pipeline.add", version=VERSION)
    assert set(task.interface.inputs) == {"a", "b"}
    wf = remote.fetch_workflow(name="samples.pipeline.pipeline", version=VERSION)
    assert {n.id for n in wf.nodes} >= {"n0", "n1"}
    lp = remote.fetch_launch_plan(name="pipeline_fixed", version=VERSION)
    assert set(lp.fixed_inputs.literals) == {"b"}
    caller = remote.fetch_workflow(name="samples.pipeline.caller", version=VERSION)
    assert caller.id.version == VERSION

    execution = remote.execute(lp, inputs={"a": 2}, wait=False)
    fetched = remote.fetch_execution(name=execution.id.name)
    assert fetched.closure.phase == WorkflowExecutionPhase.QUEUED
    inputs = remote.client.get_execution_data(execution.id).full_inputs.literals
    assert inputs["b"].scalar.primitive.integer == 5
    assert inputs["name"].scalar.primitive.string_value == "flyte"

    recent = {e.id.name for e in remote.recent_executions()}
    assert execution.id.name in recent

    remote.terminate(fetched, cause="end of test")
    aborted = remote.fetch_execution(name=execution.id.name)
    assert aborted.closure.phase == WorkflowExecutionPhase.ABORTED
    assert aborted.closure.abort_metadata.cause == "end of test"
