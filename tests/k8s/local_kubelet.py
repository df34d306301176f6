#!/usr/bin/env python3
"""A kubelet that runs pods as local processes, for tests against a real kube-apiserver
(../shared/tools/kube-apiserver) without a container runtime.

It registers node NODE (default `alula-local-1`, labelled `alula/local=true`, so that only pods
selecting that label land on it: the tools' `fake_kubelet.py` keeps `fake-node-1`), heartbeats it,
watches the pods bound to it with the label `app.kubernetes.io/managed-by=alula` (one list, then
a watch; a re-list only when the watch expires), and for each such pod:

- runs the first container's `command + args` (the image is ignored; a `--dest-dir` value
  becomes `.`) as a local process in its own process group, with this process's environment
  plus the container's `env`, in a fresh working folder under WORK (default: a temporary
  folder), output in `<folder>/log`;
- reports the pod Running, then Succeeded/Failed with the exit code in `containerStatuses`
  (`terminated`, the log tail as the message of a failure, as `FallbackToLogsOnError` would);
- kills the process group when the pod is deleted, and completes the deletion (what a kubelet
  does once the containers are gone).

With SIMULATE=1 nothing is run: each pod is reported Succeeded (exit 0) as soon as it is bound,
which is what a task without outputs needs (propeller reads no `outputs.pb` then). Scale
benchmarks use it: thousands of Python processes would measure the machine, not the system.
Status updates then go through a few connections in parallel.

Standard library only. Settings from the environment: KUBECONFIG (server, CA data and bearer
token are read from it; default: the one up.sh writes), NODE, WORK, NAMESPACE (default: all),
SIMULATE, START_LOG (a file that gets `<uid> <namespace>/<name>` for every pod started: how
tests count starts), CAPACITY (the node's, default `cpu=16,memory=64Gi,pods=110`).
"""

from __future__ import annotations

import base64
import concurrent.futures
import datetime
import http.client
import json
import os
import queue
import re
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

SELECTOR = "app.kubernetes.io/managed-by=alula"
NODE_LABEL = ("alula/local", "true")
TERM_GRACE_S = 5.0
HEARTBEAT_S = 10.0
# The API server ends a watch after this; we then watch again from where it stopped.
WATCH_TIMEOUT_S = 240
# How often running processes are checked for exit (a local `poll`, no API call).
REAP_INTERVAL_S = 0.1
SIMULATE_CONNECTIONS = 4


def read_kubeconfig(path: str) -> tuple[str, str, str]:
    """(server, CA PEM, token) from the kubeconfig up.sh writes. It is YAML in flow style; read
    the three values with patterns rather than a YAML parser (standard library only)."""
    text = Path(path).read_text()

    def field(name: str) -> str:
        m = re.search(rf"{name}:\s*\"?([^\s\",}}]+)", text)
        if not m:
            raise SystemExit(f"{path}: no {name}")
        return m.group(1)

    ca = base64.b64decode(field("certificate-authority-data")).decode()
    return field("server"), ca, field("token")


class ApiError(Exception):
    """The API server answered a call with an error status other than 404 / 409."""


