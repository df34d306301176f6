"""`alula start`: the whole control plane on this machine in one command — admin (FlyteAdmin's
API, gRPC and HTTP), propeller (runs tasks as local processes, Alula's tasks on warm Python
workers) and storage (a local folder with a SQLite database) — until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def add_parser(commands: Any) -> None:
    start = commands.add_parser(
        "start", help="run admin + propeller + storage on this machine until Ctrl-C"
    )
    start.add_argument(
        "--data", default=None, help="storage folder (default: $ALULA_STORAGE_ROOT or ./alula-data)"
    )
    start.add_argument("--grpc-port", type=int, default=None, help="default 8089")
    start.add_argument("--http-port", type=int, default=None, help="default 8088")
    start.add_argument("--config", default=None, help="a TOML file of alula-server settings")
    start.add_argument(
        "--workers", type=int, default=None, help="warm Python workers per code bundle (default 2)"
    )
    start.add_argument(
        "--host",
        default=None,
        help="address to listen on (default 127.0.0.1); another needs --auth or --insecure-no-auth",
    )
    start.add_argument(
        "--auth",
        action="store_true",
        help="turn the built-in authorization server on; creates client alula-admin (role admin)"
        " and writes a flytekit config using it",
    )
    start.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve without authentication on a non-loopback --host anyway",
    )
    start.add_argument("--tls-cert", default=None, help="PEM certificate chain: serve TLS")
    start.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    start.add_argument(
        "--tls-ca",
        default=None,
        help="the CA clients should trust, for the written configs (default: --tls-cert)",
    )
    start.set_defaults(run=run)


def _client_endpoint(grpc: str) -> str:
    """The gRPC address clients dial: a wildcard bind is reached on this machine's loopback."""
    host, _, port = grpc.rpartition(":")
    if host in ("0.0.0.0", "[::]"):
        host = "127.0.0.1" if host == "0.0.0.0" else "[::1]"
    return f"{host}:{port}"


def _client_config(
    grpc: str,
    console: str,
    ca_cert: str | None = None,
    client_id: str | None = None,
    secret_file: str | None = None,
) -> str:
    """flytekit's config: the admin endpoint (TLS: `insecure: false` and the CA to trust;
    authentication: the client and the file holding its secret), and the console's address,
    which flytekit uses for the execution links `pyflyte run --remote` prints (without it they
    point at the gRPC port)."""
    lines = ["admin:", f"  endpoint: dns:///{grpc}"]
    if ca_cert:
        lines += ["  insecure: false", f"  caCertFilePath: {ca_cert}"]
    else:
        lines.append("  insecure: true")
    if client_id and secret_file:
        lines += [
            "  authType: ClientSecret",
            f"  clientId: {client_id}",
            f"  clientSecretLocation: {secret_file}",
        ]
    lines += ["console:", f"  endpoint: {console}"]
    return "\n".join(lines) + "\n"


def _client_env(
    grpc: str, ca_cert: str | None, client_id: str | None, secret_file: str | None
) -> str:
    """The variables Alula's own client (`alula.remote.Remote`, `alula run --remote`) reads."""
    lines = [f"ALULA_ENDPOINT={grpc}"]
    if client_id and secret_file:
        lines += [f"ALULA_CLIENT_ID={client_id}", f"ALULA_CLIENT_SECRET_FILE={secret_file}"]
    if ca_cert:
        lines.append(f"ALULA_CA_CERT={ca_cert}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from alula import _bridge

    overrides = {
        "ALULA_STORAGE_ROOT": args.data,
        "ALULA_GRPC_PORT": args.grpc_port,
        "ALULA_HTTP_PORT": args.http_port,
        "ALULA_WARM_WORKERS": args.workers,
        "ALULA_HOST": args.host,
        "ALULA_TLS_CERT": args.tls_cert,
        "ALULA_TLS_KEY": args.tls_key,
        "ALULA_AUTH": "builtin" if args.auth else None,
        "ALULA_INSECURE_NO_AUTH": "1" if args.insecure_no_auth else None,
    }
    for key, value in overrides.items():
        if value is not None:
            os.environ[key] = str(value)
    # Tasks run with this Python's tools (alula-execute, pyflyte-execute if installed) first on
    # their PATH, so the environment that runs `alula start` is the one that runs the tasks.
    bin_dir = str(Path(sys.executable).parent)
    task_path = os.environ.get("ALULA_TASK_PATH")
    os.environ["ALULA_TASK_PATH"] = f"{bin_dir}:{task_path}" if task_path else bin_dir

    def ready(info: dict[str, str]) -> None:
        root = Path(info["storage_root"])
        config = root / "flytekit-config.yaml"
        env_file = root / "alula-client.env"
        # The server's own idea of where browsers reach it (its setting, or the bound address
        # with a wildcard bind made loopback).
        console = info["public_http_url"].rstrip("/")
        grpc = _client_endpoint(info["grpc"])
        ca_cert = (args.tls_ca or info.get("tls_cert") or "") or None
        if ca_cert:
            ca_cert = str(Path(ca_cert).resolve())
        client_id = info.get("client_id") or None
        secret_file = info.get("client_secret_file") or None
        config.write_text(_client_config(grpc, console, ca_cert, client_id, secret_file))
        env_file.write_text(_client_env(grpc, ca_cert, client_id, secret_file))
        scheme = "https" if info.get("tls_cert") else "http"
        auth = info.get("auth", "off")
        print(
            f"Alula is running.\n"
            f"  gRPC endpoint  {info['grpc']}   (ALULA_ENDPOINT={grpc})\n"
            f"  HTTP           {scheme}://{info['http']}\n"
            f"  console        {console}/console\n"
            f"  storage        {info['storage_root']}  (database: {info['database']})\n"
            f"  auth           {auth}"
            + (f" (client {client_id}, secret in {secret_file})" if client_id else "")
            + "\n"
            + (f"  TLS            CA {ca_cert}\n" if ca_cert else "")
            + f"  flytekit       pyflyte --config {config} run --remote ...\n"
            f"  alula client   set -a; . {env_file}; set +a\n"
            f"Stop with Ctrl-C.",
            flush=True,
        )

    try:
        _bridge.serve(["--config", args.config] if args.config else [], ready)
    except KeyboardInterrupt:
        pass
    except RuntimeError as e:
        print(f"alula start: {e}", file=sys.stderr)
        return 1
    print("Alula stopped.", flush=True)
    return 0
