"""`alula config init`: the client config, in flytekit's and flytectl's format, so `alula`,
`pyflyte` and `flytectl` all find the same control plane (default `~/.flyte/config.yaml`, where
they look; `$FLYTECTL_CONFIG` or `--file` elsewhere)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alula.ctl.client import config_path
from alula.ctl.literals import InputError


def render(args: argparse.Namespace) -> str:
    endpoint = args.endpoint or "127.0.0.1:8089"
    for prefix in ("dns:///", "grpc://"):
        endpoint = endpoint.removeprefix(prefix)
    lines = ["admin:", f"  endpoint: dns:///{endpoint}"]
    insecure = args.insecure or (
        endpoint.startswith(("127.", "localhost")) and not args.ca_cert and not args.secure
    )
    lines.append(f"  insecure: {'true' if insecure else 'false'}")
    if args.ca_cert:
        lines.append(f"  caCertFilePath: {Path(args.ca_cert).expanduser().resolve()}")
    if args.client_id or args.client_secret_file:
        if not (args.client_id and args.client_secret_file):
            raise InputError("--client-id and --client-secret-file go together")
        secret = Path(args.client_secret_file).expanduser().resolve()
        lines += [
            "  authType: ClientSecret",
            f"  clientId: {args.client_id}",
            f"  clientSecretLocation: {secret}",
        ]
    if args.console:
        lines += ["console:", f"  endpoint: {args.console.rstrip('/')}"]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    if args.insecure and (args.ca_cert or args.secure):
        raise InputError("--insecure contradicts --ca-cert / --secure")
    path = config_path(args.file)
    text = render(args)
    if path.exists() and not args.force:
        print(f"alula config init: {path} exists; --force replaces it", file=sys.stderr)
        return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path}")
    return 0
