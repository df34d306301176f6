"""What the Kubernetes end-to-end modules (`test_k8s_*.py`) share: one real kube-apiserver
(v1.20.2 from ../shared/tools/kube-apiserver) with `tests/k8s/local_kubelet.py` as its node,
started once per test session, and alula-server instances configured to run tasks as pods on it.

Pods share nothing with the server but the API server and the bucket: execution data lives in an
S3 bucket (moto: ALULA_TEST_S3_ENDPOINT, which scripts/test starts, or one of the session's own),
and the kubelet runs each pod in an empty folder with an environment made from the pod spec alone.
The endpoint reaches the pods through the pod plugin's `default_env_vars`, the credentials
through a Secret named in `default_env_from_secrets`, as on a real cluster.

The kube-apiserver must be built on this machine (scripts/test builds it: build.sh, about 5
minutes once): where it is not, these tests fail rather than skip. Runs on one machine take turns
on its fixed ports through a lock file in KAS_DIR (scripts/k8s-test takes the same lock).

The kubelet logs every pod it starts to `Cluster.start_log` (how tests tell that a pod ran once)
and records each container's exit and peak memory (`Cluster.container_record`)."""

from __future__ import annotations

import base64
import fcntl
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
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    REPO,
    AlulaServer,
    RunningServer,
    _free_port,
    _wait_for_port,
    s3_env,
    server_binary,
)

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


LOCK = KAS_DIR / "test.lock"
# How long a session waits for another run on this machine to release the API server.
LOCK_WAIT_S = 900
S3_PREFIX = "alula"
# The Secret with the pods' S3 credentials (the pod plugin's `default_env_from_secrets`).
S3_SECRET = "alula-s3-credentials"


def require_apiserver() -> None:
    """Fails (never skips) where the kube-apiserver is not built: scripts/test builds it."""
    assert (TOOLS / "up.sh").exists(), f"{TOOLS} is missing (../shared next to the repository)"
    assert APISERVER.exists(), (
        f"kube-apiserver is not built on this machine ({APISERVER} missing): scripts/test "
        f"builds it, or run {TOOLS}/build.sh once (about 5 minutes)"
    )


def cluster_running() -> bool:
    for pid_file in (KAS_DIR / "run").glob("*.pid"):
        try:
            os.kill(int(pid_file.read_text()), 0)
            return True
        except (OSError, ValueError):
            continue
    return False


def take_lock() -> Any:
    """The machine's API server lock (an open file holding flock), waiting for another run."""
    KAS_DIR.mkdir(parents=True, exist_ok=True)
    handle = LOCK.open("a")
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            assert time.monotonic() < deadline, f"another run held {LOCK} for {LOCK_WAIT_S} s"
            time.sleep(1)


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

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.server + path,
            data=data,
            method=method,
            headers={"Authorization": "Bearer " + self.token, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=self.ctx, timeout=10) as resp:
            return json.load(resp)

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def create(self, resource: str, body: dict[str, Any]) -> Any:
        """Creates a namespaced core/v1 object (`secrets`, `serviceaccounts`, `podtemplates`)."""
        return self.call("POST", f"/api/v1/namespaces/{NAMESPACE}/{resource}", body)

    def create_secret(self, name: str, data: dict[str, str]) -> Any:
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        return self.create(
            "secrets",
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": encoded},
        )

    def pod(self, name: str) -> dict[str, Any]:
        return dict(self.get(f"/api/v1/namespaces/{NAMESPACE}/pods/{name}"))

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
    # The session's S3 endpoint and bucket (execution data of every server).
    s3_endpoint: str
    bucket: str

    def pod_folder(self, pod: dict[str, Any]) -> Path:
        """Where the kubelet ran the pod (tests/k8s/pod_runtime.py)."""
        m = pod["metadata"]
        return self.work / "pods" / f"{m['namespace']}-{m['name']}-{m['uid'][:8]}"

    def container_record(self, pod: dict[str, Any], container: str) -> dict[str, Any]:
        """What the kubelet recorded of an ended container: exitCode, maxRssBytes, argv, env."""
        return dict(json.loads((self.pod_folder(pod) / f"{container}.json").read_text()))

    def starts(self) -> list[tuple[str, str]]:
        """(uid, name) of every pod start, in order."""
        if not self.start_log.exists():
            return []
        lines = self.start_log.read_text().splitlines()
        return [(uid, ref.split("/", 1)[1]) for uid, ref in (line.split() for line in lines)]


