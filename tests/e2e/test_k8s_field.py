"""The field proof: what a Flyte user does with tasks on Kubernetes works with Alula's pod plugin,
on a real kube-apiserver whose pods (tests/k8s/local_kubelet.py) share nothing with the server:
every value goes through the S3 bucket, each pod runs in an empty folder with an environment
made from its spec alone.

Workflows from k8s_field/: flytekit_field.py registered with `pyflyte register` (a code bundle in
the bucket) and run with FlyteRemote, alula_field.py registered and run with `alula.remote`.
Each test names in a comment the feature it needs where that is more than running pods."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import pyflyte_register
from flytekit.models.common import Annotations, Labels
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.models.security import Identity, SecurityContext
from flytekit.remote import FlyteRemote
from flytekit.tools.translator import Options
from k8s_support import (
    NODE,
    TIMEOUT_S,
    Cluster,
    ConfiguredServer,
    admin_call,
    node_executions,
    shared_cluster,
    start_k8s_server,
    stop_server,
)

from alula.remote import Remote

FIELD = Path(__file__).parent / "k8s_field"
PROJECT, DOMAIN, VERSION = "flytesnacks", "development", "field-v1"
MODULE = "k8s_field.flytekit_field"
PASSING = (
    "hello",
    ["part-0.txt=0", "part-2.txt=4", "sub/part-1.txt=1", "sub/part-3.txt=9"],
    10,
    12,
)
BIG_MB = 200
MiB = 1 << 20
# The server's environment that must not reach a pod.
SERVER_ONLY = ("ALULA_STORAGE_ROOT", "ALULA_STORAGE_URL", "ALULA_DATABASE_URL", "ALULA_KUBECONFIG")


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    return shared_cluster(request, tmp_path_factory)


@pytest.fixture(scope="module")
def server(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConfiguredServer]:
    running = start_k8s_server(cluster, tmp_path_factory.mktemp("alula-k8s-field"), keep_pods=True)
    try:
        yield running
    finally:
        stop_server(running)


def endpoint(server: ConfiguredServer) -> str:
    return f"127.0.0.1:{server.server.grpc_port}"


@pytest.fixture(scope="module")
def flyte(server: ConfiguredServer, tmp_path_factory: pytest.TempPathFactory) -> FlyteRemote:
    root = tmp_path_factory.mktemp("field-src")
    (root / "k8s_field").mkdir()
    for name in ("__init__.py", "flytekit_field.py"):
        shutil.copy(FIELD / name, root / "k8s_field" / name)
    return pyflyte_register(server.server.config_file, root, "k8s_field", VERSION)


@pytest.fixture(scope="module")
def alula(server: ConfiguredServer) -> Remote:
    remote = Remote(endpoint(server))
    remote.register(FIELD / "alula_field.py")
    return remote


def run(flyte: FlyteRemote, workflow: str, inputs: dict[str, Any], **kw: Any) -> Any:
    """Runs the launch plan to its end; the finished execution."""
    lp = flyte.fetch_launch_plan(name=f"{MODULE}.{workflow}", version=VERSION)
    execution = flyte.execute(lp, inputs=inputs, wait=False, **kw)
    return flyte.wait(execution, timeout=TIMEOUT_S * 3, poll_interval=0.3)


def succeeded(done: Any) -> Any:
    assert done.closure.phase == WorkflowExecutionPhase.SUCCEEDED, done.error
    return done


def pods_by_task(cluster: Cluster, execution: str) -> dict[str, dict[str, Any]]:
    """The execution's pods by the short name of their task (`make_big`, ...)."""
    pods = cluster.kube.pods(execution)
    return {p["metadata"]["labels"]["task-name"].rsplit(".", 1)[-1]: p for p in pods}


def primary(pod: dict[str, Any]) -> str:
    return str(pod["spec"]["containers"][0]["name"])


