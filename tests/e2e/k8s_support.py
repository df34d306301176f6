"""What the Kubernetes end-to-end modules (`test_k8s_*.py`) share: one real kube-apiserver
(v1.20.2 from ../shared/tools/kube-apiserver) with `tests/k8s/local_kubelet.py` as its node,
started once per test session, and alula-server instances configured to run tasks as pods on it.

The kubelet runs pods as local processes and shares this machine's file system, so the storage
root needs no rewriting, and it logs every pod it starts to `Cluster.start_log` (how tests tell
that a pod ran once)."""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, AlulaServer, RunningServer, _free_port, _wait_for_port, server_binary

KAS_DIR = Path(os.environ.get("KAS_DIR", Path.home() / ".cache/alula-kube-apiserver"))
APISERVER = KAS_DIR / "kubernetes-1.20.2/_output/bin/kube-apiserver"
KUBECONFIG = KAS_DIR / "kubeconfig"
TOOLS = Path(os.environ.get("KAS_TOOLS", REPO.parent / "shared/tools/kube-apiserver"))
KUBELET = REPO / "tests/k8s/local_kubelet.py"
NODE = "alula-local-1"
SELECTOR = "app.kubernetes.io/managed-by=alula"
NAMESPACE = "default"
TIMEOUT_S = 60
ADMIN = "/flyteidl.service.AdminService/"


def skip_reason() -> str | None:
    """Why the k8s suite cannot run here, or None."""
    if not APISERVER.exists() or not (TOOLS / "up.sh").exists():
        return (
            f"kube-apiserver is not built on this machine ({APISERVER} missing; run "
            f"{TOOLS}/build.sh once)"
        )
    return None


def cluster_running() -> bool:
    for pid_file in (KAS_DIR / "run").glob("*.pid"):
        try:
            os.kill(int(pid_file.read_text()), 0)
            return True
        except (OSError, ValueError):
            continue
    return False


class Kube:
    """The few API calls the tests make (standard library, as the kubelet)."""

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

    def request_count(self, verb: str, resource: str) -> float:
        """How many `verb` requests on `resource` (subresources excluded) the API server has
        served, from its `apiserver_request_total` metric."""
        request = urllib.request.Request(
            self.server + "/metrics", headers={"Authorization": "Bearer " + self.token}
        )
        with urllib.request.urlopen(request, context=self.ctx, timeout=10) as resp:
            text = resp.read().decode()
        total = 0.0
        for line in text.splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            if (labels.get("verb"), labels.get("resource"), labels.get("subresource", "")) == (
                verb,
                resource,
                "",
            ):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def pods(self, execution: str | None = None) -> list[dict[str, Any]]:
        """Our pods; those of one execution if named."""
        selector = SELECTOR + (f",execution-id={execution}" if execution else "")
        query = urllib.parse.urlencode({"labelSelector": selector})
        return list(self.get(f"/api/v1/namespaces/{NAMESPACE}/pods?{query}")["items"])

    def service_account_ready(self) -> bool:
        try:
            account = self.get(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default")
        except OSError:
            return False
        return bool(account.get("secrets"))

    def node_ready(self, name: str) -> bool:
        try:
            node = self.get(f"/api/v1/nodes/{name}")
        except OSError:
            return False
        return any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in node.get("status", {}).get("conditions", [])
        )


@dataclass
class Cluster:
    kube: Kube
    work: Path
    # `<uid> <namespace>/<name>` for every pod the kubelet started.
    start_log: Path
    kubelet: subprocess.Popen[bytes]
    kubelet_log: Path

    def starts(self) -> list[tuple[str, str]]:
        """(uid, name) of every pod start, in order."""
        if not self.start_log.exists():
            return []
        lines = self.start_log.read_text().splitlines()
        return [(uid, ref.split("/", 1)[1]) for uid, ref in (line.split() for line in lines)]


_cluster: Cluster | None = None