_cluster: Cluster | None = None
# What the session started besides the cluster: the lock, a moto server of its own.
_held: list[Any] = []


def session_s3(tmp: pytest.TempPathFactory) -> str:
    """ALULA_TEST_S3_ENDPOINT (scripts/test's moto), else a moto server for the session."""
    given = os.environ.get("ALULA_TEST_S3_ENDPOINT")
    if given:
        return given.rstrip("/")
    port = _free_port()
    log_file = tmp.mktemp("moto") / "moto.log"
    moto = Path(sys.executable).parent / "moto_server"
    with log_file.open("wb") as log:
        proc = subprocess.Popen(
            [moto, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
        )
    _held.append(proc)
    _wait_for_port(port, proc, log_file)
    return f"http://127.0.0.1:{port}"


def copilot_binary() -> Path:
    """ALULA_COPILOT_BINARY if set, else a cargo build of alula-copilot (raw container tasks'
    init container and sidecar run it)."""
    given = os.environ.get("ALULA_COPILOT_BINARY")
    if given:
        return Path(given)
    subprocess.run(["cargo", "build", "-q", "-p", "alula-copilot"], cwd=REPO, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "debug" / "alula-copilot"


def image_bin(work: Path) -> Path:
    """A folder with the image's own commands besides the venv's: alula-copilot, as Alula's
    task image has it."""
    folder = work / "image-bin"
    folder.mkdir()
    (folder / "alula-copilot").symlink_to(copilot_binary())
    return folder


def shared_cluster(request: pytest.FixtureRequest, tmp: pytest.TempPathFactory) -> Cluster:
    """The session's cluster, brought up on first use and down when the session ends."""
    global _cluster
    if _cluster is not None:
        return _cluster
    require_apiserver()
    request.session.addfinalizer(_tear_down)
    # The API server listens on fixed ports: runs on this machine take turns.
    _held.append(take_lock())
    # Holding the lock, a running API server is one a run left behind (or up.sh by hand).
    if cluster_running():
        print(f"stopping a kube-apiserver left running in {KAS_DIR}")
    subprocess.run([TOOLS / "down.sh"], check=True, capture_output=True)
    endpoint = session_s3(tmp)
    bucket = f"alula-k8s-{uuid.uuid4().hex[:12]}"
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{bucket}", method="PUT"))
    up = subprocess.run([TOOLS / "up.sh"], capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stdout + up.stderr
    work = tmp.mktemp("kubelet")
    log_path = work / "kubelet.log"
    with log_path.open("wb") as log:
        kubelet = subprocess.Popen(
            [sys.executable, KUBELET],
            env={
                # Its own settings only: the pods' environments come from their specs.
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "KUBECONFIG": str(KUBECONFIG),
                "NODE": NODE,
                "WORK": str(work / "pods"),
                "START_LOG": str(work / "starts.log"),
                # The "image": pyflyte-execute, alula-execute, python; alula-copilot.
                "IMAGE_PATH": f"{image_bin(work)}:{Path(sys.executable).parent}",
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    _cluster = Cluster(Kube(), work, work / "starts.log", kubelet, log_path, endpoint, bucket)
    deadline = time.monotonic() + 30
    while not _cluster.kube.node_ready(NODE):
        assert kubelet.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, "the local kubelet's node never became Ready"
        time.sleep(0.2)
    # Until the token controller has given the namespace's default service account its token,
    # pods are refused (500: "no API token found"), which would fail the first attempts.
    wait_for("the default service account's token", _cluster.kube.service_account_ready)
    creds = {k: v for k, v in s3_env(endpoint).items() if "KEY" in k}
    creds |= {"FLYTE_AWS_ACCESS_KEY_ID": "test", "FLYTE_AWS_SECRET_ACCESS_KEY": "test"}
    _cluster.kube.create_secret(S3_SECRET, creds)
    grant_task_pods(_cluster.kube)
    return _cluster


def grant_task_pods(kube: Kube) -> None:
    """What the chart grants the tasks' service account (templates/copilot-rbac.yaml): reading
    pods, which a raw container task's copilot sidecar does to see the task's container end.
    Here the tasks run as the namespace's default account."""
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NAMESPACE}"
    name = "alula-task-copilot"
    kube.call(
        "POST",
        f"{rbac}/roles",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": name},
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
            ],
        },
    )
    kube.call(
        "POST",
        f"{rbac}/rolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": NAMESPACE}],
        },
    )


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
        for held in reversed(_held):
            if isinstance(held, subprocess.Popen):
                held.terminate()
                held.wait(timeout=10)
            else:
                held.close()  # the lock
        _held.clear()


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


