"""The kubelet's log endpoint for `local_kubelet.py`: what kube-apiserver proxies
`pods/<name>/log` to (`kubectl logs`, and Alula's log route for running pods).

kube-apiserver reaches a node's kubelet at `status.daemonEndpoints.kubeletEndpoint.Port` on the
node's address (its InternalIP), over HTTPS; without `--kubelet-certificate-authority` it does not
verify the kubelet's certificate, so a self-signed one (made with the `openssl` CLI in the
kubelet's work folder) serves. It asks for `GET /containerLogs/<namespace>/<pod>/<container>`,
which is answered from the file the local kubelet writes a container's output to:
`<WORK>/<namespace>-<pod>-<uid prefix>/<container>.log` (the newest such pod folder), streamed
in chunks. `tailLines` and `limitBytes` are honoured; `follow` is not (the log as it is now).

Standard library only (plus the `openssl` command).
"""

from __future__ import annotations

import http.server
import re
import shutil
import ssl
import subprocess
import threading
import urllib.parse
from pathlib import Path

CHUNK = 64 << 10
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 in `folder` (made once)."""
    cert, key = folder / "kubelet-logs.crt", folder / "kubelet-logs.key"
    if not (cert.exists() and key.exists()):
        if shutil.which("openssl") is None:
            raise RuntimeError("the kubelet's log endpoint needs the openssl command")
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                "-subj", "/CN=local-kubelet", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", str(key), "-out", str(cert),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
    return cert, key


def log_file(work: Path, namespace: str, pod: str, container: str) -> Path | None:
    """The log of `container` of the newest pod `namespace/pod` run under `work`."""
    if not all(_NAME.match(n) for n in (namespace, pod, container)):
        return None
    folders = [f for f in work.glob(f"{namespace}-{pod}-*") if f.is_dir()]
    # `<namespace>-<pod>-` may also begin the folders of pods whose names extend this one.
    folders = [
        f
        for f in folders
        if re.fullmatch(r"[0-9a-f-]{1,8}", f.name[len(namespace) + len(pod) + 2 :])
    ]
    for folder in sorted(folders, key=lambda f: f.stat().st_mtime, reverse=True):
        path = folder / f"{container}.log"
        if path.is_file():
            return path
    return None


class _Handler(http.server.BaseHTTPRequestHandler):
    work: Path

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        print(f"kubelet logs: {format % args}", flush=True)

    def do_GET(self) -> None:  # noqa: N802 - the base's name
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "containerLogs":
            self.send_error(404, "only /containerLogs/<namespace>/<pod>/<container> is served")
            return
        path = log_file(self.work, *parts[1:])
        if path is None:
            self.send_error(404, f"no log for {'/'.join(parts[1:])}")
            return
        query = urllib.parse.parse_qs(url.query)
        data_start = 0
        size = path.stat().st_size
        if "tailLines" in query:
            lines = int(query["tailLines"][0])
            text = path.read_bytes()
            kept = text.splitlines(keepends=True)[-lines:] if lines > 0 else []
            data_start = size - sum(len(line) for line in kept)
        end = size
        if "limitBytes" in query:
            end = min(size, data_start + int(query["limitBytes"][0]))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(end - data_start))
        self.end_headers()
        with path.open("rb") as f:
            f.seek(data_start)
            left = end - data_start
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)


def start(work: Path, host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    """Serves the logs of pods run under `work` on a free port of `host` (in a daemon thread);
    the port is `server.server_address[1]`."""
    cert, key = self_signed(work / ".kubelet-logs")
    handler = type("Handler", (_Handler,), {"work": work})
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, name="kubelet-logs", daemon=True).start()
    return server