def assert_isolated(cluster: Cluster, pod: dict[str, Any]) -> None:
    """The pod ran on the local node, in its own folder, with none of the server's settings,
    reading and writing execution data in the bucket."""
    assert pod["spec"]["nodeName"] == NODE
    assert pod["status"]["phase"] == "Succeeded", pod["status"]
    record = cluster.container_record(pod, primary(pod))
    env = record["env"]
    assert not set(SERVER_ONLY) & set(env), sorted(env)
    assert env["HOME"].startswith(str(cluster.pod_folder(pod))), env["HOME"]
    uris = [a for a in record["argv"] if "://" in a]
    assert uris and all(u.startswith(f"s3://{cluster.bucket}/") for u in uris), record["argv"]


def big_digest(mb: int) -> str:
    import k8s_field.alula_field as flows  # the same bytes either SDK's task writes

    h = hashlib.sha256()
    for i in range(mb):
        h.update(flows.big_chunk(i))
    return h.hexdigest()


# --- values between tasks ---


def test_flytekit_passes_files_folders_frames_and_pickles(
    flyte: FlyteRemote, cluster: Cluster
) -> None:
    done = succeeded(run(flyte, "passing", {"text": "hello", "n": 4}))
    assert tuple(done.outputs[f"o{i}"] for i in range(4)) == PASSING
    pods = pods_by_task(cluster, done.id.name)
    assert len(pods) == 8, sorted(pods)
    for pod in pods.values():
        assert_isolated(cluster, pod)


def test_alula_sdk_passes_files_folders_frames_and_pickles(alula: Remote, cluster: Cluster) -> None:
    # Needs: Alula's S3 storage in alula-execute (the tasks read and write the bucket).
    execution = alula.execute("passing", {"text": "hello", "n": 4})
    assert tuple(alula.wait(execution, timeout=TIMEOUT_S * 3)) == PASSING
    pods = pods_by_task(cluster, execution.name)
    assert len(pods) == 8, sorted(pods)
    for pod in pods.values():
        assert_isolated(cluster, pod)


# --- a big file with bounded memory ---


def big_pods_peak(cluster: Cluster, execution: str) -> dict[str, int]:
    pods = pods_by_task(cluster, execution)
    return {
        task: cluster.container_record(pods[task], primary(pods[task]))["maxRssBytes"]
        for task in ("make_big", "digest_big")
    }


def test_flytekit_streams_a_200_mb_file_through_tasks(flyte: FlyteRemote, cluster: Cluster) -> None:
    lp = flyte.fetch_launch_plan(name=f"{MODULE}.big", version=VERSION)
    # A small run alongside: its peak memory is what the SDK itself costs.
    small = flyte.execute(lp, inputs={"mb": 4}, wait=False)
    large = flyte.execute(lp, inputs={"mb": BIG_MB}, wait=False)
    large = succeeded(flyte.wait(large, timeout=TIMEOUT_S * 4, poll_interval=0.5))
    small = succeeded(flyte.wait(small, timeout=TIMEOUT_S * 4, poll_interval=0.5))
    assert large.outputs["o0"] == big_digest(BIG_MB)
    base, peak = big_pods_peak(cluster, small.id.name), big_pods_peak(cluster, large.id.name)
    print(f"peak RSS (bytes): 4 MB file {base}, {BIG_MB} MB file {peak}")
    # flytekit's own transfers buffer (its upload peaks near 3x the file): what is checked is
    # that each pod stayed within its memory limit, where a kubelet would not OOM-kill it.
    pods = pods_by_task(cluster, large.id.name)
    for task in peak:
        limit = pods[task]["spec"]["containers"][0]["resources"]["limits"]["memory"]
        assert limit == "1Gi" and peak[task] < 1 << 30, (task, limit, peak)


