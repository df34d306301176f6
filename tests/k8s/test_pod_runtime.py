"""The test kubelet's pod setup (pod_runtime.py) without an API server: environments from the
pod spec alone, `valueFrom` and `envFrom`, volumes as folders with their mount paths rewritten,
and a container's exit code and peak memory."""

from __future__ import annotations

import base64
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pod_runtime import ConfigError, PodSetup, expand, parse_quantity, rewrite  # noqa: E402


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class FakeApi:
    """Answers GETs of secrets and config maps and token requests; records the calls."""

    def __init__(self, objects: dict[str, dict[str, Any]]) -> None:
        self.objects = objects
        self.calls: list[tuple[str, str]] = []

    def __call__(self, method: str, path: str, body: Any = None, ctype: str = "") -> Any:
        self.calls.append((method, path))
        if method == "POST" and path.endswith("/token"):
            return {"status": {"token": "a-bound-token"}}
        return self.objects.get(path)


def pod(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "p1",
            "namespace": "ns",
            "uid": "0123456789abcdef",
            "labels": {"team": "a"},
            "annotations": {"note": "x y"},
        },
        "spec": {"nodeName": "n1", "serviceAccountName": "runner", **spec},
    }


API = FakeApi(
    {
        "/api/v1/namespaces/ns/secrets/creds": {"data": {"USER": b64("u"), "PASS": b64("p")}},
        "/api/v1/namespaces/ns/configmaps/cfg": {"data": {"mode": "fast"}},
    }
)


def test_quantities_expansion_and_rewriting() -> None:
    assert parse_quantity("512Mi") == 512 * 2**20
    assert parse_quantity("500m") == 0.5
    assert parse_quantity("2G") == 2e9
    assert expand("$(A)/$(B) $$(A) $(MISSING)", {"A": "1"}) == "1/$(B) $(A) $(MISSING)"
    mapping = [("/data/in", "/w/in"), ("/data", "/w/d")]
    assert rewrite("/data/in/x", mapping) == "/w/in/x"
    assert rewrite("--dir=/data", mapping) == "--dir=/w/d"
    # Not a path prefix: left alone.
    assert rewrite("/database /x/data", mapping) == "/database /x/data"


def test_environment_comes_from_the_pod_spec_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALULA_STORAGE_ROOT", "/server/only")
    container = {
        "name": "main",
        "command": ["sh", "-c"],
        "args": ["cat /etc/creds/USER > $(OUT)/user"],
        "resources": {"limits": {"memory": "256Mi"}},
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
        "env": [
            {"name": "OUT", "value": "/scratch"},
            {"name": "NESTED", "value": "$(OUT)/deeper"},
            {"name": "USER_NAME", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "USER"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "TEAM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}},
            {
                "name": "MEM_MI",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
            {
                "name": "GONE",
                "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}},
            },
        ],
        "volumeMounts": [
            {"name": "scratch", "mountPath": "/scratch"},
            {"name": "creds", "mountPath": "/etc/creds"},
            {"name": "info", "mountPath": "/etc/info"},
            {"name": "token", "mountPath": "/var/run/secrets/tokens"},
        ],
    }
    volumes = [
        {"name": "scratch", "emptyDir": {}},
        {"name": "creds", "secret": {"secretName": "creds"}},
        {
            "name": "info",
            "downwardAPI": {
                "items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                ]
            },
        },
        {
            "name": "token",
            "projected": {"sources": [{"serviceAccountToken": {"path": "sa", "audience": "s3"}}]},
        },
    ]
    setup = PodSetup(API, pod(containers=[container], volumes=volumes), tmp_path, "/image/bin")
    made = setup.volumes()
    c = setup.container(container, made)
    scratch = tmp_path / "volumes" / "scratch"
    assert c.env["OUT"] == str(scratch)
    assert c.env["NESTED"] == f"{scratch}/deeper"
    assert c.env["USER_NAME"] == "u"
    assert c.env["CFG_mode"] == "fast"
    assert (c.env["POD"], c.env["UID"], c.env["IP"]) == ("p1", "0123456789abcdef", "127.0.0.1")
    assert (c.env["TEAM"], c.env["MEM_MI"]) == ("a", "256")
    assert "GONE" not in c.env and "ALULA_STORAGE_ROOT" not in c.env
    assert c.env["PATH"].startswith("/image/bin:")
    assert c.env["HOME"] == str(tmp_path / "main" / "home")
    assert c.env["TMPDIR"] == str(tmp_path / "main" / "tmp")
    assert c.argv == ["sh", "-c", f"cat {tmp_path}/volumes/creds/USER > {scratch}/user"]
    assert (tmp_path / "volumes/creds/PASS").read_text() == "p"
    assert (tmp_path / "volumes/info/labels").read_text() == 'team="a"'
    assert (tmp_path / "volumes/info/name").read_text() == "p1"
    assert (tmp_path / "volumes/token/sa").read_text() == "a-bound-token"
    assert ("POST", "/api/v1/namespaces/ns/serviceaccounts/runner/token") in API.calls

    c.start("now")
    deadline = time.monotonic() + 10
    while not c.reap("later"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert c.exit_code == 0, c.log.read_text()
    assert (scratch / "user").read_text() == "u"


def test_missing_secret_is_a_config_error(tmp_path: Path) -> None:
    container = {
        "name": "main",
        "command": ["true"],
        "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}],
    }
    setup = PodSetup(API, pod(containers=[container]), tmp_path, "/image/bin")
    with pytest.raises(ConfigError, match="absent"):
        setup.container(container, setup.volumes())


def test_exit_code_peak_memory_and_termination_message(tmp_path: Path) -> None:
    script = (
        "import os, sys; b = bytearray(64 * 2**20); b[::4096] = b'x' * len(b[::4096]); "
        "open(os.environ['MSG'], 'w').write('custom message'); sys.exit(3)"
    )
    container = {
        "name": "big",
        "command": ["python", "-c", script],
        "env": [{"name": "MSG", "value": "/dev/termination-log"}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    setup = PodSetup(API, pod(containers=[container]), tmp_path, str(Path(sys.executable).parent))
    c = setup.container(container, setup.volumes())
    c.start("now")
    deadline = time.monotonic() + 20
    while not c.reap("later"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert c.exit_code == 3
    assert 64 * 2**20 < c.max_rss_bytes < 512 * 2**20, c.max_rss_bytes
    assert c.message() == "custom message"
    assert os.path.basename(c.env["MSG"]) == "termination-log"


def test_a_folder_holding_mounts_is_rewritten_too(tmp_path: Path) -> None:
    """Flyte's secrets: the task is told the parent folder and finds each group's mount in it."""
    container = {
        "name": "main",
        "command": ["sh", "-c", 'cat "$FLYTE_SECRETS_DEFAULT_DIR/creds/USER"'],
        "env": [{"name": "FLYTE_SECRETS_DEFAULT_DIR", "value": "/etc/flyte/secrets"}],
        "volumeMounts": [{"name": "creds", "mountPath": "/etc/flyte/secrets/creds"}],
    }
    volumes = [{"name": "creds", "secret": {"secretName": "creds"}}]
    setup = PodSetup(API, pod(containers=[container], volumes=volumes), tmp_path, "/image/bin")
    c = setup.container(container, setup.volumes())
    secrets = Path(c.env["FLYTE_SECRETS_DEFAULT_DIR"])
    assert secrets == tmp_path / "main" / "root" / "etc/flyte/secrets"
    assert (secrets / "creds" / "USER").read_text() == "u"
