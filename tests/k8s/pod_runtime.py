"""How `local_kubelet.py` runs one pod without a container runtime: what stands in for each
container's file system, environment and volumes, and the processes it runs.

Isolation is by construction, not by a kernel: a pod gets an empty folder of its own
(`<WORK>/<namespace>-<name>-<uid prefix>/`) and each of its containers a sub-folder (its working
directory, with `home/` as HOME and `tmp/` as TMPDIR). A container's environment is built from the
pod spec alone (`env`, `envFrom`, the downward API ...) on top of the "image": PATH (IMAGE_PATH,
where python, pyflyte-execute and alula-execute are) and LANG. Nothing of the kubelet's own
environment reaches it.

Volumes are folders under `<pod folder>/volumes/` (an `emptyDir` is shared by the pod's
containers; `secret`, `configMap`, `downwardAPI` and `projected` ones, a service account token
included, are written as files). Since a process cannot see a folder at another path, each
container's `volumeMounts` are applied by rewriting: wherever a `mountPath` (or `/root`, the image's
home, or the `terminationMessagePath`) appears as a path prefix in the container's command, args or
env values, it becomes the local folder. Paths a container makes up at run time are not rewritten:
a task must take its paths from its arguments or environment, as Flyte's do.
"""

from __future__ import annotations

import base64
import json
import os
import posixpath
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The stand-in for the image's home folder (flytekit's images use /root: `--dest-dir /root`).
IMAGE_HOME = "/root"
DEFAULT_TERMINATION_PATH = "/dev/termination-log"
# Where Kubernetes mounts the service account's token, CA and namespace: clients' in-cluster
# configuration reads this fixed path, which no rewriting reaches. A container that has it gets
# KUBECONFIG instead, naming a kubeconfig made of the same token and CA (clients fall back to it).
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# What FallbackToLogsOnError keeps of the log (the kubelet's: 80 lines, 2048 bytes).
LOG_TAIL_LINES, LOG_TAIL_BYTES = 80, 2048


class ConfigError(Exception):
    """A container cannot be set up yet (a missing secret or config map): Kubernetes reports
    `CreateContainerConfigError` and tries again."""


# (method, path, body) -> response, the kubelet's API client.
ApiCall = Callable[..., Any]


def parse_quantity(value: str) -> float:
    """A Kubernetes quantity (`512Mi`, `500m`, `1.5`, `2G`) as a number of units."""
    m = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value).strip())
    if not m:
        raise ValueError(f"not a quantity: {value!r}")
    number, suffix = float(m.group(1)), m.group(2)
    binary = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
    decimal = {"": 0, "k": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
    if suffix == "m":
        return number / 1000
    if suffix in binary:
        return number * 1024 ** binary[suffix]
    if suffix in decimal:
        return number * 1000 ** decimal[suffix]
    raise ValueError(f"unknown quantity suffix in {value!r}")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: defined names are replaced, `$$` is a `$`, anything else
    is left as written."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", sub, text)


def rewrite(text: str, mapping: list[tuple[str, str]]) -> str:
    """Replaces each mapped path prefix where it starts a path in `text` (not inside another
    path or word): `/data/x` -> `<local>/x`, `--dir=/data` -> `--dir=<local>`."""
    for prefix, local in mapping:
        pattern = r"(?<![\w./-])" + re.escape(prefix.rstrip("/")) + r"(?=/|$|[^\w.-])"
        text = re.sub(pattern, lambda _, to=local: to, text)
    return text


