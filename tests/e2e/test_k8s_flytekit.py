"""Container tasks as Kubernetes pods: workflows registered by the real flytekit run through
alula-server's pod plugin on a real kube-apiserver (v1.20.2 from
/work/shared/tools/kube-apiserver), whose pods `tests/k8s/local_kubelet.py` runs as local
processes (the storage root is shared: the "node" is this machine).

Skipped unless that kube-apiserver has been built on this machine (its build.sh, once)."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    REPO,
    AlulaServer,
    RunningServer,
    _free_port,
    _wait_for_port,
    server_binary,
)

KAS_DIR = Path(os.environ.get("KAS_DIR", Path.home() / ".cache/alula-kube-apiserver"))
APISERVER = KAS_DIR / "kubernetes-1.20.2/_output/bin/kube-apiserver"
KUBECONFIG = KAS_DIR / "kubeconfig"
TOOLS = Path(os.environ.get("KAS_TOOLS", "/work/shared/tools/kube-apiserver"))
KUBELET = REPO / "tests/k8s/local_kubelet.py"
FLOWS = Path(__file__).parent / "flows"
PYFLYTE = Path(sys.executable).parent / "pyflyte"
PROJECT, DOMAIN, VERSION = "flytesnacks", "development", "k8s-v1"
NODE = "alula-local-1"
SELECTOR = "app.kubernetes.io/managed-by=alula"
TIMEOUT_S = 60

if not APISERVER.exists() or not (TOOLS / "up.sh").exists():
    pytest.skip(
        f"kube-apiserver is not built on this machine ({APISERVER} missing; run "
        f"{TOOLS}/build.sh once)",
        allow_module_level=True,
    )

from flytekit.configuration import Config  # noqa: E402
from flytekit.models.core.execution import WorkflowExecutionPhase  # noqa: E402
from flytekit.remote import FlyteRemote  # noqa: E402


def cluster_running() -> bool:
    for pid_file in (KAS_DIR / "run").glob("*.pid"):
        try:
            os.kill(int(pid_file.read_text()), 0)
            return True
        except (OSError, ValueError):
            continue
    return False


class Kube:
    """The few API calls the test makes (standard library, as the kubelet)."""

    def __init__(self) -> None:
        sys.path.insert(0, str(KUBELET.parent))
        try:
            from local_kubelet import read_kubeconfig
        finally:
            sys.path.remove(str(KUBELET.parent))
        self.server, ca, self.token = read_kubeconfig(str(KUBECONFIG))
        self.ctx = ssl.create_default_context(cadata=ca)

    def get(self, path: str) -> Any:
        request = urllib.request.Request(
            self.server + path, headers={"Authorization": "Bearer " + self.token}
        )
        with urllib.request.urlopen(request, context=self.ctx, timeout=10) as resp:
            return json.load(resp)

    def pods(self) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"labelSelector": SELECTOR})
        return list(self.get(f"/api/v1/namespaces/default/pods?{query}")["items"])

    def node_ready(self, name: str) -> bool:
        try:
            node = self.get(f"/api/v1/nodes/{name}")
        except OSError:
            return False
        return any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in node.get("status", {}).get("conditions", [])
        )


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    # The API server listens on fixed ports: never take down one that another run (CI's
    # scripts/k8s-test) is using.
    if cluster_running():
        pytest.skip(f"a kube-apiserver from {KAS_DIR} is already running (another test run?)")
    subprocess.run([TOOLS / "down.sh"], check=True, capture_output=True)
    try:
        up = subprocess.run([TOOLS / "up.sh"], capture_output=True, text=True, timeout=120)
        assert up.returncode == 0, up.stdout + up.stderr
        work = tmp_path_factory.mktemp("kubelet")
        with (work / "kubelet.log").open("wb") as log:
            kubelet = subprocess.Popen(
                [sys.executable, KUBELET],
                env={
                    **os.environ,
                    "KUBECONFIG": str(KUBECONFIG),
                    "NODE": NODE,
                    "WORK": str(work / "pods"),
                    # The pods' commands (pyflyte-execute) come from this test environment.
                    "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
                },
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            k = Kube()
            deadline = time.monotonic() + 30
            while not k.node_ready(NODE):
                assert kubelet.poll() is None, (work / "kubelet.log").read_text()
                assert time.monotonic() < deadline, "the local kubelet's node never became Ready"
                time.sleep(0.2)
            yield k
        finally:
            kubelet.terminate()
            try:
                kubelet.wait(timeout=20)
            except subprocess.TimeoutExpired:
                kubelet.kill()
                kubelet.wait()
                raise
            finally:
                print((work / "kubelet.log").read_text())
    finally:
        subprocess.run([TOOLS / "down.sh"], capture_output=True)


def start_server_with_config(work: Path, config: Path) -> RunningServer:
    """conftest's start_server, with a configuration file (for the pods' node selector) and
    ALULA_KUBECONFIG."""
    binary = server_binary()
    server = AlulaServer(
        grpc_port=_free_port(),
        http_port=_free_port(),
        storage_root=work / "storage",
        config_file=work / "config.yaml",
        log_file=work / "server.log",
    )
    server.config_file.write_text(
        f"admin:\n  endpoint: dns:///127.0.0.1:{server.grpc_port}\n  insecure: true\n"
    )
    env = {
        **os.environ,
        "ALULA_GRPC_PORT": str(server.grpc_port),
        "ALULA_HTTP_PORT": str(server.http_port),
        "ALULA_STORAGE_ROOT": str(server.storage_root),
        "ALULA_DATABASE_URL": f"sqlite://{work / 'alula.db'}?mode=rwc",
        "ALULA_PROPELLER": "1",
        "ALULA_TASK_PATH": str(Path(sys.executable).parent),
        "ALULA_KUBECONFIG": str(KUBECONFIG),
    }
    with server.log_file.open("wb") as log:
        proc = subprocess.Popen(
            [binary, "--config", str(config)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_for_port(server.grpc_port, proc, server.log_file)
    except Exception:
        proc.kill()
        raise
    return RunningServer(server, proc, env)


@pytest.fixture(scope="module")
def cluster(kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    work = tmp_path_factory.mktemp("alula-k8s")
    # Only the local kubelet's node runs our pods (fake_kubelet.py's fake-node-1 would only
    # pretend to).
    config = work / "alula.toml"
    config.write_text('[kubernetes.pods]\nnode_selector = { "alula/local" = "true" }\n')
    running = start_server_with_config(work, config)
    try:
        yield running
    finally:
        code = running.stop()
        print(running.server.log_file.read_text()[-5000:])
    assert code == 0, f"alula-server exited with {code}"


@pytest.fixture(scope="module")
def remote(cluster: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> FlyteRemote:
    root = tmp_path_factory.mktemp("src")
    shutil.copytree(FLOWS, root / "flows")
    done = subprocess.run(
        [PYFLYTE, "--config", cluster.server.config_file, "register"]
        + ["--version", VERSION, "flows"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return FlyteRemote(
        Config.auto(config_file=str(cluster.server.config_file)),
        default_project=PROJECT,
        default_domain=DOMAIN,
    )


def execution_pods(kube: Kube, name: str) -> list[dict[str, Any]]:
    return [p for p in kube.pods() if p["metadata"]["labels"].get("execution-id") == name]


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