def shared_cluster(request: pytest.FixtureRequest, tmp: pytest.TempPathFactory) -> Cluster:
    """The session's cluster, brought up on first use and down when the session ends."""
    global _cluster
    if _cluster is not None:
        return _cluster
    if reason := skip_reason():
        pytest.skip(reason)
    # The API server listens on fixed ports: never take down one that another run (CI's
    # scripts/k8s-test) is using.
    if cluster_running():
        pytest.skip(f"a kube-apiserver from {KAS_DIR} is already running (another test run?)")
    subprocess.run([TOOLS / "down.sh"], check=True, capture_output=True)
    request.session.addfinalizer(_tear_down)
    up = subprocess.run([TOOLS / "up.sh"], capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stdout + up.stderr
    work = tmp.mktemp("kubelet")
    log_path = work / "kubelet.log"
    with log_path.open("wb") as log:
        kubelet = subprocess.Popen(
            [sys.executable, KUBELET],
            env={
                **os.environ,
                "KUBECONFIG": str(KUBECONFIG),
                "NODE": NODE,
                "WORK": str(work / "pods"),
                "START_LOG": str(work / "starts.log"),
                # The pods' commands (pyflyte-execute, alula-execute) come from this environment.
                "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    _cluster = Cluster(Kube(), work, work / "starts.log", kubelet, log_path)
    deadline = time.monotonic() + 30
    while not _cluster.kube.node_ready(NODE):
        assert kubelet.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, "the local kubelet's node never became Ready"
        time.sleep(0.2)
    # Until the token controller has given the namespace's default service account its token,
    # pods are refused (500: "no API token found"), which would fail the first attempts.
    wait_for("the default service account's token", _cluster.kube.service_account_ready)
    return _cluster


def _tear_down() -> None:
    global _cluster
    try:
        if _cluster is not None:
            kubelet = _cluster.kubelet
            kubelet.terminate()
            try:
                kubelet.wait(timeout=20)
            except subprocess.TimeoutExpired:
                kubelet.kill()
                kubelet.wait()
            print(_cluster.kubelet_log.read_text()[-5000:])
    finally:
        _cluster = None
        subprocess.run([TOOLS / "down.sh"], capture_output=True)


@dataclass
class ConfiguredServer(RunningServer):
    """A RunningServer started with a configuration file, which `restart` passes again."""

    argv: list[str] = field(default_factory=list)

    def restart(self) -> None:
        with self.server.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        _wait_for_port(self.server.grpc_port, self.proc, self.server.log_file)


def alula_server_binary() -> Path:
    """ALULA_SERVER_BINARY if set (a build to test as it is), else conftest's cargo build."""
    given = os.environ.get("ALULA_SERVER_BINARY")
    return Path(given) if given else server_binary()


def start_k8s_server(
    work: Path, *, keep_pods: bool = False, extra_env: dict[str, str] | None = None
) -> ConfiguredServer:
    """alula-server on free ports with ALULA_KUBECONFIG (every container task becomes a pod on
    the local kubelet's node). `keep_pods` keeps finished pods, for tests that inspect them."""
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
    config = work / "alula.toml"
    # Only the local kubelet's node runs our pods (fake_kubelet.py's fake-node-1 would only
    # pretend to).
    lines = ["[kubernetes.pods]", 'node_selector = { "alula/local" = "true" }']
    if keep_pods:
        lines.append("delete_on_completion = false")
    config.write_text("\n".join(lines) + "\n")
    env = {
        **os.environ,
        "ALULA_GRPC_PORT": str(server.grpc_port),
        "ALULA_HTTP_PORT": str(server.http_port),
        "ALULA_STORAGE_ROOT": str(server.storage_root),
        "ALULA_DATABASE_URL": f"sqlite://{work / 'alula.db'}?mode=rwc",
        "ALULA_PROPELLER": "1",
        "ALULA_TASK_PATH": str(Path(sys.executable).parent),
        "ALULA_KUBECONFIG": str(KUBECONFIG),
        **(extra_env or {}),
    }
    argv = [str(alula_server_binary()), "--config", str(config)]
    with server.log_file.open("wb") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    running = ConfiguredServer(server, proc, env, argv)
    try:
        _wait_for_port(server.grpc_port, proc, server.log_file)
    except Exception:
        proc.kill()
        raise
    return running


def stop_server(running: RunningServer) -> None:
    """Ctrl-C (the graceful path) unless it is down already; it must exit cleanly."""
    if running.proc.poll() is not None:
        return
    code = running.stop(signal.SIGINT)
    print(running.server.log_file.read_text()[-5000:])
    assert code == 0, f"alula-server exited with {code}"


def wait_for(what: str, condition: Any, timeout: float = TIMEOUT_S) -> Any:
    """Polls `condition()` until it returns something true; returns that."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return value


def admin_call(endpoint: str, rpc: str, request: tuple[str, Any], response: str) -> Any:
    """An admin RPC as proto3 JSON (those alula.remote.Remote does not wrap)."""
    from alula import _native

    name, body = request
    data = _native.message_from_json(name, json.dumps(body))
    out = _native.grpc_unary(endpoint, ADMIN + rpc, data, 30.0)
    return json.loads(_native.message_to_json(response, out))


def node_executions(endpoint: str, execution_id: dict[str, str]) -> dict[str, Any]:
    """The execution's node executions by node id."""
    found = admin_call(
        endpoint,
        "ListNodeExecutions",
        (
            "flyteidl.admin.NodeExecutionListRequest",
            {"workflowExecutionId": execution_id, "limit": 100},
        ),
        "flyteidl.admin.NodeExecutionList",
    )
    return {n["id"]["nodeId"]: n for n in found.get("nodeExecutions", [])}


def task_attempts(endpoint: str, node: dict[str, Any]) -> list[tuple[int, str]]:
    """(retry attempt, phase) of the node's task executions, by attempt."""
    found = admin_call(
        endpoint,
        "ListTaskExecutions",
        (
            "flyteidl.admin.TaskExecutionListRequest",
            {"nodeExecutionId": node["id"], "limit": 100},
        ),
        "flyteidl.admin.TaskExecutionList",
    )
    return sorted(
        (int(t["id"].get("retryAttempt", 0)), t["closure"]["phase"])
        for t in found.get("taskExecutions", [])
    )