def test_alula_sdk_streams_a_200_mb_file_through_tasks(alula: Remote, cluster: Cluster) -> None:
    # Needs: Alula's S3 storage in alula-execute, streaming (not reading whole objects).
    small = alula.execute("big", {"mb": 4})
    large = alula.execute("big", {"mb": BIG_MB})
    assert alula.wait(large, timeout=TIMEOUT_S * 4) == big_digest(BIG_MB)
    assert alula.wait(small, timeout=TIMEOUT_S * 4) == big_digest(4)
    base, peak = big_pods_peak(cluster, small.name), big_pods_peak(cluster, large.name)
    print(f"peak RSS (bytes): 4 MB file {base}, {BIG_MB} MB file {peak}")
    for task in peak:
        # Never the whole file in memory: at most half of it above the SDK's own cost.
        assert peak[task] - base[task] < BIG_MB * MiB // 2, (task, base, peak)


# --- what the execution spec puts on the pod ---


def test_execution_labels_annotations_env_and_service_account_reach_the_pod(
    flyte: FlyteRemote, cluster: Cluster
) -> None:
    # Needs: the pod plugin applying the execution spec's labels, annotations, envs and
    # run-as service account (AttemptSettings).
    account = f"field-runner-{uuid.uuid4().hex[:6]}"
    cluster.kube.create(
        "serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account}},
    )
    options = Options(
        labels=Labels({"team": "field"}),
        annotations=Annotations({"field.example/note": "from the spec"}),
        security_context=SecurityContext(run_as=Identity(k8s_service_account=account)),
    )
    done = succeeded(
        run(flyte, "env_wf", {"name": "FIELD_ENV"}, options=options, envs={"FIELD_ENV": "set"})
    )
    assert done.outputs["o0"] == "set"
    (pod,) = cluster.kube.pods(done.id.name)
    assert pod["metadata"]["labels"]["team"] == "field"
    assert pod["metadata"]["annotations"]["field.example/note"] == "from the spec"
    assert pod["spec"]["serviceAccountName"] == account
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0].get("env", [])}
    assert env["FIELD_ENV"] == "set"


def test_secret_requests_read_a_kubernetes_secret(flyte: FlyteRemote, cluster: Cluster) -> None:
    # Needs: the pod plugin injecting `secret_requests` from Kubernetes Secrets.
    value = f"s3cr3t-{uuid.uuid4().hex[:8]}"
    cluster.kube.create_secret("field-secret", {"token": value})
    done = succeeded(run(flyte, "secret_wf", {}))
    assert done.outputs["o0"] == value
    (pod,) = cluster.kube.pods(done.id.name)
    # Referenced, not copied into the pod object.
    assert value not in json.dumps(pod["spec"])


def test_pod_template_by_name_shapes_the_pod(flyte: FlyteRemote, cluster: Cluster) -> None:
    # Needs: the pod plugin reading the PodTemplate named by `pod_template_name`.
    cluster.kube.create(
        "podtemplates",
        {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": "field-template"},
            "template": {
                "metadata": {"labels": {"from-template": "yes"}},
                "spec": {
                    "containers": [
                        {
                            "name": "default",
                            "image": "unused",
                            "env": [{"name": "FROM_TEMPLATE", "value": "template-env"}],
                        }
                    ]
                },
            },
        },
    )
    done = succeeded(run(flyte, "template_wf", {}))
    assert done.outputs["o0"] == "template-env"
    (pod,) = cluster.kube.pods(done.id.name)
    assert pod["metadata"]["labels"]["from-template"] == "yes"


# --- task kinds and engine features ---


def test_container_task_reads_inputs_and_writes_outputs_as_files(
    flyte: FlyteRemote, cluster: Cluster
) -> None:
    # Needs: raw container tasks (inputs written as files into input_data_dir, outputs read back
    # from output_data_dir: Flyte's copilot).
    done = succeeded(run(flyte, "shell_wf", {"a": 21, "text": "quiet"}))
    assert (done.outputs["o0"], done.outputs["o1"]) == (42, "QUIET")
    (pod,) = cluster.kube.pods(done.id.name)
    assert pod["status"]["phase"] == "Succeeded"