class Api:
    """JSON calls over kept-alive HTTPS connections, one per thread (thousands of pods would
    otherwise cost a TLS handshake per call)."""

    def __init__(self, kubeconfig: str) -> None:
        self.server, ca, self.token = read_kubeconfig(kubeconfig)
        url = urllib.parse.urlsplit(self.server)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 443
        self.ctx = ssl.create_default_context(cadata=ca)
        self.local = threading.local()

    def _connect(self, timeout: float) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)

    def _headers(self, ctype: str) -> dict[str, str]:
        return {
            "Authorization": "Bearer " + self.token,
            "Content-Type": ctype,
            "Accept": "application/json",
        }

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        ctype: str = "application/merge-patch+json",
    ) -> Any:
        """The response body; None for 404 and 409 (gone already, exists already)."""
        data = None if body is None else json.dumps(body).encode()
        for retry in (False, True):
            conn = getattr(self.local, "conn", None) or self._connect(10)
            self.local.conn = conn
            try:
                conn.request(method, path, body=data, headers=self._headers(ctype))
                resp = conn.getresponse()
                payload = resp.read()
                break
            except (http.client.HTTPException, OSError):
                # A kept-alive connection the server closed: once more on a fresh one.
                conn.close()
                self.local.conn = None
                if retry:
                    raise
        if resp.status in (404, 409):
            return None
        if resp.status >= 400:
            raise ApiError(
                f"{method} {path}: {resp.status} {payload[:500].decode(errors='replace')}"
            )
        return json.loads(payload) if payload else None

    def watch(self, path: str) -> Iterator[dict[str, Any]]:
        """The events of a watch request, one JSON object a line, until the server ends it."""
        conn = self._connect(WATCH_TIMEOUT_S + 30)
        try:
            conn.request("GET", path, headers=self._headers("application/json"))
            resp = conn.getresponse()
            if resp.status != 200:
                raise ApiError(f"watch {path}: {resp.status} {resp.read()[:500]!r}")
            while line := resp.readline():
                yield json.loads(line)
        finally:
            conn.close()


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_capacity(spec: str) -> dict[str, str]:
    """`cpu=16,memory=64Gi,pods=110` as a resource list."""
    return dict(kv.split("=", 1) for kv in spec.split(",") if kv)