@dataclass
class Container:
    """One container's process and what is reported of it."""

    spec: dict[str, Any]
    folder: Path
    argv: list[str]
    env: dict[str, str]
    termination_file: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    started_at: str = ""
    exit_code: int | None = None
    max_rss_bytes: int = 0
    finished_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    def start(self, started_at: str) -> None:
        self.started_at = started_at
        with self.log.open("wb") as log:
            try:
                self.proc = subprocess.Popen(
                    self.argv,
                    cwd=self.folder,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as e:
                log.write(f"cannot start {self.argv[:1]}: {e}\n".encode())
                self.exit_code, self.finished_at = 127, started_at
                self.extra["reason"] = "StartError"

    def reap(self, finished_at: str) -> bool:
        """Whether the process has exited (its exit code and peak memory recorded)."""
        if self.exit_code is not None:
            return True
        assert self.proc is not None
        # wait4 rather than Popen.poll: it also gives the peak resident set of the process and
        # of the children it waited for (pyflyte-fast-execute runs pyflyte-execute as one).
        pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
        if pid == 0:
            return False
        code = os.waitstatus_to_exitcode(status)
        self.proc.returncode = code
        # killed by a signal: a container runtime reports 128 + the signal
        self.exit_code = code if code >= 0 else 128 - code
        self.max_rss_bytes = usage.ru_maxrss * 1024
        self.finished_at = finished_at
        return True

    def message(self) -> str:
        """The termination message: the file the container wrote, else (FallbackToLogsOnError,
        on failure) its log's tail."""
        if self.termination_file.exists():
            text = self.termination_file.read_bytes()[-4096:].decode(errors="replace")
            if text.strip():
                return text
        if self.exit_code and self.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            lines = self.log.read_bytes().splitlines()[-LOG_TAIL_LINES:]
            return b"\n".join(lines)[-LOG_TAIL_BYTES:].decode(errors="replace")
        return ""

    def record(self) -> dict[str, Any]:
        """What the kubelet writes to `<pod folder>/<container>.json` when the container ends."""
        return {
            "name": self.name,
            "exitCode": self.exit_code,
            "maxRssBytes": self.max_rss_bytes,
            "argv": self.argv,
            "env": self.env,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
        }


class PodSetup:
    """Turns a pod spec into folders, files and the containers' argv and environment."""

    def __init__(self, api: ApiCall, pod: dict[str, Any], folder: Path, image_path: str) -> None:
        self.api, self.pod, self.folder, self.image_path = api, pod, folder, image_path
        self.meta, self.spec = pod["metadata"], pod["spec"]
        self.namespace = self.meta["namespace"]

    # --- reading the API's objects ---

    def _object(self, kind: str, name: str, optional: bool) -> dict[str, Any] | None:
        found = self.api("GET", f"/api/v1/namespaces/{self.namespace}/{kind}/{name}")
        if found is None and not optional:
            raise ConfigError(f'{kind[:-1]} "{name}" not found')
        return found

    def _data(self, kind: str, name: str, optional: bool) -> dict[str, str] | None:
        """A secret's (decoded) or config map's data."""
        obj = self._object(kind, name, optional)
        if obj is None:
            return None
        if kind == "secrets":
            return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
        data = dict(obj.get("data") or {})
        for k, v in (obj.get("binaryData") or {}).items():
            data[k] = base64.b64decode(v).decode(errors="replace")
        return data

    def _key(self, kind: str, ref: dict[str, Any]) -> str | None:
        optional = bool(ref.get("optional"))
        data = self._data(kind, ref["name"], optional)
        if data is None or ref["key"] not in data:
            if optional:
                return None
            raise ConfigError(f"couldn't find key {ref['key']} in {kind[:-1]} {ref['name']}")
        return data[ref["key"]]

    def field(self, path: str) -> str:
        """A downward API `fieldRef.fieldPath`."""
        m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
        if m:
            return str((self.meta.get(m.group(1)) or {}).get(m.group(2), ""))
        if path in ("metadata.labels", "metadata.annotations"):
            items = sorted((self.meta.get(path.split(".")[1]) or {}).items())
            return "\n".join(f"{k}={json.dumps(v)}" for k, v in items)
        values = {
            "metadata.name": self.meta["name"],
            "metadata.namespace": self.namespace,
            "metadata.uid": self.meta["uid"],
            "spec.nodeName": self.spec.get("nodeName", ""),
            "spec.serviceAccountName": self.spec.get("serviceAccountName", ""),
            "status.podIP": "127.0.0.1",
            "status.hostIP": "127.0.0.1",
        }
        if path not in values:
            raise ConfigError(f"unsupported fieldPath {path}")
        return str(values[path])

    def resource_field(self, container: dict[str, Any], ref: dict[str, Any]) -> str:
        kind, name = ref["resource"].split(".", 1)
        resources = container.get("resources") or {}
        value = (resources.get(kind) or {}).get(name)
        if value is None:  # no limit: the node's allocatable (as Kubernetes reports it)
            value = {"cpu": "16", "memory": "64Gi"}.get(name, "0")
        divisor = parse_quantity(ref.get("divisor") or "1")
        amount = parse_quantity(value) / divisor
        return str(int(-(-amount // 1)))  # rounded up, as Kubernetes does

    # --- volumes ---

    def volumes(self) -> dict[str, Path]:
        """Creates every volume's folder (and files); name -> folder."""
        made: dict[str, Path] = {}
        for volume in self.spec.get("volumes") or []:
            name = volume["name"]
            if "hostPath" in volume:
                made[name] = Path(volume["hostPath"]["path"])
                continue
            target = self.folder / "volumes" / name
            target.mkdir(parents=True, exist_ok=True)
            if "secret" in volume:
                source = volume["secret"]
                self._write_keyed(target, "secrets", source.get("secretName", ""), source)
            elif "configMap" in volume:
                self._write_keyed(
                    target, "configmaps", volume["configMap"]["name"], volume["configMap"]
                )
            elif "downwardAPI" in volume:
                self._write_fields(target, volume["downwardAPI"].get("items") or [])
            elif "projected" in volume:
                for source in volume["projected"].get("sources") or []:
                    self._write_projection(target, source)
            elif "emptyDir" not in volume:
                raise ConfigError(
                    f"volume {name}: only emptyDir, hostPath, secret, configMap, "
                    "downwardAPI and projected volumes are supported"
                )
            made[name] = target
        return made

    def _write_keyed(self, target: Path, kind: str, name: str, source: dict[str, Any]) -> None:
        data = self._data(kind, name, bool(source.get("optional")))
        if data is None:
            return
        items = source.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            if item["key"] not in data:
                raise ConfigError(f"couldn't find key {item['key']} in {kind[:-1]} {name}")
            path = target / item["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(data[item["key"]])

    def _write_fields(self, target: Path, items: list[dict[str, Any]]) -> None:
        for item in items:
            path = target / item["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            if "fieldRef" in item:
                path.write_text(self.field(item["fieldRef"]["fieldPath"]))
            else:
                container = next(
                    c
                    for c in self.spec["containers"]
                    if c["name"] == item["resourceFieldRef"].get("containerName")
                )
                path.write_text(self.resource_field(container, item["resourceFieldRef"]))

    def _write_projection(self, target: Path, source: dict[str, Any]) -> None:
        if "secret" in source:
            self._write_keyed(target, "secrets", source["secret"]["name"], source["secret"])
        elif "configMap" in source:
            self._write_keyed(
                target, "configmaps", source["configMap"]["name"], source["configMap"]
            )
        elif "downwardAPI" in source:
            self._write_fields(target, source["downwardAPI"].get("items") or [])
        elif "serviceAccountToken" in source:
            token = source["serviceAccountToken"]
            account = self.spec.get("serviceAccountName") or "default"
            request = {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {
                    "audiences": [token["audience"]] if token.get("audience") else None,
                    "expirationSeconds": token.get("expirationSeconds", 3600),
                    "boundObjectRef": {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": self.meta["name"],
                        "uid": self.meta["uid"],
                    },
                },
            }
            path = f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{account}/token"
            answer = self.api("POST", path, request, "application/json")
            if not answer:
                raise ConfigError(f"no token for service account {account}")
            (target / token["path"]).write_text(answer["status"]["token"])

    # --- containers ---

    def server(self) -> str:
        return str(getattr(self.api, "server", "https://127.0.0.1:6443"))

    def kubeconfig(self, account: Path, folder: Path) -> Path:
        """A kubeconfig for the mounted service account (see SERVICE_ACCOUNT_DIR)."""
        ca = base64.b64encode((account / "ca.crt").read_bytes()).decode()
        token = (account / "token").read_text().strip()
        namespace = (account / "namespace").read_text().strip()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "in-cluster",
                    "cluster": {"server": self.server(), "certificate-authority-data": ca},
                }
            ],
            "users": [{"name": "pod", "user": {"token": token}}],
            "contexts": [
                {
                    "name": "pod",
                    "context": {"cluster": "in-cluster", "user": "pod", "namespace": namespace},
                }
            ],
            "current-context": "pod",
        }
        path = folder / "kubeconfig"
        path.write_text(json.dumps(config))  # JSON is YAML
        return path

    def env(self, container: dict[str, Any]) -> dict[str, str]:
        """What the pod spec sets in the container's environment: the service variables, then
        `envFrom`, then `env` (later wins; `$(VAR)` refers to what is set before)."""
        # What every pod gets: how to reach the API server.
        url = urllib.parse.urlsplit(self.server())
        env = {
            "KUBERNETES_SERVICE_HOST": url.hostname or "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(url.port or 443),
        }
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for kind, key in (("secrets", "secretRef"), ("configmaps", "configMapRef")):
                if key in source:
                    ref = source[key]
                    data = self._data(kind, ref["name"], bool(ref.get("optional"))) or {}
                    env |= {prefix + k: v for k, v in data.items()}
        for var in container.get("env") or []:
            value: str | None
            if "valueFrom" not in var:
                value = expand(var.get("value", ""), env)
            else:
                source = var["valueFrom"]
                if "secretKeyRef" in source:
                    value = self._key("secrets", source["secretKeyRef"])
                elif "configMapKeyRef" in source:
                    value = self._key("configmaps", source["configMapKeyRef"])
                elif "fieldRef" in source:
                    value = self.field(source["fieldRef"]["fieldPath"])
                elif "resourceFieldRef" in source:
                    value = self.resource_field(container, source["resourceFieldRef"])
                else:
                    raise ConfigError(f"env {var['name']}: unsupported valueFrom {source}")
            if value is not None:
                env[var["name"]] = value
        return env

    @staticmethod
    def mount_parents(root: Path, mapping: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Mappings for the folders that hold mounts: a task told a parent folder finds the
        mounts inside it at run time (Flyte's secrets: FLYTE_SECRETS_DEFAULT_DIR is
        `/etc/flyte/secrets`, each group a mount below it). Such a folder becomes one under
        `root` with a link per mount. Top-level folders (`/var`, `/etc`) are left alone: too
        much else is under them."""
        mounted = dict(mapping)
        parents: dict[str, str] = {}
        for path, local in mapping:
            parent = posixpath.dirname(path.rstrip("/"))
            if parent.count("/") < 2 or parent in mounted:
                continue
            link = root / path.strip("/")
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(local)
            parents[parent] = str(root / parent.strip("/"))
        return list(parents.items())

    def container(self, spec: dict[str, Any], volumes: dict[str, Path]) -> Container:
        """The container's folder, files, argv and environment (nothing started)."""
        folder = self.folder / spec["name"]
        home, tmp = folder / "home", folder / "tmp"
        for d in (home, tmp):
            d.mkdir(parents=True, exist_ok=True)
        termination = folder / "termination-log"
        mapping = [
            (IMAGE_HOME, str(home)),
            (spec.get("terminationMessagePath") or DEFAULT_TERMINATION_PATH, str(termination)),
        ]
        for mount in spec.get("volumeMounts") or []:
            if mount["name"] not in volumes:
                raise ConfigError(f"volume mount {mount['name']}: no such volume")
            local = volumes[mount["name"]] / mount.get("subPath", "")
            local.mkdir(parents=True, exist_ok=True)
            mapping.append((mount["mountPath"], str(local)))
        mapping += self.mount_parents(folder / "root", mapping)
        # Longest first: a mount inside another mount's path wins.
        mapping.sort(key=lambda m: len(m[0]), reverse=True)
        spec_env = self.env(spec)
        argv = [
            rewrite(expand(a, spec_env), mapping)
            for a in list(spec.get("command") or []) + list(spec.get("args") or [])
        ]
        # The image's variables, which the spec's override; only the spec's are rewritten (the
        # image's PATH is a real path of this machine).
        env = {
            "PATH": f"{self.image_path}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "HOSTNAME": self.meta["name"],
        }
        account = next((local for path, local in mapping if path == SERVICE_ACCOUNT_DIR), None)
        if account is not None:
            env["KUBECONFIG"] = str(self.kubeconfig(Path(account), folder))
        env |= {k: rewrite(v, mapping) for k, v in spec_env.items()}
        if not argv:
            raise ConfigError(f"container {spec['name']}: no command (images are not run)")
        workdir = folder
        if spec.get("workingDir"):
            mapped = rewrite(spec["workingDir"], mapping)
            workdir = Path(mapped) if mapped != spec["workingDir"] else folder
        return Container(spec, workdir, argv, env, termination, self.folder / f"{spec['name']}.log")


def default_image_path() -> str:
    """The folder with the image's commands: this interpreter's (the test venv's bin)."""
    return str(Path(sys.executable).parent)