def test_cache_serialize_runs_one_pod_for_concurrent_executions(
    flyte: FlyteRemote, cluster: Cluster
) -> None:
    # Needs: cache serialization (a reservation on the cache key).
    lp = flyte.fetch_launch_plan(name=f"{MODULE}.cached_wf", version=VERSION)
    inputs = {"x": 7, "run": uuid.uuid4().hex}
    started: list[Any] = []
    threads = [
        threading.Thread(target=lambda: started.append(flyte.execute(lp, inputs=inputs)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = [succeeded(flyte.wait(e, timeout=TIMEOUT_S * 2, poll_interval=0.3)) for e in started]
    assert [d.outputs["o0"] for d in done] == [49, 49]
    pods = [p for d in done for p in cluster.kube.pods(d.id.name)]
    assert len(pods) == 1, [(p["metadata"]["name"], p["status"].get("phase")) for p in pods]


def test_recover_reruns_only_the_failed_node(
    flyte: FlyteRemote, cluster: Cluster, server: ConfiguredServer
) -> None:
    # Needs: RecoverExecution (succeeded nodes copied as RECOVERED).
    key = f"markers/{uuid.uuid4().hex}"
    marker = f"s3://{cluster.bucket}/{key}"
    failed = run(flyte, "recoverable", {"x": 3, "marker": marker})
    assert failed.closure.phase == WorkflowExecutionPhase.FAILED
    assert "does not exist yet" in failed.closure.error.message
    first_pods = pods_by_task(cluster, failed.id.name)
    assert set(first_pods) == {"first_step", "needs_marker"}, sorted(first_pods)

    request = urllib.request.Request(
        f"{cluster.s3_endpoint}/{cluster.bucket}/{key}", b"ok", method="PUT"
    )
    urllib.request.urlopen(request, timeout=10).read()
    recovered_id = flyte.client.recover_execution(failed.id)
    recovered = succeeded(
        flyte.wait(
            flyte.fetch_execution(name=recovered_id.name), timeout=TIMEOUT_S, poll_interval=0.3
        )
    )
    assert recovered.outputs["o0"] == 31
    execution_id = {"project": PROJECT, "domain": DOMAIN, "name": recovered_id.name}
    nodes = node_executions(endpoint(server), execution_id)
    assert nodes["n0"]["closure"]["phase"] == "RECOVERED"
    assert nodes["n1"]["closure"]["phase"] == "SUCCEEDED"
    # Only the failed node ran again.
    assert set(pods_by_task(cluster, recovered_id.name)) == {"needs_marker"}


def test_matchable_task_resources_change_the_pod(
    flyte: FlyteRemote, cluster: Cluster, server: ConfiguredServer
) -> None:
    # Needs: TASK_RESOURCE matchable attributes applied to tasks without resources. Last in the
    # module: the project-domain defaults it sets would change later pods.
    admin_call(
        endpoint(server),
        "UpdateProjectDomainAttributes",
        (
            "flyteidl.admin.ProjectDomainAttributesUpdateRequest",
            {
                "attributes": {
                    "project": PROJECT,
                    "domain": DOMAIN,
                    "matchingAttributes": {
                        "taskResourceAttributes": {
                            "defaults": {"cpu": "300m", "memory": "300Mi"},
                            "limits": {"cpu": "1", "memory": "700Mi"},
                        }
                    },
                }
            },
        ),
        "flyteidl.admin.ProjectDomainAttributesUpdateResponse",
    )
    done = succeeded(run(flyte, "plain_wf", {"x": 1}))
    assert done.outputs["o0"] == 2
    (pod,) = cluster.kube.pods(done.id.name)
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources["requests"]["cpu"] == "300m", resources
    assert resources["requests"]["memory"] == "300Mi", resources
    # As flytepropeller's AdjustOrDefaultResource: an unset limit takes the request; the
    # attributes' `limits` only cap what a task asks for.
    assert resources["limits"]["memory"] == "300Mi", resources
    assert resources["limits"]["cpu"] == "300m", resources
