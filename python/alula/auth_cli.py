"""`alula auth ...`: the built-in authorization server's machine clients, role bindings, signing
keys and the audit log, in the server's database (found as `alula start` finds it: `--config`,
`--data`, `ALULA_*` variables). The commands themselves are the server's (Rust); this module
only parses the command line for `--help` and forwards it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

_ROLES = ["viewer", "runner", "developer", "admin"]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="a TOML file of alula-server settings")
    parser.add_argument(
        "--data", default=None, help="storage folder (default: $ALULA_STORAGE_ROOT or ./alula-data)"
    )


def _scope(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", default=None, help="default: every project (*)")
    parser.add_argument("--domain", default=None, help="default: every domain (*)")


def add_parser(commands: Any) -> None:
    auth = commands.add_parser(
        "auth", help="manage clients, roles, signing keys; read the audit log"
    )
    sub = auth.add_subparsers(dest="auth_command", required=True)

    create = sub.add_parser("create-client", help="a machine client; prints its id and secret once")
    create.add_argument("name")
    create.add_argument("--role", choices=_ROLES, default=None)
    _scope(create)
    create.add_argument("--description", default=None)

    sub.add_parser("list-clients", help="every client (no secrets)")
    revoke_client = sub.add_parser("revoke-client", help="refuse a client's tokens from now on")
    revoke_client.add_argument("name")

    grant = sub.add_parser("grant", help="give SUBJECT (user:, group:, client:) a ROLE")
    grant.add_argument("subject")
    grant.add_argument("role", choices=_ROLES)
    _scope(grant)

    revoke = sub.add_parser("revoke", help="remove SUBJECT's role on a project/domain")
    revoke.add_argument("subject")
    _scope(revoke)

    sub.add_parser("bindings", help="role bindings of the settings and the database")
    sub.add_parser("rotate-key", help="a new signing key for the built-in server's tokens")

    audit = sub.add_parser("audit", help="the audit log of mutating calls, newest first")
    audit.add_argument("--project", default=None)
    audit.add_argument("--limit", type=int, default=None)

    for command in sub.choices.values():
        _common(command)
    auth.set_defaults(run=run)


def native_args(args: argparse.Namespace) -> list[str]:
    """The command line the server's implementation takes, from the parsed one."""
    argv: list[str] = [args.auth_command]
    for operand in ("name", "subject", "role"):
        if operand == "role" and args.auth_command == "create-client":
            continue
        value = getattr(args, operand, None)
        if value is not None:
            argv.append(value)
    for option in ("role", "project", "domain", "description", "limit", "config", "data"):
        if option == "role" and args.auth_command != "create-client":
            continue
        value = getattr(args, option, None)
        if value is not None:
            argv += [f"--{option}", str(value)]
    return argv


def run(args: argparse.Namespace) -> int:
    from alula import _bridge

    try:
        output = _bridge.auth_command(native_args(args))
    except RuntimeError as e:
        print(f"alula auth: {e}", file=sys.stderr)
        return 1
    print(output, end="", flush=True)
    return 0
