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
    start.set_defaults(run=run)


def _client_config(grpc: str, console: str) -> str:
    """flytekit's config: the admin endpoint, and the console's address, which flytekit uses for
    the execution links `pyflyte run --remote` prints (without it they point at the gRPC port)."""
    return f"admin:\n  endpoint: dns:///{grpc}\n  insecure: true\nconsole:\n  endpoint: {console}\n"


def run(args: argparse.Namespace) -> int:
    from alula import _native

    overrides = {
        "ALULA_STORAGE_ROOT": args.data,
        "ALULA_GRPC_PORT": args.grpc_port,
        "ALULA_HTTP_PORT": args.http_port,
        "ALULA_WARM_WORKERS": args.workers,
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
        config = Path(info["storage_root"]) / "flytekit-config.yaml"
        # The server's own idea of where browsers reach it (its setting, or the bound address
        # with a wildcard bind made loopback).
        console = info["public_http_url"].rstrip("/")
        config.write_text(_client_config(info["grpc"], console))
        print(
            f"Alula is running.\n"
            f"  gRPC endpoint  {info['grpc']}   (ALULA_ENDPOINT={info['grpc']})\n"
            f"  HTTP           http://{info['http']}\n"
            f"  console        {console}/console\n"
            f"  storage        {info['storage_root']}  (database: {info['database']})\n"
            f"  flytekit       pyflyte --config {config} run --remote ...\n"
            f"Stop with Ctrl-C.",
            flush=True,
        )

    try:
        _native.serve(["--config", args.config] if args.config else [], ready)
    except KeyboardInterrupt:
        pass
    except RuntimeError as e:
        print(f"alula start: {e}", file=sys.stderr)
        return 1
    print("Alula stopped.", flush=True)
    return 0