def pod_s3_env(endpoint: str) -> dict[str, str]:
    """What a pod needs besides credentials to reach the bucket: for alula-execute (object_store's
    `AWS_*`) and flytekit (`FLYTE_AWS_ENDPOINT`, and boto's `AWS_ENDPOINT_URL` for s3fs)."""
    env = {k: v for k, v in s3_env(endpoint).items() if "KEY" not in k}
    return env | {"FLYTE_AWS_ENDPOINT": endpoint}


def start_k8s_server(
    cluster: Cluster,
    work: Path,
    *,
    keep_pods: bool = False,
    extra_env: dict[str, str] | None = None,
    extra_config: list[str] | None = None,
    operators: list[str] | None = None,
) -> ConfiguredServer:
    """alula-server on free ports with ALULA_KUBECONFIG (every container task becomes a pod on
    the local kubelet's node) and its execution data in the session's bucket, under a prefix of
    its own. `keep_pods` keeps finished pods, for tests that inspect them; `extra_config` lines
    go in the `[kubernetes.pods]` table; `operators` are the operator plugins to run."""
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
    pod_env = ", ".join(f'"{k}" = "{v}"' for k, v in pod_s3_env(cluster.s3_endpoint).items())
    lines = [
        "[kubernetes]",
        f"operators = {json.dumps(operators or [])}",
        "[kubernetes.pods]",
        # Only the local kubelet's node runs our pods (fake_kubelet.py's fake-node-1 would only
        # pretend to).
        'node_selector = { "alula/local" = "true" }',
        f"default_env_vars = {{ {pod_env} }}",
        f'default_env_from_secrets = ["{S3_SECRET}"]',
    ]
    if keep_pods:
        lines.append("delete_on_completion = false")
    config.write_text("\n".join(lines + (extra_config or [])) + "\n")
    env = {
        **os.environ,
        "ALULA_GRPC_PORT": str(server.grpc_port),
        "ALULA_HTTP_PORT": str(server.http_port),
        # The server's own state (SQLite, work folders); execution data is in the bucket.
        "ALULA_STORAGE_ROOT": str(server.storage_root),
        "ALULA_STORAGE_URL": f"s3://{cluster.bucket}/{S3_PREFIX}-{work.name}",
        **s3_env(cluster.s3_endpoint),
        "ALULA_DATABASE_URL": f"sqlite://{work / 'alula.db'}?mode=rwc",
        "ALULA_PROPELLER": "1",
        "ALULA_KUBECONFIG": str(KUBECONFIG),
        **(extra_env or {}),
    }
    env.pop("ALULA_TASK_PATH", None)
    argv = [str(alula_server_binary()), "--config", str(config)]
    with server.log_file.open("wb") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    # By name: RunningServer's own fields end with `args` (its restart arguments).
    running = ConfiguredServer(server, proc, env, argv=argv)
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
