#!/usr/bin/env python3
"""A kubelet that runs pods as local processes, for tests against a real kube-apiserver
(/work/shared/tools/kube-apiserver) without a container runtime.

It registers node NODE (default `alula-local-1`, labelled `alula/local=true`, so that only pods
selecting that label land on it: the tools' `fake_kubelet.py` keeps `fake-node-1`), heartbeats it,
and for each pod bound to it with the label `app.kubernetes.io/managed-by=alula`:

- runs the first container's `command + args` (the image is ignored; a `--dest-dir` value
  becomes `.`) as a local process in its own process group, with this process's environment
  plus the container's `env`, in a fresh working folder under WORK (default: a temporary
  folder), output in `<folder>/log`;
- reports the pod Running, then Succeeded/Failed with the exit code in `containerStatuses`
  (`terminated`, the log tail as the message of a failure, as `FallbackToLogsOnError` would);
- kills the process group when the pod is deleted, and completes the deletion (what a kubelet
  does once the containers are gone).

Standard library only. Settings from the environment: KUBECONFIG (server, CA data and bearer
token are read from it; default: the one up.sh writes), NODE, WORK, NAMESPACE (default: all).
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

SELECTOR = "app.kubernetes.io/managed-by=alula"
NODE_LABEL = ("alula/local", "true")
TERM_GRACE_S = 5.0


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


class Api:
    def __init__(self, kubeconfig: str) -> None:
        self.server, ca, self.token = read_kubeconfig(kubeconfig)
        self.ctx = ssl.create_default_context(cadata=ca)

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        ctype: str = "application/merge-patch+json",
    ) -> Any:
        request = urllib.request.Request(
            self.server + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": "Bearer " + self.token,
                "Content-Type": ctype,
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, context=self.ctx, timeout=10) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as e:
            if e.code in (404, 409):
                return None
            raise


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Kubelet:
    def __init__(self, api: Api, node: str, work: Path, namespace: str | None) -> None:
        self.api, self.node, self.work, self.namespace = api, node, work, namespace
        # uid -> (process, working folder, start time)
        self.running: dict[str, tuple[subprocess.Popen[bytes], Path, str]] = {}
        # uids whose final status was reported
        self.done: set[str] = set()
        self.last_heartbeat = 0.0

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
        res = {"cpu": "16", "memory": "64Gi", "pods": "110"}
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
            "capacity": res,
            "allocatable": res,
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

    def pods(self) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode(
            {"fieldSelector": f"spec.nodeName={self.node}", "labelSelector": SELECTOR}
        )
        base = f"/api/v1/namespaces/{self.namespace}/pods" if self.namespace else "/api/v1/pods"
        listed = self.api("GET", f"{base}?{query}") or {"items": []}
        return list(listed["items"])

    def status(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        m = pod["metadata"]
        self.api(
            "PATCH",
            f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}/status",
            {"status": status},
        )

    def start(self, pod: dict[str, Any]) -> None:
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
        env.pop("KUBECONFIG", None)
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
        self.done.add(m["uid"])
        print(f"finished {m['name']}: exit {code}", flush=True)

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
        if time.monotonic() - self.last_heartbeat > 10:
            self.heartbeat()
        seen = set()
        for pod in self.pods():
            m, phase = pod["metadata"], (pod.get("status") or {}).get("phase")
            uid = m["uid"]
            seen.add(uid)
            if m.get("deletionTimestamp"):
                if uid in self.running:
                    self.kill(uid)
                self.api(
                    "DELETE",
                    f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}",
                    {"gracePeriodSeconds": 0},
                    "application/json",
                )
                continue
            if uid in self.running:
                proc, folder, started = self.running[uid]
                code = proc.poll()
                if code is not None:
                    del self.running[uid]
                    tail = ""
                    if code != 0:
                        tail = (folder / "log").read_bytes()[-2048:].decode(errors="replace")
                    if code < 0:  # killed by a signal: as a container runtime reports it
                        code = 128 - code
                    self.finish(pod, code, tail, "Completed" if code == 0 else "Error", started)
            elif phase == "Pending" and uid not in self.done:
                self.start(pod)
        # Pods gone without our seeing their deletion (deleted with grace 0).
        for uid in [u for u in self.running if u not in seen]:
            self.kill(uid)

    def stop(self) -> None:
        for uid in list(self.running):
            self.kill(uid)


def main() -> None:
    kubeconfig = os.environ.get("KUBECONFIG") or str(
        Path.home() / ".cache/alula-kube-apiserver/kubeconfig"
    )
    work = Path(os.environ.get("WORK") or tempfile.mkdtemp(prefix="local-kubelet-"))
    kubelet = Kubelet(
        Api(kubeconfig), os.environ.get("NODE", "alula-local-1"), work, os.environ.get("NAMESPACE")
    )
    stopping = []
    # A flag rather than an exception: one raised in the middle of an API call could be lost.
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    kubelet.register()
    print(f"node {kubelet.node} registered; pods run under {work}", flush=True)
    try:
        while not stopping:
            try:
                kubelet.step()
            except (urllib.error.URLError, OSError) as e:
                print(f"API call failed: {e}", flush=True)
            time.sleep(0.2)
    finally:
        kubelet.stop()
        print("stopped", flush=True)


if __name__ == "__main__":
    main()
