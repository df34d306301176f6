"""Alula's SDK through pods: workflows registered with `alula.remote.Remote` run on an
alula-server whose pod plugin takes every container task (Alula's tasks included, which would
otherwise go to warm workers), each attempt a pod on the local kubelet's node, with the outputs a
local run gives. The kube-apiserver and the bucket are k8s_support's."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from k8s_support import (
    NODE,
    TIMEOUT_S,
    Cluster,
    ConfiguredServer,
    node_executions,
    shared_cluster,
    start_k8s_server,
    stop_server,
)

from alula.core.package import load_module
from alula.remote import Remote

FLOWS = Path(__file__).parent / "flows" / "k8s_alula.py"


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    return shared_cluster(request, tmp_path_factory)


@pytest.fixture(scope="module")
def server(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConfiguredServer]:
    running = start_k8s_server(cluster, tmp_path_factory.mktemp("alula-k8s-sdk"), keep_pods=True)
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture(scope="module")
def remote(server: ConfiguredServer) -> Remote:
    remote = Remote(f"127.0.0.1:{server.server.grpc_port}")
    remote.register(FLOWS)
    return remote


@pytest.fixture(scope="module")
def flows() -> ModuleType:
    return load_module(str(FLOWS))


@pytest.fixture(autouse=True)
def local_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Local runs cache in a folder of their own."""
    monkeypatch.setenv("ALULA_CACHE_DIR", str(tmp_path / "local-cache"))


def test_sdk_workflow_with_a_map_task_runs_as_pods(
    remote: Remote, flows: ModuleType, cluster: Cluster, server: ConfiguredServer
) -> None:
    xs = [3, 1, 4, 1, 5]
    execution = remote.execute("fan", {"x": 7, "xs": xs})
    outputs = remote.wait(execution, timeout=TIMEOUT_S)
    assert outputs == flows.fan(x=7, xs=xs) == "14+52=66"

    pods = cluster.kube.pods(execution.name)
    assert all(p["status"]["phase"] == "Succeeded" for p in pods), [
        (p["metadata"]["name"], p["status"].get("phase")) for p in pods
    ]
    assert {p["spec"]["nodeName"] for p in pods} == {NODE}
    endpoint = f"127.0.0.1:{server.server.grpc_port}"
    task_nodes = {
        n
        for n in node_executions(endpoint, execution.id_json())
        if n not in ("start-node", "end-node")
    }
    # One pod per task node, the map node one per element: every attempt was a pod.
    per_node = Counter(p["metadata"]["labels"]["node-id"] for p in pods)
    assert set(per_node) == task_nodes, (per_node, task_nodes)
    assert sorted(per_node.values()) == [1, 1, 1, len(xs)], per_node
    (map_node,) = [n for n, count in per_node.items() if count == len(xs)]
    elements = sorted(
        int(p["metadata"]["annotations"]["alula.dev/array-index"])
        for p in pods
        if p["metadata"]["labels"]["node-id"] == map_node
    )
    assert elements == list(range(len(xs)))
    assert {p["metadata"]["labels"]["attempt"] for p in pods} == {"0"}
    # The kubelet started each of them once.
    started = Counter(name for _, name in cluster.starts())
    assert all(started[p["metadata"]["name"]] == 1 for p in pods), started

    # No warm worker (nor local process) ran anything: their plugins never made a work folder.
    work = server.server.storage_root / "work"
    assert not (work / "warm").exists(), sorted((work / "warm").rglob("*"))[:10]
    assert not (work / "process").exists(), sorted((work / "process").rglob("*"))[:10]
