"""Scale benchmark of the Kubernetes pod plugin: a map task over N elements (5,000 by default),
each element a pod, on a real kube-apiserver (v1.20.2 from ../shared/tools/kube-apiserver).

The node is `tests/k8s/local_kubelet.py` with SIMULATE=1: it runs nothing and reports each pod
Succeeded as soon as the scheduler binds it, so the figures are those of alula-server, the API
server, the scheduler and the watches, not of starting thousands of Python processes.

Prints: pods created per second, time from CreateExecution to SUCCEEDED, the API server's
request rate (its `apiserver_request_total` before and after, by verb and resource), and
alula-server's peak RSS. `benchmarks/k8s-scale` is the entry point (it builds the server)."""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
KAS_DIR = Path(os.environ.get("KAS_DIR", Path.home() / ".cache/alula-kube-apiserver"))
KUBECONFIG = KAS_DIR / "kubeconfig"
TOOLS = Path(os.environ.get("KAS_TOOLS", REPO.parent / "shared/tools/kube-apiserver"))
KUBELET = REPO / "tests/k8s/local_kubelet.py"
NODE = "alula-local-1"

sys.path.insert(0, str(KUBELET.parent))
from local_kubelet import read_kubeconfig  # noqa: E402

Counts = dict[tuple[str, str], float]


class Kube:
    def __init__(self) -> None:
        self.server, ca, self.token = read_kubeconfig(str(KUBECONFIG))
        self.ctx = ssl.create_default_context(cadata=ca)

    def get(self, path: str) -> bytes:
        request = urllib.request.Request(
            self.server + path, headers={"Authorization": "Bearer " + self.token}
        )
        with urllib.request.urlopen(request, context=self.ctx, timeout=30) as resp:
            body: bytes = resp.read()
            return body

    def ready(self, check: str) -> bool:
        try:
            if check == "node":
                node = json.loads(self.get(f"/api/v1/nodes/{NODE}"))
                conditions = node.get("status", {}).get("conditions", [])
                return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            account = json.loads(self.get("/api/v1/namespaces/default/serviceaccounts/default"))
            return bool(account.get("secrets"))
        except OSError:
            return False

    def requests(self) -> Counts:
        """`apiserver_request_total` summed by (verb, resource[/subresource])."""
        counts: Counts = collections.defaultdict(float)
        for line in self.get("/metrics").decode().splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            resource = "/".join(filter(None, [labels.get("resource"), labels.get("subresource")]))
            counts[(labels.get("verb", ""), resource)] += float(line.split()[-1])
        return counts


