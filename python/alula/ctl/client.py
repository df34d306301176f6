"""The control plane as the `alula` verbs reach it: the config file (flytekit's and flytectl's
`admin:` section), the `Remote` built from it, and the admin RPCs by name."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from alula.core.protojson import Json
from alula.remote import CA_CERT_ENV, ENDPOINT_ENV, INSECURE_ENV, Remote

CONFIG_ENV = "FLYTECTL_CONFIG"
DEFAULT_CONFIG = Path("~/.flyte/config.yaml")


def config_path(explicit: str | None) -> Path:
    """`--config`, else `$FLYTECTL_CONFIG`, else `~/.flyte/config.yaml` (flytectl's and
    flytekit's default: one file configures all three clients)."""
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).expanduser()


def read_config(path: Path) -> dict[str, dict[str, str]]:
    """The two-level `section: {key: value}` part of a flytekit config (all `alula` needs of
    it; read without a YAML library, so the CLI works with none installed)."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.strip().partition(":")
        value = value.strip().strip("'\"")
        if not raw[0].isspace():
            current = sections.setdefault(key, {})
        elif current is not None and raw.startswith(("  ", "\t")) and raw[2:3] not in (" ",):
            current[key] = value
    return sections


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() in ("true", "1", "yes")


def remote(args: argparse.Namespace) -> Remote:
    """A client of the endpoint `--endpoint` names, else `$ALULA_ENDPOINT`, else the config's
    `admin.endpoint`; TLS and credentials from the variables `Remote` reads, else the config."""
    endpoint: str | None = getattr(args, "endpoint", None)
    insecure: bool | None = None
    ca_cert: str | None = None
    client_id: str | None = None
    secret: str | None = None
    path = config_path(getattr(args, "config", None))
    if path.is_file() and not (endpoint or os.environ.get(ENDPOINT_ENV)):
        admin = read_config(path).get("admin", {})
        endpoint = admin.get("endpoint") or None
        if INSECURE_ENV not in os.environ:
            insecure = _flag(admin.get("insecure"))
        if CA_CERT_ENV not in os.environ:
            ca_cert = admin.get("caCertFilePath") or None
        if admin.get("authType") == "ClientSecret" and admin.get("clientId"):
            client_id = admin["clientId"]
            location = admin.get("clientSecretLocation")
            if location:
                secret = Path(location).expanduser().read_text().strip()
    elif getattr(args, "config", None) and not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    if endpoint:
        endpoint = endpoint.removeprefix("dns:///")
    return Remote(
        endpoint,
        getattr(args, "project", None) or "flytesnacks",
        getattr(args, "domain", None) or "development",
        insecure=insecure,
        ca_cert=ca_cert,
        client_id=client_id,
        client_secret=secret,
    )


def call(client: Remote, rpc: str, request: Json) -> Json:
    """One RPC of `alula.rpcs.RPCS` by name (see `Remote.call`)."""
    return client.call(rpc, request)


def execution_id(client: Remote, name: str) -> Json:
    """An execution id from a bare name (in `-p/-d`) or `project:domain:name`."""
    parts = name.split(":")
    if len(parts) == 3:
        return {"project": parts[0], "domain": parts[1], "name": parts[2]}
    return {"project": client.project, "domain": client.domain, "name": name}


def identifier(client: Remote, kind: str, name: str, version: str = "") -> Json:
    out: dict[str, Any] = {
        "resourceType": kind,
        "project": client.project,
        "domain": client.domain,
        "name": name,
    }
    if version:
        out["version"] = version
    return out
