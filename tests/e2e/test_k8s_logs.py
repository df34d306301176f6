"""Pods' logs: a failing Alula task run as pods on the local kubelet's node; each attempt's log
is read through admin's log route, which reads running pods through the Kubernetes API
(`pods/<name>/log`, proxied by kube-apiserver to the kubelet's log endpoint,
tests/k8s/kubelet_logs.py) and ended ones from storage (the driver stores the log before the
pod is deleted). Task events also carry the links of the configured `logs.templates`. The
kube-apiserver and the bucket are k8s_support's."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from k8s_support import (
    NAMESPACE,
    TIMEOUT_S,
    Cluster,
    ConfiguredServer,
    admin_call,
    shared_cluster,
    start_k8s_server,
    stop_server,
    wait_for,
)

from alula.remote import ExecutionFailed, Remote

FLOW = """
import os
import sys
import time

from alula import task, workflow


@task(retries=1)
def noisy(x: int) -> int:
    attempt = os.environ.get("FLYTE_ATTEMPT_NUMBER")
    print(f"stdout of pod attempt {attempt}", flush=True)
    print(f"stderr of pod attempt {attempt}", file=sys.stderr, flush=True)
    raise ValueError(f"broken on purpose in attempt {attempt}")


@workflow
def noisy_wf(x: int = 1) -> int:
    return noisy(x=x)


@task
def slow(marker: str) -> int:
    print(f"running {marker}", file=sys.stderr, flush=True)
    time.sleep(60)
    return 0


@workflow
def slow_wf(marker: str) -> int:
    return slow(marker=marker)
"""

TEMPLATE = (
    "http://logs.example/{{ .namespace }}/{{ .podName }}/{{ .containerName }}"
    "?uid={{ .podUID }}&execution={{ .executionName }}"
)


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    return shared_cluster(request, tmp_path_factory)


@pytest.fixture(scope="module")
def server(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConfiguredServer]:
    templates = [
        "[[kubernetes.pods.logs.templates]]",
        'displayName = "Pod logs"',
        f'templateUris = ["{TEMPLATE}"]',
    ]
    running = start_k8s_server(
        cluster, tmp_path_factory.mktemp("alula-k8s-logs"), extra_config=templates
    )
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture(scope="module")
def remote(server: ConfiguredServer, tmp_path_factory: pytest.TempPathFactory) -> Remote:
    flow = tmp_path_factory.mktemp("flows") / "pod_log_flows.py"
    flow.write_text(textwrap.dedent(FLOW))
    remote = Remote(f"127.0.0.1:{server.server.grpc_port}")
    remote.register(flow)
    return remote


def attempts(server: ConfiguredServer, execution: dict[str, str]) -> list[Any]:
    found = admin_call(
        f"127.0.0.1:{server.server.grpc_port}",
        "ListTaskExecutions",
        (
            "flyteidl.admin.TaskExecutionListRequest",
            {"nodeExecutionId": {"nodeId": "n0", "executionId": execution}, "limit": 10},
        ),
        "flyteidl.admin.TaskExecutionList",
    )
    return list(found.get("taskExecutions", []))


def test_failed_pod_attempts_logs_are_read_through_the_api(
    server: ConfiguredServer, remote: Remote
) -> None:
    execution = remote.execute("noisy_wf", {"x": 1})
    with pytest.raises(ExecutionFailed):
        remote.wait(execution, timeout=TIMEOUT_S * 2)
    for attempt in (0, 1):
        # The pod is gone (deleted on completion): the stored log answers.
        log = remote.logs(execution, "n0", attempt=attempt)
        assert f"stderr of pod attempt {attempt}" in log
        assert f"stdout of pod attempt {attempt}" in log  # Kubernetes keeps one log
        assert f"of pod attempt {1 - attempt}" not in log

    for te in attempts(server, execution.id_json()):
        links = {log["name"]: log["uri"] for log in te["closure"].get("logs", [])}
        assert set(links) == {"output", "Pod logs"}, links
        assert links["output"].startswith(f"http://127.0.0.1:{server.server.http_port}/api/v1/")
        pod_link = links["Pod logs"]
        assert pod_link.startswith(f"http://logs.example/{NAMESPACE}/"), pod_link
        assert "{{" not in pod_link and "uid=&" not in pod_link, pod_link
        assert pod_link.endswith(f"&execution={execution.name}"), pod_link


def test_a_running_pods_log_is_read_through_the_kubernetes_api(
    remote: Remote,
) -> None:
    execution = remote.execute("slow_wf", {"marker": "live-marker"})
    try:

        def live() -> str | None:
            try:
                text = remote.logs(execution, "n0", attempt=0)
            except (LookupError, RuntimeError):
                return None  # not started, or no log yet
            return text if "running live-marker" in text else None

        assert "running live-marker" in wait_for("the running pod's log", live, TIMEOUT_S * 2)
    finally:
        remote.terminate(execution)
