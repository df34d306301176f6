#!/usr/bin/env python3
"""A kubelet that runs pods as local processes, for tests against a real kube-apiserver
(../shared/tools/kube-apiserver) without a container runtime.

It registers node NODE (default `alula-local-1`, labelled `alula/local=true`, so that only pods
selecting that label land on it: the tools' `fake_kubelet.py` keeps `fake-node-1`), heartbeats it,
watches the pods bound to it with the label `app.kubernetes.io/managed-by=alula` (one list, then
a watch; a re-list only when the watch expires), and for each such pod:

- sets it up as `pod_runtime.py` describes: a folder of its own under WORK, per-container HOME and
  TMPDIR, an environment from the pod spec only, volumes as folders whose `mountPath`s are
  rewritten in the containers' command, args and env (the image is ignored: its commands are
  IMAGE_PATH's); a missing secret or config map leaves the pod Pending with
  `CreateContainerConfigError`, tried again every few seconds, as a kubelet does;
- runs its `initContainers` one after another, then all its `containers` at once, each as a local
  process in its own process group with output in `<pod folder>/<container>.log`;
- reports the phase as Kubernetes does (Pending during init; Running; Succeeded when every
  container exited 0, else Failed; a failed init container fails the pod), with per-container
  statuses (`terminated`: exit code, the termination message file or, for
  `FallbackToLogsOnError`, the log tail), and writes `<pod folder>/<container>.json` with the exit
  code, the peak resident memory (`maxRssBytes`, from wait4), argv and environment when a
  container ends: how tests check memory use and isolation;
- kills the process groups when the pod is deleted, and completes the deletion (what a kubelet
  does once the containers are gone).

With SIMULATE=1 nothing is run: each pod is reported Succeeded (exit 0) as soon as it is bound,
which is what a task without outputs needs (propeller reads no `outputs.pb` then). Scale
benchmarks use it: thousands of Python processes would measure the machine, not the system.
Status updates then go through a few connections in parallel.

Standard library only. Settings from the environment: KUBECONFIG (server, CA data and bearer
token are read from it; default: the one up.sh writes), NODE, WORK, NAMESPACE (default: all),
SIMULATE, START_LOG (a file that gets `<uid> <namespace>/<name>` for every pod started: how
tests count starts), CAPACITY (the node's, default `cpu=16,memory=64Gi,pods=110`), IMAGE_PATH
(the folder of the containers' commands; default: this interpreter's).
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
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pod_runtime import ConfigError, Container, PodSetup, default_image_path  # noqa: E402

SELECTOR = "app.kubernetes.io/managed-by=alula"
NODE_LABEL = ("alula/local", "true")
TERM_GRACE_S = 5.0
HEARTBEAT_S = 10.0
# The API server ends a watch after this; we then watch again from where it stopped.
WATCH_TIMEOUT_S = 240
# How often running processes are checked for exit (a local `poll`, no API call).
REAP_INTERVAL_S = 0.1
SIMULATE_CONNECTIONS = 4
# How often a pod whose setup failed (CreateContainerConfigError) is tried again.
CONFIG_RETRY_S = 2.0


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


def container_status(
    spec: dict[str, Any], state: dict[str, Any], *, started: bool = False
) -> dict[str, Any]:
    return {
        "name": spec["name"],
        "ready": "running" in state,
        "restartCount": 0,
        "image": spec.get("image", ""),
        "imageID": "local",
        "started": started,
        "state": state,
    }


def kill_group(c: Container) -> None:
    """SIGTERM to the container's process group, SIGKILL after the grace period; reaped."""
    assert c.proc is not None
    try:
        os.killpg(c.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + TERM_GRACE_S
        while not c.reap(now()):
            if time.monotonic() > deadline:
                os.killpg(c.proc.pid, signal.SIGKILL)
                os.waitpid(c.proc.pid, 0)
                break
            time.sleep(0.05)
    except (ProcessLookupError, ChildProcessError):
        pass


class PodRun:
    """One pod's containers as they run, and the pod status they make."""

    def __init__(
        self,
        pod: dict[str, Any],
        folder: Path,
        inits: list[Container],
        mains: list[Container],
        started: str,
    ) -> None:
        self.pod, self.folder, self.inits, self.mains = pod, folder, inits, mains
        self.started = started

    @staticmethod
    def state(c: Container, waiting: str) -> dict[str, Any]:
        if c.exit_code is not None:
            terminated: dict[str, Any] = {
                "exitCode": c.exit_code,
                "reason": c.extra.get("reason") or ("Completed" if c.exit_code == 0 else "Error"),
                "startedAt": c.started_at,
                "finishedAt": c.finished_at,
            }
            if message := c.message():
                terminated["message"] = message
            return {"terminated": terminated}
        if c.proc is not None:
            return {"running": {"startedAt": c.started_at}}
        return {"waiting": {"reason": waiting}}

    def status(self, done: bool) -> dict[str, Any]:
        initialized = all(c.exit_code == 0 for c in self.inits)
        if not done:
            phase = "Running" if initialized else "Pending"
        elif initialized and all(c.exit_code == 0 for c in self.mains):
            phase = "Succeeded"
        else:
            phase = "Failed"
        ready = phase == "Running" and all(c.exit_code is None for c in self.mains)
        t = now()
        bool_s = {True: "True", False: "False"}
        return {
            "phase": phase,
            "startTime": self.started,
            "hostIP": "127.0.0.1",
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "conditions": [
                {"type": "Initialized", "status": bool_s[initialized], "lastTransitionTime": t},
                {"type": "Ready", "status": bool_s[ready], "lastTransitionTime": t},
                {"type": "ContainersReady", "status": bool_s[ready], "lastTransitionTime": t},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": self.started},
            ],
            "initContainerStatuses": [
                container_status(
                    c.spec, self.state(c, "PodInitializing"), started=c.proc is not None
                )
                for c in self.inits
            ]
            or None,
            "containerStatuses": [
                container_status(
                    c.spec,
                    self.state(c, "PodInitializing"),
                    started=c.proc is not None and c.exit_code is None,
                )
                for c in self.mains
            ],
        }


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
        image_path: str | None = None,
    ) -> None:
        self.api, self.node, self.work, self.namespace = api, node, work, namespace
        self.image_path = image_path or default_image_path()
        self.simulate, self.start_log = simulate, start_log
        self.capacity = capacity or parse_capacity("cpu=16,memory=64Gi,pods=110")
        # uid -> the pod as last seen
        self.pods: dict[str, dict[str, Any]] = {}
        # uid -> what runs of the pod
        self.running: dict[str, PodRun] = {}
        # uid -> when to try again to set up a pod that could not be (a missing secret ...)
        self.retry_at: dict[str, float] = {}
        # uids started (whatever became of them): a pod runs once
        self.started: set[str] = set()
        # uids whose deletion we completed
        self.deleted: set[str] = set()
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.stopping = threading.Event()
        self.last_heartbeat = 0.0
        # Where kubelet_logs.py serves containers' logs (advertised in the node status).
        self.log_port: int | None = None
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
        if self.log_port is not None:
            # Where kube-apiserver proxies `pods/<name>/log` to.
            status["addresses"] = [{"type": "InternalIP", "address": "127.0.0.1"}]
            status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": self.log_port}}
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
            self.kill(uid)
            return
        self.pods[uid] = pod
        if m.get("deletionTimestamp"):
            self.kill(uid)  # whatever runs, and any retry of its setup
            if uid not in self.deleted:
                self.deleted.add(uid)
                path = f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}"
                body = {"gracePeriodSeconds": 0}
                self.call_later(lambda: self.api("DELETE", path, body, "application/json"))
            return
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Pending" and uid not in self.started and uid not in self.retry_at:
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
        if self.simulate:
            self.record_start(pod)
            t = now()
            self.call_later(lambda: self.finish_simulated(pod, t))
            return
        m = pod["metadata"]
        folder = self.work / f"{m['namespace']}-{m['name']}-{m['uid'][:8]}"
        folder.mkdir(parents=True, exist_ok=True)
        setup = PodSetup(self.api, pod, folder, self.image_path)
        try:
            volumes = setup.volumes()
            inits = [setup.container(c, volumes) for c in pod["spec"].get("initContainers") or []]
            mains = [setup.container(c, volumes) for c in pod["spec"]["containers"]]
        except ConfigError as e:
            # As a kubelet: the pod waits (the plugin decides how long is too long).
            print(f"{m['name']}: CreateContainerConfigError: {e}", flush=True)
            self.retry_at[m["uid"]] = time.monotonic() + CONFIG_RETRY_S
            waiting = {"reason": "CreateContainerConfigError", "message": str(e)}
            self.status(
                pod,
                {
                    "phase": "Pending",
                    "containerStatuses": [
                        container_status(c, {"waiting": waiting}) for c in pod["spec"]["containers"]
                    ],
                },
            )
            return
        self.retry_at.pop(m["uid"], None)
        self.record_start(pod)
        run = PodRun(pod, folder, inits, mains, now())
        self.running[m["uid"]] = run
        self.advance(run)

    def advance(self, run: PodRun) -> None:
        """Starts what comes next (the next init container, or all the containers) once what
        runs has ended, and reports the pod; finishes it when everything has ended."""
        m = run.pod["metadata"]
        t = now()
        changed = False
        for c in run.inits + run.mains:
            if c.proc is not None and c.exit_code is None and c.reap(t):
                changed = True
                (run.folder / f"{c.name}.json").write_text(json.dumps(c.record(), indent=1))
                print(f"{m['name']}/{c.name}: exit {c.exit_code}", flush=True)
        init_failed = any(c.exit_code not in (None, 0) for c in run.inits)
        pending_init = next((c for c in run.inits if c.exit_code != 0), None)
        starting: list[Container] = []
        if not init_failed and pending_init is not None and not pending_init.started_at:
            starting = [pending_init]
        elif not init_failed and pending_init is None and not run.mains[0].started_at:
            starting = run.mains
        for c in starting:
            c.start(t)
            pid = c.proc.pid if c.proc is not None else None
            print(f"{m['name']}/{c.name}: pid {pid}: {c.argv}", flush=True)
            if c.exit_code is not None:  # it could not start
                (run.folder / f"{c.name}.json").write_text(json.dumps(c.record(), indent=1))
            changed = True
        if starting:  # a container that could not start ends the init or the pod
            init_failed = any(c.exit_code not in (None, 0) for c in run.inits)
        done = init_failed or all(c.exit_code is not None for c in run.mains)
        if done:
            del self.running[m["uid"]]
            for c in run.inits + run.mains:  # the init failed: the rest never ran
                if c.proc is not None and c.exit_code is None:
                    kill_group(c)
        if changed or done:
            self.status(run.pod, run.status(done))

    def finish_simulated(self, pod: dict[str, Any], started: str) -> None:
        container = pod["spec"]["containers"][0]
        terminated = {
            "exitCode": 0,
            "reason": "Completed",
            "startedAt": started,
            "finishedAt": now(),
        }
        self.status(
            pod,
            {
                "phase": "Succeeded",
                "startTime": started,
                "containerStatuses": [container_status(container, {"terminated": terminated})],
            },
        )

    def reap(self) -> None:
        """Moves every running pod along (exits reaped, next containers started)."""
        for run in list(self.running.values()):
            self.advance(run)
        due = [u for u, t in self.retry_at.items() if t <= time.monotonic()]
        for uid in due:
            del self.retry_at[uid]
            if uid in self.pods:
                self.start(self.pods[uid])

    def kill(self, uid: str) -> None:
        self.retry_at.pop(uid, None)
        run = self.running.pop(uid, None)
        if run is None:
            return
        for c in run.inits + run.mains:
            if c.proc is not None and c.exit_code is None:
                kill_group(c)
                print(f"killed {run.pod['metadata']['name']}/{c.name}", flush=True)

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
        image_path=os.environ.get("IMAGE_PATH"),
    )
    # A flag rather than an exception: one raised in the middle of an API call could be lost.
    signal.signal(signal.SIGTERM, lambda *_: kubelet.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: kubelet.stopping.set())
    if not kubelet.simulate:
        import kubelet_logs

        kubelet.log_port = kubelet_logs.start(work).server_address[1]
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
