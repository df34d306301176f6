"""Kubeflow training tasks end to end: workflows authored with the real flytekit plugins
(`flytekitplugins-kfpytorch`, `-kftensorflow`), registered with `pyflyte register`, run by
alula-server's operator plugins as `PyTorchJob`s and `TFJob`s on a real kube-apiserver (the
minimal CRDs of tests/k8s/crds), with tests/k8s/operator_controller.py in the training
operator's place: it creates the deciding replica's pod, which tests/k8s/local_kubelet.py runs
as a local process, and writes the job's status conditions as the operator does."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import pyflyte_register
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.remote import FlyteRemote
from k8s_support import (
    KUBECONFIG,
    NAMESPACE,
    TIMEOUT_S,
    Cluster,
    ConfiguredServer,
    Kube,
    shared_cluster,
    start_k8s_server,
    stop_server,
    wait_for,
)

REPO = Path(__file__).resolve().parents[2]
FLOWS = Path(__file__).parent / "operator_flows"
CRDS = REPO / "tests/k8s/crds"
CONTROLLER = REPO / "tests/k8s/operator_controller.py"
VERSION = "operators-v1"
KINDS = {"pytorchjobs": "pytorchjobs.yaml", "tfjobs": "tfjobs.yaml"}


def jobs(kube: Kube, plural: str, execution: str) -> list[dict[str, Any]]:
    """The execution's jobs of one kind (the operator plugin labels them as it labels pods)."""
    query = urllib.parse.urlencode({"labelSelector": f"execution-id={execution}"})
    path = f"/apis/kubeflow.org/v1/namespaces/{NAMESPACE}/{plural}?{query}"
    return list(kube.get(path)["items"])


def install_crds(kube: Kube) -> None:
    for plural, file in KINDS.items():
        crd = yaml.safe_load((CRDS / file).read_text())
        try:
            kube.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        except urllib.error.HTTPError as e:
            assert e.code == 409, e.read()

        def served(plural: str = plural) -> bool:
            try:
                kube.get(f"/apis/kubeflow.org/v1/{plural}")
            except urllib.error.HTTPError:
                return False
            return True

        wait_for(f"the {plural} CRD to be served", served)


