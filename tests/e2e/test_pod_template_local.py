"""flytekit tasks with a pod template (`@task(pod_template=...)`, `pod_template_name=`) on a
server without Kubernetes: registered with `pyflyte register`, run with FlyteRemote, they run
their primary container's command as a local process, with its environment."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import RunningServer
from flytekit.configuration import Config
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.remote import FlyteRemote

FLOWS = Path(__file__).parent / "pod_flows"
PYFLYTE = Path(sys.executable).parent / "pyflyte"
PROJECT, DOMAIN, VERSION = "flytesnacks", "development", "pod-v1"
TIMEOUT_S = 180


def test_pod_template_tasks_run_without_kubernetes(
    alula_cluster: RunningServer, tmp_path: Path
) -> None:
    shutil.copytree(FLOWS, tmp_path / "pod_flows")
    config = alula_cluster.server.config_file
    done = subprocess.run(
        [PYFLYTE, "--config", config, "register", "--version", VERSION, "pod_flows"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    remote = FlyteRemote(
        Config.auto(config_file=str(config)), default_project=PROJECT, default_domain=DOMAIN
    )
    # What was registered is a pod task, named by its primary container.
    task = remote.fetch_task(name="pod_flows.pod_tasks.greet", version=VERSION)
    assert task.k8s_pod is not None
    assert task.config["primary_container_name"] == "primary"

    lp = remote.fetch_launch_plan(name="pod_flows.pod_tasks.pod_wf", version=VERSION)
    execution = remote.execute(lp, inputs={"name": "alula"}, wait=False)
    execution = remote.wait(execution, timeout=TIMEOUT_S, poll_interval=0.2)
    assert execution.closure.phase == WorkflowExecutionPhase.SUCCEEDED, execution.error
    assert execution.outputs["o0"] == "HELLO FROM THE POD SPEC, ALULA"
