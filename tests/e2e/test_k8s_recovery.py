"""Failures and crashes with tasks as pods: a pod that fails recoverably is followed by a pod for
the next attempt, and a propeller killed while a pod runs adopts that pod when it comes back
(the pod's name is the attempt's: the restarted server finds it instead of creating another).
Workflows from flows/k8s_alula.py, registered with Alula's SDK. The kube-apiserver and
the bucket are k8s_support's."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from k8s_support import (
    TIMEOUT_S,
    Cluster,
    ConfiguredServer,
    node_executions,
    shared_cluster,
    start_k8s_server,
    stop_server,
    task_attempts,
    wait_for,
)

from alula.remote import Remote

FLOWS = Path(__file__).parent / "flows" / "k8s_alula.py"


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    return shared_cluster(request, tmp_path_factory)


@pytest.fixture(scope="module")
def server(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConfiguredServer]:
    running = start_k8s_server(
        cluster, tmp_path_factory.mktemp("alula-k8s-recovery"), keep_pods=True
    )
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture(scope="module")
def remote(server: ConfiguredServer) -> Remote:
    remote = Remote(f"127.0.0.1:{server.server.grpc_port}")
    remote.register(FLOWS)
    return remote


def endpoint(server: ConfiguredServer) -> str:
    return f"127.0.0.1:{server.server.grpc_port}"


def phases(pods: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """(attempt label, pod phase), by attempt."""
    return sorted((p["metadata"]["labels"]["attempt"], p["status"].get("phase")) for p in pods)


@pytest.mark.parametrize(
    ("exit_code", "first_pod", "message"),
    [
        # The task raised: its entrypoint wrote error.pb and exited normally, as flytekit's does.
        (0, "Succeeded", None),
        # The process died: the container failed, its log tail is the pod's message.
        (3, "Failed", "exits on purpose"),
    ],
)
def test_failed_attempt_is_retried_in_a_new_pod(
    remote: Remote,
    cluster: Cluster,
    server: ConfiguredServer,
    tmp_path: Path,
    exit_code: int,
    first_pod: str,
    message: str | None,
) -> None:
    marker = tmp_path / "marker"
    execution = remote.execute("recovering", {"marker": str(marker), "exit_code": exit_code})
    assert remote.wait(execution, timeout=TIMEOUT_S) == "attempt 0 failed"
    assert remote.phase(execution) == "SUCCEEDED"

    node = node_executions(endpoint(server), execution.id_json())["n0"]
    assert node["closure"]["phase"] == "SUCCEEDED"
    assert task_attempts(endpoint(server), node) == [(0, "RETRYABLE_FAILED"), (1, "SUCCEEDED")]

    # One pod per attempt, each started once.
    pods = cluster.kube.pods(execution.name)
    assert phases(pods) == [("0", first_pod), ("1", "Succeeded")]
    assert {p["metadata"]["labels"]["node-id"] for p in pods} == {"n0"}
    started = [name for _, name in cluster.starts()]
    assert all(started.count(p["metadata"]["name"]) == 1 for p in pods), started
    first = next(p for p in pods if p["metadata"]["labels"]["attempt"] == "0")
    (terminated,) = [c["state"]["terminated"] for c in first["status"]["containerStatuses"]]
    assert terminated["exitCode"] == exit_code
    if message:
        assert message in terminated["message"], terminated


def test_restarted_propeller_adopts_the_running_pod(
    remote: Remote, cluster: Cluster, server: ConfiguredServer, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    execution = remote.execute("gated", {"release": str(release)})

    def running_pod() -> dict[str, Any] | None:
        pods = cluster.kube.pods(execution.name)
        return next((p for p in pods if p["status"].get("phase") == "Running"), None)

    before = wait_for("the task's pod to run", running_pod)
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    # The pod outlives the server that made it.
    still = running_pod()
    assert still is not None and still["metadata"]["uid"] == before["metadata"]["uid"]

    # Only the restarted server reads pods now (the kubelet patches them): once it has read
    # one, it has re-attached to the attempt, whose pod is still running.
    reads = cluster.kube.request_count("GET", "pods")
    server.restart()
    wait_for(
        "the restarted server to read the pod",
        lambda: cluster.kube.request_count("GET", "pods") > reads,
    )
    assert running_pod() is not None
    release.write_text("released")
    assert remote.wait(execution, timeout=TIMEOUT_S) == "released"
    assert remote.phase(execution) == "SUCCEEDED"

    # The same pod (not a new one under the same name) ran the attempt, started once.
    (after,) = cluster.kube.pods(execution.name)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["metadata"]["creationTimestamp"] == before["metadata"]["creationTimestamp"]
    assert after["status"]["phase"] == "Succeeded"
    name = before["metadata"]["name"]
    assert [uid for uid, started in cluster.starts() if started == name] == [
        before["metadata"]["uid"]
    ]

    node = node_executions(endpoint(server), execution.id_json())["n0"]
    assert node["closure"]["phase"] == "SUCCEEDED"
    assert task_attempts(endpoint(server), node) == [(0, "SUCCEEDED")]