class Kubelet:
    def __init__(
        self,
        api: Api,
        node: str,
        work: Path,
        namespace: str | None,
        *,
        simulate: bool = False,
        start_log: Path | None = None,
        capacity: dict[str, str] | None = None,
    ) -> None:
        self.api, self.node, self.work, self.namespace = api, node, work, namespace
        self.simulate, self.start_log = simulate, start_log
        self.capacity = capacity or parse_capacity("cpu=16,memory=64Gi,pods=110")
        # uid -> the pod as last seen
        self.pods: dict[str, dict[str, Any]] = {}
        # uid -> (process, working folder, start time)
        self.running: dict[str, tuple[subprocess.Popen[bytes], Path, str]] = {}
        # uids started (whatever became of them): a pod runs once
        self.started: set[str] = set()
        # uids whose deletion we completed
        self.deleted: set[str] = set()
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.stopping = threading.Event()
        self.last_heartbeat = 0.0
        # Simulated pods' status updates run here, so that a burst is not one call at a time.
        self.calls = (
            concurrent.futures.ThreadPoolExecutor(SIMULATE_CONNECTIONS) if simulate else None
        )

    def call_later(self, fn: Callable[[], Any]) -> None:
        """Runs an API call on the pool (simulating) or now."""
        if self.calls is None:
            fn()
            return

        def report(f: concurrent.futures.Future[Any]) -> None:
            if (e := f.exception()) is not None:
                print(f"API call failed: {e}", flush=True)

        self.calls.submit(fn).add_done_callback(report)

    def register(self) -> None:
        meta = {
            "name": self.node,
            "labels": {"kubernetes.io/hostname": self.node, NODE_LABEL[0]: NODE_LABEL[1]},
        }
        self.api(
            "POST",
            "/api/v1/nodes",
            {"apiVersion": "v1", "kind": "Node", "metadata": meta},
            "application/json",
        )
        self.heartbeat()

    def heartbeat(self) -> None:
        t = now()
        info = dict.fromkeys(
            ["machineID", "systemUUID", "bootID", "kernelVersion", "osImage", "kubeProxyVersion"],
            "",
        )
        info |= {
            "kubeletVersion": "local",
            "containerRuntimeVersion": "local://0",
            "architecture": "amd64",
            "operatingSystem": "linux",
        }
        status = {
            "capacity": self.capacity,
            "allocatable": self.capacity,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "local kubelet",
                    "lastHeartbeatTime": t,
                    "lastTransitionTime": t,
                }
            ],
            "nodeInfo": info,
        }
        self.api("PATCH", f"/api/v1/nodes/{self.node}/status", {"status": status})
        self.last_heartbeat = time.monotonic()

    # --- the watch (its own thread; events go to the main loop through `events`) ---

    def pods_path(self, **params: str) -> str:
        query = urllib.parse.urlencode(
            {"fieldSelector": f"spec.nodeName={self.node}", "labelSelector": SELECTOR, **params}
        )
        base = f"/api/v1/namespaces/{self.namespace}/pods" if self.namespace else "/api/v1/pods"
        return f"{base}?{query}"

    def watch_pods(self) -> None:
        version: str | None = None
        while not self.stopping.is_set():
            try:
                if version is None:
                    listed = self.api("GET", self.pods_path()) or {"items": [], "metadata": {}}
                    self.events.put(("SYNC", listed["items"]))
                    version = listed["metadata"]["resourceVersion"]
                path = self.pods_path(
                    watch="1",
                    resourceVersion=version,
                    allowWatchBookmarks="true",
                    timeoutSeconds=str(WATCH_TIMEOUT_S),
                )
                for event in self.api.watch(path):
                    if event["type"] == "ERROR":  # 410 Gone: our version is too old
                        print(f"pod watch ended: {event['object'].get('message')}", flush=True)
                        version = None
                        break
                    version = event["object"]["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self.events.put((event["type"], event["object"]))
            except (ApiError, OSError, http.client.HTTPException, ValueError, KeyError) as e:
                print(f"pod watch failed ({e}); listing again", flush=True)
                version = None
                self.stopping.wait(1)

    # --- the main loop's handling of pods ---

    def handle(self, kind: str, pod: dict[str, Any]) -> None:
        m = pod["metadata"]
        uid = m["uid"]
        if kind == "DELETED":
            self.pods.pop(uid, None)
            self.deleted.discard(uid)
            if uid in self.running:
                self.kill(uid)
            return
        self.pods[uid] = pod
        if m.get("deletionTimestamp"):
            if uid in self.running:
                self.kill(uid)
            if uid not in self.deleted:
                self.deleted.add(uid)
                path = f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}"
                body = {"gracePeriodSeconds": 0}
                self.call_later(lambda: self.api("DELETE", path, body, "application/json"))
            return
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Pending" and uid not in self.started:
            self.start(pod)

    def sync(self, pods: list[dict[str, Any]]) -> None:
        """A full list: what is missing from it is gone (deleted while we were not watching)."""
        listed = {p["metadata"]["uid"] for p in pods}
        for uid in [u for u in self.running if u not in listed]:
            self.kill(uid)
        self.pods = {u: p for u, p in self.pods.items() if u in listed}
        for pod in pods:
            self.handle("ADDED", pod)

    def status(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        m = pod["metadata"]
        self.api(
            "PATCH",
            f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}/status",
            {"status": status},
        )

    def record_start(self, pod: dict[str, Any]) -> None:
        m = pod["metadata"]
        self.started.add(m["uid"])
        if self.start_log is not None:
            with self.start_log.open("a") as f:
                f.write(f"{m['uid']} {m['namespace']}/{m['name']}\n")

    def start(self, pod: dict[str, Any]) -> None:
        self.record_start(pod)
        if self.simulate:
            t = now()
            self.call_later(lambda: self.finish(pod, 0, "", "Completed", t))
            return
        m, container = pod["metadata"], pod["spec"]["containers"][0]
        argv = list(container.get("command") or []) + list(container.get("args") or [])
        # A container has a file system of its own; these processes share the machine's. The
        # code bundle (`pyflyte-fast-execute --dest-dir /root`) goes into the pod's folder (the
        # working directory) instead, as alula's process plugin does.
        if "--dest-dir" in argv[:-1]:
            argv[argv.index("--dest-dir") + 1] = "."
        folder = self.work / f"{m['namespace']}-{m['name']}-{m['uid'][:8]}"
        folder.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        for name in ("KUBECONFIG", "SIMULATE", "START_LOG", "CAPACITY"):
            env.pop(name, None)
        for e in container.get("env") or []:
            env[e["name"]] = e.get("value", "")
        t = now()
        with (folder / "log").open("wb") as log:
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=folder,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as e:
                self.finish(pod, 127, f"cannot start {argv[:1]}: {e}", "StartError", t)
                return
        print(f"started {m['name']} pid {proc.pid}: {argv}", flush=True)
        self.running[m["uid"]] = (proc, folder, t)
        self.status(
            pod,
            {
                "phase": "Running",
                "startTime": t,
                "hostIP": "127.0.0.1",
                "podIP": "127.0.0.1",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": t}],
                "containerStatuses": [
                    {
                        "name": container["name"],
                        "ready": True,
                        "restartCount": 0,
                        "image": container.get("image", ""),
                        "imageID": "local",
                        "started": True,
                        "state": {"running": {"startedAt": t}},
                    }
                ],
            },
        )

    def finish(
        self, pod: dict[str, Any], code: int, message: str, reason: str, started: str
    ) -> None:
        m, container = pod["metadata"], pod["spec"]["containers"][0]
        t = now()
        terminated = {
            "exitCode": code,
            "reason": reason,
            "startedAt": started,
            "finishedAt": t,
        }
        if message:
            terminated["message"] = message
        self.status(
            pod,
            {
                "phase": "Succeeded" if code == 0 else "Failed",
                "startTime": started,
                "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": t}],
                "containerStatuses": [
                    {
                        "name": container["name"],
                        "ready": False,
                        "restartCount": 0,
                        "image": container.get("image", ""),
                        "imageID": "local",
                        "started": False,
                        "state": {"terminated": terminated},
                    }
                ],
            },
        )
        if not self.simulate:
            print(f"finished {m['name']}: exit {code}", flush=True)

    def reap(self) -> None:
        """Reports the processes that exited."""
        for uid in list(self.running):
            proc, folder, started = self.running[uid]
            code = proc.poll()
            if code is None:
                continue
            del self.running[uid]
            tail = ""
            if code != 0:
                tail = (folder / "log").read_bytes()[-2048:].decode(errors="replace")
            if code < 0:  # killed by a signal: as a container runtime reports it
                code = 128 - code
            pod = self.pods.get(uid)
            if pod is not None:
                self.finish(pod, code, tail, "Completed" if code == 0 else "Error", started)

    def kill(self, uid: str) -> None:
        proc, _, _ = self.running.pop(uid)
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=TERM_GRACE_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        except ProcessLookupError:
            pass
        print(f"killed pid {proc.pid}", flush=True)

    def step(self) -> None:
        """Handles what the watch delivered (waiting briefly for it), then reaps exits."""
        if time.monotonic() - self.last_heartbeat > HEARTBEAT_S:
            self.heartbeat()
        try:
            batch = [self.events.get(timeout=REAP_INTERVAL_S)]
        except queue.Empty:
            batch = []
        while True:
            try:
                batch.append(self.events.get_nowait())
            except queue.Empty:
                break
        for kind, obj in batch:
            if kind == "SYNC":
                self.sync(obj)
            else:
                self.handle(kind, obj)
        self.reap()

    def stop(self) -> None:
        self.stopping.set()
        for uid in list(self.running):
            self.kill(uid)
        if self.calls is not None:
            self.calls.shutdown(wait=True)