@pytest.fixture(scope="module")
def k8s(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    return shared_cluster(request, tmp_path_factory)


@pytest.fixture(scope="module")
def controller(k8s: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    install_crds(k8s.kube)
    log = tmp_path_factory.mktemp("operator") / "controller.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, CONTROLLER],
            env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(KUBECONFIG)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        print(log.read_text()[-3000:])


@pytest.fixture(scope="module")
def server(
    k8s: Cluster, controller: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConfiguredServer]:
    running = start_k8s_server(
        k8s,
        tmp_path_factory.mktemp("alula-operators"),
        keep_pods=True,
        operators=["pytorch", "tensorflow"],
    )
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture(scope="module")
def remote(server: ConfiguredServer, tmp_path_factory: pytest.TempPathFactory) -> FlyteRemote:
    root = tmp_path_factory.mktemp("src")
    shutil.copytree(FLOWS, root / "operator_flows")
    return pyflyte_register(server.server.config_file, root, "operator_flows", VERSION)


def launch(remote: FlyteRemote, workflow: str, inputs: dict[str, Any]) -> Any:
    lp = remote.fetch_launch_plan(name=f"operator_flows.training.{workflow}", version=VERSION)
    return remote.execute(lp, inputs=inputs, wait=False)


def test_training_jobs_run_and_return_outputs(remote: FlyteRemote, k8s: Cluster) -> None:
    execution = launch(remote, "training", {"epochs": 4, "rate": 0.5})
    done = remote.wait(execution, timeout=TIMEOUT_S * 2, poll_interval=0.2)
    assert done.closure.phase == WorkflowExecutionPhase.SUCCEEDED, done.error
    summary = "loss=0.125 rank=0/3"
    assert dict(done.outputs) == {"o0": summary, "o1": len(summary)}

    # One job per task, each with every replica spec flytekit asked for, and each decided by the
    # one pod the controller ran from its replica template (the operator's pod, not a task pod).
    name = execution.id.name
    (torch,) = jobs(k8s.kube, "pytorchjobs", name)
    (tf,) = jobs(k8s.kube, "tfjobs", name)
    specs = torch["spec"]["pytorchReplicaSpecs"]
    assert {r: s["replicas"] for r, s in specs.items()} == {"Master": 1, "Worker": 2}
    assert torch["spec"]["runPolicy"] == {"cleanPodPolicy": "Running", "backoffLimit": 1}
    assert {r: s["replicas"] for r, s in tf["spec"]["tfReplicaSpecs"].items()} == {
        "Chief": 1,
        "PS": 1,
        "Worker": 2,
    }
    for job in (torch, tf):
        kind = job["kind"]
        (last,) = [c for c in job["status"]["conditions"] if c["status"] == "True"][-1:]
        assert last["type"] == "Succeeded", job["status"]
        assert job["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "alula", kind
    pods = {p["metadata"]["name"]: p for p in k8s.kube.pods(name)}
    assert set(pods) == {
        f"{torch['metadata']['name']}-master-0",
        f"{tf['metadata']['name']}-chief-0",
    }
    assert {p["status"]["phase"] for p in pods.values()} == {"Succeeded"}
    # The replica's container is the one the operator looks for, running flytekit's entrypoint.
    master = pods[f"{torch['metadata']['name']}-master-0"]
    (container,) = master["spec"]["containers"]
    assert container["name"] == "pytorch"
    assert "pyflyte-execute" in container["args"], container["args"]


def test_a_failing_training_job_fails_with_the_tasks_error(
    remote: FlyteRemote, k8s: Cluster
) -> None:
    execution = launch(remote, "diverging", {"epochs": 3})
    done = remote.wait(execution, timeout=TIMEOUT_S * 2, poll_interval=0.2)
    assert done.closure.phase == WorkflowExecutionPhase.FAILED
    # The task's own error (its error.pb), not only the operator's verdict, reaches the client.
    assert "the loss went to NaN after 3 epochs" in done.error.message, done.error.message
    # flytekit's entrypoint records a user error in error.pb and exits 0, so the operator saw
    # its master succeed: the failure is read from the task's outputs, as Flyte's plugins do.
    (job,) = jobs(k8s.kube, "pytorchjobs", execution.id.name)
    assert [c["type"] for c in job["status"]["conditions"] if c["status"] == "True"][-1] == (
        "Succeeded"
    )


def test_a_job_the_operator_refuses_fails_with_the_operators_message(
    remote: FlyteRemote, k8s: Cluster
) -> None:
    execution = launch(remote, "refused", {"epochs": 3})
    done = remote.wait(execution, timeout=TIMEOUT_S * 2, poll_interval=0.2)
    assert done.closure.phase == WorkflowExecutionPhase.FAILED
    message = done.error.message
    assert "0/1 nodes are available: 2 Insufficient gpu" in message, message
    assert "PyTorchJobFailed" in message, message
    # Nothing ran: the job never had a pod.
    assert k8s.kube.pods(execution.id.name) == []


def test_abort_deletes_the_job_and_its_pod(
    remote: FlyteRemote, k8s: Cluster, tmp_path: Path
) -> None:
    execution = launch(remote, "gated", {"release": str(tmp_path / "never")})
    name = execution.id.name

    def running() -> bool:
        return any(p["status"].get("phase") == "Running" for p in k8s.kube.pods(name))

    wait_for("the master's pod to run", running)
    remote.terminate(execution, cause="enough training")
    done = remote.wait(execution, timeout=TIMEOUT_S, poll_interval=0.2, sync_nodes=False)
    assert done.closure.phase == WorkflowExecutionPhase.ABORTED
    wait_for("the job to be deleted", lambda: jobs(k8s.kube, "pytorchjobs", name) == [])
    # The cluster's garbage collector deletes the job's pod, and the kubelet its process.
    wait_for("the job's pod to be deleted", lambda: k8s.kube.pods(name) == [])
    alive = subprocess.run(["pgrep", "-af", name], capture_output=True, text=True).stdout
    assert not alive.strip(), alive


def test_the_operator_resources_are_counted(server: ConfiguredServer) -> None:
    """The tests above, as /metrics counts them (before the restart below resets the counts):
    four PyTorchJobs and a TFJob created, the refused job failed, the aborted one deleted. A job
    whose task failed is not a failed resource: its operator saw it succeed."""
    url = f"http://127.0.0.1:{server.server.http_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:
        page = resp.read().decode()
    series = dict(
        line.rsplit(" ", 1) for line in page.splitlines() if line.startswith("alula_k8s_operator_")
    )
    assert series == {
        'alula_k8s_operator_resources_created_total{kind="PyTorchJob"}': "4",
        'alula_k8s_operator_resources_created_total{kind="TFJob"}': "1",
        'alula_k8s_operator_resources_failed_total{kind="PyTorchJob"}': "1",
        'alula_k8s_operator_resources_deleted_total{kind="PyTorchJob"}': "1",
    }, page


def test_a_restarted_propeller_adopts_the_running_job(
    remote: FlyteRemote, k8s: Cluster, server: ConfiguredServer, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    execution = launch(remote, "gated", {"release": str(release)})
    name = execution.id.name

    def running_job() -> dict[str, Any] | None:
        found = jobs(k8s.kube, "pytorchjobs", name)
        pods = k8s.kube.pods(name)
        if found and any(p["status"].get("phase") == "Running" for p in pods):
            return found[0]
        return None

    before = wait_for("the job's master to run", running_job)
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    server.restart()
    release.write_text("released")
    done = remote.wait(execution, timeout=TIMEOUT_S * 2, poll_interval=0.2)
    assert done.closure.phase == WorkflowExecutionPhase.SUCCEEDED, done.error
    assert dict(done.outputs) == {"o0": "released"}
    # The same job (not a second one under the same name) ran the attempt; its pod ran once.
    (after,) = jobs(k8s.kube, "pytorchjobs", name)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    (pod,) = k8s.kube.pods(name)
    assert [uid for uid, started in k8s.starts() if started == pod["metadata"]["name"]] == [
        pod["metadata"]["uid"]
    ]
