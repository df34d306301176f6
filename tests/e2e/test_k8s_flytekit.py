"""Container tasks as Kubernetes pods: workflows registered by the real flytekit (`pyflyte
register`, a fast-registered code bundle) run through alula-server's pod plugin on a real
kube-apiserver (v1.20.2 from ../shared/tools/kube-apiserver), whose pods
`tests/k8s/local_kubelet.py` runs as local processes sharing nothing with the server: inputs,
outputs and the code bundle travel through the S3 bucket (see k8s_support)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import pyflyte_register
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.remote import FlyteRemote
from k8s_support import (
    NODE,
    TIMEOUT_S,
    Cluster,
    ConfiguredServer,
    Kube,
    shared_cluster,
    start_k8s_server,
    stop_server,
)

FLOWS = Path(__file__).parent / "flows"
VERSION = "k8s-v1"


@pytest.fixture(scope="module")
def k8s(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    return shared_cluster(request, tmp_path_factory)


@pytest.fixture(scope="module")
def kube(k8s: Cluster) -> Kube:
    return k8s.kube


@pytest.fixture(scope="module")
def cluster(k8s: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConfiguredServer]:
    # Finished pods are deleted, as by default.
    running = start_k8s_server(k8s, tmp_path_factory.mktemp("alula-k8s"))
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture(scope="module")
def remote(cluster: ConfiguredServer, tmp_path_factory: pytest.TempPathFactory) -> FlyteRemote:
    root = tmp_path_factory.mktemp("src")
    shutil.copytree(FLOWS, root / "flows")
    return pyflyte_register(cluster.server.config_file, root, "flows", VERSION)


def execution_pods(kube: Kube, name: str) -> list[dict[str, Any]]:
    return kube.pods(name)


def test_workflow_runs_as_pods(remote: FlyteRemote, kube: Kube) -> None:
    lp = remote.fetch_launch_plan(name="flows.flytekit_flows.chain", version=VERSION)
    execution = remote.execute(lp, inputs={"x": 4, "label": "sum"}, wait=False)
    created: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        for p in execution_pods(kube, execution.id.name):
            created[p["metadata"]["name"]] = p
        done = remote.fetch_execution(name=execution.id.name)
        if done.is_done:
            break
        assert time.monotonic() < deadline, "the execution did not finish"
        time.sleep(0.2)
    done = remote.wait(done, timeout=TIMEOUT_S, poll_interval=0.2)
    assert done.closure.phase == WorkflowExecutionPhase.SUCCEEDED, done.error
    assert dict(done.outputs) == {"o0": "sum=24"}
    # Each of the four tasks ran as a pod on the local kubelet's node.
    assert len(created) == 4, sorted(created)
    assert {p["spec"]["nodeName"] for p in created.values() if p["spec"].get("nodeName")} == {NODE}
    assert {p["metadata"]["labels"]["node-id"] for p in created.values()} == {
        "n0",
        "n1",
        "n2",
        "n3",
    }
    # Finished pods are deleted (delete_on_completion) or at least Succeeded.
    deadline = time.monotonic() + 20
    while True:
        left = execution_pods(kube, execution.id.name)
        if all(p["status"].get("phase") == "Succeeded" for p in left):
            break
        assert time.monotonic() < deadline, [(p["metadata"]["name"], p["status"]) for p in left]
        time.sleep(0.2)


def test_abort_deletes_the_pod(remote: FlyteRemote, kube: Kube) -> None:
    lp = remote.fetch_launch_plan(name="flows.flytekit_flows.slow", version=VERSION)
    execution = remote.execute(lp, inputs={"seconds": 300}, wait=False)
    name = execution.id.name
    deadline = time.monotonic() + TIMEOUT_S
    # Wait for the task's pod to run (the kubelet started its process).
    while not any(p["status"].get("phase") == "Running" for p in execution_pods(kube, name)):
        assert time.monotonic() < deadline, "the pod never ran"
        time.sleep(0.2)
    remote.terminate(execution, cause="enough waiting")
    done = remote.wait(execution, timeout=TIMEOUT_S, poll_interval=0.2, sync_nodes=False)
    assert done.closure.phase == WorkflowExecutionPhase.ABORTED
    deadline = time.monotonic() + 20
    while left := execution_pods(kube, name):
        assert time.monotonic() < deadline, [(p["metadata"]["name"], p["status"]) for p in left]
        time.sleep(0.2)
    # And the process the pod ran is gone with it (its arguments name the execution).
    alive = subprocess.run(["pgrep", "-af", name], capture_output=True, text=True).stdout
    assert not alive.strip(), alive