def main() -> None:
    kubeconfig = os.environ.get("KUBECONFIG") or str(
        Path.home() / ".cache/alula-kube-apiserver/kubeconfig"
    )
    work = Path(os.environ.get("WORK") or tempfile.mkdtemp(prefix="local-kubelet-"))
    start_log = os.environ.get("START_LOG")
    kubelet = Kubelet(
        Api(kubeconfig),
        os.environ.get("NODE", "alula-local-1"),
        work,
        os.environ.get("NAMESPACE"),
        simulate=os.environ.get("SIMULATE", "") not in ("", "0"),
        start_log=Path(start_log) if start_log else None,
        capacity=parse_capacity(os.environ.get("CAPACITY", "cpu=16,memory=64Gi,pods=110")),
    )
    # A flag rather than an exception: one raised in the middle of an API call could be lost.
    signal.signal(signal.SIGTERM, lambda *_: kubelet.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: kubelet.stopping.set())
    kubelet.register()
    # Blocked reading the watch most of the time: a daemon, not joined at exit.
    threading.Thread(target=kubelet.watch_pods, name="pod-watch", daemon=True).start()
    mode = "simulated (nothing runs)" if kubelet.simulate else f"run under {work}"
    print(f"node {kubelet.node} registered; pods {mode}", flush=True)
    try:
        while not kubelet.stopping.is_set():
            try:
                kubelet.step()
            except (ApiError, OSError, http.client.HTTPException) as e:
                print(f"API call failed: {e}", flush=True)
                time.sleep(0.2)
    finally:
        kubelet.stop()
        print("stopped", flush=True)


if __name__ == "__main__":
    main()
