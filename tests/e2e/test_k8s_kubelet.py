"""The test kubelet (tests/k8s/local_kubelet.py) keeps Kubernetes' pod semantics on the real
API server, which the other test_k8s_* modules rely on: init containers in order before the
containers, which run at once and share an emptyDir; a failed init container fails the pod;
a missing secret leaves the pod Pending (CreateContainerConfigError) until it appears; `env`
from secrets and the downward API; the service account token mounted as files."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from k8s_support import NODE, SELECTOR, Cluster, shared_cluster, wait_for


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    return shared_cluster(request, tmp_path_factory)


def make_pod(cluster: Cluster, spec: dict[str, Any]) -> str:
    name = f"kubelet-{uuid.uuid4().hex[:8]}"
    key, value = SELECTOR.split("=")
    cluster.kube.create(
        "pods",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {key: value}},
            "spec": {"restartPolicy": "Never", "nodeSelector": {"alula/local": "true"}, **spec},
        },
    )
    return name


def finished(cluster: Cluster, name: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        pod = cluster.kube.pod(name)
        return pod if pod["status"].get("phase") in ("Succeeded", "Failed") else None

    return dict(wait_for(f"pod {name} to finish", done, timeout=30))


def sh(name: str, script: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "image": "unused", "command": ["sh", "-c", script], **more}


SHARED = [{"name": "shared", "mountPath": "/shared"}]


def test_init_containers_then_containers_sharing_an_empty_dir(cluster: Cluster) -> None:
    secret = f"kubelet-{uuid.uuid4().hex[:6]}"
    cluster.kube.create_secret(secret, {"user": "u1"})
    name = make_pod(
        cluster,
        {
            "volumes": [{"name": "shared", "emptyDir": {}}],
            "initContainers": [
                sh("first", "echo 1 > /shared/order", volumeMounts=SHARED),
                sh("second", "echo 2 >> /shared/order", volumeMounts=SHARED),
            ],
            "containers": [
                sh(
                    "reader",
                    "cat /shared/order > /shared/seen; echo $USER_NAME $POD > /shared/env; "
                    "cat /var/run/secrets/kubernetes.io/serviceaccount/namespace > /shared/ns; "
                    "while [ ! -f /shared/written ]; do sleep 0.05; done",
                    volumeMounts=SHARED,
                    env=[
                        {
                            "name": "USER_NAME",
                            "valueFrom": {"secretKeyRef": {"name": secret, "key": "user"}},
                        },
                        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    ],
                ),
                # Runs alongside the reader, which waits for it.
                sh("writer", "sleep 0.3; touch /shared/written", volumeMounts=SHARED),
            ],
        },
    )
    pod = finished(cluster, name)
    assert pod["status"]["phase"] == "Succeeded", pod["status"]
    assert pod["spec"]["nodeName"] == NODE
    shared = cluster.pod_folder(pod) / "volumes" / "shared"
    assert (shared / "seen").read_text() == "1\n2\n"
    assert (shared / "env").read_text() == f"u1 {name}\n"
    assert (shared / "ns").read_text() == "default"
    states = {c["name"]: c["state"] for c in pod["status"]["containerStatuses"]}
    assert {n: s["terminated"]["exitCode"] for n, s in states.items()} == {"reader": 0, "writer": 0}
    record = cluster.container_record(pod, "reader")
    assert record["env"]["HOME"] == str(cluster.pod_folder(pod) / "reader" / "home")
    # Nothing of the kubelet's environment: its KUBECONFIG is not the pod's (the pod's names the
    # mounted service account's token, as in-cluster configuration would).
    pod_kubeconfig = cluster.pod_folder(pod) / "reader" / "kubeconfig"
    assert record["env"]["KUBECONFIG"] == str(pod_kubeconfig)
    assert (
        json.loads(pod_kubeconfig.read_text())["contexts"][0]["context"]["namespace"] == "default"
    )
    assert record["maxRssBytes"] > 0


def test_a_failed_init_container_fails_the_pod(cluster: Cluster) -> None:
    name = make_pod(
        cluster,
        {
            "initContainers": [
                sh("setup", "echo broken; exit 7", terminationMessagePolicy="FallbackToLogsOnError")
            ],
            "containers": [sh("main", "echo never")],
        },
    )
    pod = finished(cluster, name)
    assert pod["status"]["phase"] == "Failed"
    (init,) = pod["status"]["initContainerStatuses"]
    assert init["state"]["terminated"]["exitCode"] == 7
    assert "broken" in init["state"]["terminated"]["message"]
    (main,) = pod["status"]["containerStatuses"]
    assert "waiting" in main["state"], main
    assert not (cluster.pod_folder(pod) / "main.log").exists()


def test_a_missing_secret_waits_until_it_appears(cluster: Cluster) -> None:
    secret = f"later-{uuid.uuid4().hex[:6]}"
    name = make_pod(
        cluster,
        {
            "containers": [
                sh(
                    "main",
                    'test "$TOKEN" = t0k3n',
                    env=[
                        {
                            "name": "TOKEN",
                            "valueFrom": {"secretKeyRef": {"name": secret, "key": "token"}},
                        }
                    ],
                )
            ]
        },
    )

    def config_error() -> bool:
        statuses = cluster.kube.pod(name)["status"].get("containerStatuses") or []
        return any(
            s["state"].get("waiting", {}).get("reason") == "CreateContainerConfigError"
            for s in statuses
        )

    wait_for("CreateContainerConfigError", config_error, timeout=20)
    assert cluster.kube.pod(name)["status"]["phase"] == "Pending"
    cluster.kube.create_secret(secret, {"token": "t0k3n"})
    pod = finished(cluster, name)
    assert pod["status"]["phase"] == "Succeeded", pod["status"]