def wait_until(what: str, condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def replace_scheduler(qps: int) -> None:
    """Restarts up.sh's kube-scheduler with a client rate limit of `qps`. Its default (50
    requests per second; each pod costs it a binding and an event) caps the cluster at 25 pods
    per second, a limit of the test cluster's setup that production clusters raise. The new
    process's id goes where down.sh looks for it."""
    pid_file = KAS_DIR / "run/sched.pid"
    pid = int(pid_file.read_text())
    os.kill(pid, signal.SIGTERM)
    wait_until("the old scheduler to stop", lambda: not Path(f"/proc/{pid}").exists(), 30)
    with (KAS_DIR / "run/sched.log").open("ab") as log:
        scheduler = subprocess.Popen(
            [
                KAS_DIR / "kubernetes-1.20.2/_output/bin/kube-scheduler",
                f"--kubeconfig={KUBECONFIG}",
                "--leader-elect=false",
                "--port=0",
                "--secure-port=0",
                f"--kube-api-qps={qps}",
                f"--kube-api-burst={2 * qps}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid_file.write_text(str(scheduler.pid))


def cluster_running() -> bool:
    for pid_file in (KAS_DIR / "run").glob("*.pid"):
        try:
            os.kill(int(pid_file.read_text()), 0)
            return True
        except (OSError, ValueError):
            continue
    return False


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--elements", type=int, default=5000)
    p.add_argument("--parallelism", type=int, default=500, help="ALULA_MAX_PARALLELISM")
    p.add_argument("--server", required=True, help="the alula-server binary")
    p.add_argument(
        "--scheduler-qps",
        type=int,
        default=1000,
        help="the scheduler's API rate limit (0: up.sh's scheduler, limited to 50)",
    )
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    args = p.parse_args()

    if cluster_running():
        raise SystemExit(f"a kube-apiserver from {KAS_DIR} is running already; stop it first")
    work = Path(tempfile.mkdtemp(prefix="alula-k8s-scale-"))
    procs: list[subprocess.Popen[bytes]] = []
    subprocess.run([TOOLS / "down.sh"], capture_output=True, check=True)
    try:
        up = subprocess.run([TOOLS / "up.sh"], capture_output=True, text=True, timeout=180)
        if up.returncode != 0:
            raise SystemExit(up.stdout + up.stderr)
        if args.scheduler_qps:
            replace_scheduler(args.scheduler_qps)
        kube = Kube()
        kubelet_log = (work / "kubelet.log").open("wb")
        procs.append(
            subprocess.Popen(
                [sys.executable, KUBELET],
                env={
                    **os.environ,
                    "KUBECONFIG": str(KUBECONFIG),
                    "NODE": NODE,
                    "SIMULATE": "1",
                    "START_LOG": str(work / "starts.log"),
                    # Room for every element at once: the benchmark is not about bin packing.
                    "CAPACITY": "cpu=100000,memory=100Ti,pods=100000",
                },
                stdout=kubelet_log,
                stderr=subprocess.STDOUT,
            )
        )
        wait_until("the node", lambda: kube.ready("node"), 60)
        wait_until("the default service account", lambda: kube.ready("account"), 60)

        grpc_port = free_port()
        config = work / "alula.toml"
        config.write_text('[kubernetes.pods]\nnode_selector = { "alula/local" = "true" }\n')
        env = {
            **os.environ,
            "ALULA_GRPC_PORT": str(grpc_port),
            "ALULA_HTTP_PORT": str(free_port()),
            "ALULA_STORAGE_ROOT": str(work / "storage"),
            "ALULA_DATABASE_URL": f"sqlite://{work / 'alula.db'}?mode=rwc",
            "ALULA_KUBECONFIG": str(KUBECONFIG),
            "ALULA_MAX_PARALLELISM": str(args.parallelism),
            "RUST_LOG": os.environ.get("RUST_LOG", "warn"),
        }
        server_log = (work / "server.log").open("wb")
        server = subprocess.Popen(
            [args.server, "--config", str(config)],
            env=env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )
        procs.append(server)

        def listening() -> bool:
            if server.poll() is not None:
                raise SystemExit((work / "server.log").read_text())
            try:
                socket.create_connection(("127.0.0.1", grpc_port), timeout=0.5).close()
                return True
            except OSError:
                return False

        wait_until("alula-server", listening, 60)

        from alula.remote import Remote

        remote = Remote(f"127.0.0.1:{grpc_port}", timeout=60)
        remote.register(HERE / "flows.py")
        before = kube.requests()
        started = time.monotonic()
        execution = remote.execute("fan_out", {"xs": list(range(args.elements))})
        remote.wait(execution, timeout=args.timeout, poll=0.5)
        elapsed = time.monotonic() - started
        after = kube.requests()
        rss = peak_rss_mb(server.pid)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT if proc is procs[-1] else signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        subprocess.run([TOOLS / "down.sh"], capture_output=True)

    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    created = delta.get(("POST", "pods"), 0.0)
    total = sum(delta.values())
    starts = len((work / "starts.log").read_text().splitlines())
    qps = args.scheduler_qps or "50 (default)"
    print(
        f"| elements | {args.elements} (max parallelism {args.parallelism}; scheduler QPS {qps}) |"
    )
    print("|---|---|")
    print(f"| CreateExecution to SUCCEEDED | {elapsed:.1f} s |")
    rate = created / elapsed
    print(f"| pods created | {created:.0f} ({rate:.0f} per second); kubelet starts {starts} |")
    print(f"| API server requests | {total:.0f} ({total / elapsed:.0f} per second) |")
    top = sorted(((v, k) for k, v in delta.items() if v), reverse=True)[:8]
    print("| by verb and resource | " + ", ".join(f"{v} {r}: {n:.0f}" for n, (v, r) in top) + " |")
    print(f"| alula-server peak RSS | {rss:.0f} MB |")
    if args.keep:
        print(f"work folder: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
