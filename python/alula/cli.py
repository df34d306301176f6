"""The `alula` command line."""

from __future__ import annotations

import argparse
import sys


def _package(args: argparse.Namespace) -> int:
    from alula.core.errors import WorkflowAuthoringError
    from alula.core.package import package
    from alula.core.settings import SerializationSettings

    env = dict(kv.split("=", 1) for kv in args.env)
    settings = SerializationSettings(args.project, args.domain, args.version, args.image, env)
    try:
        names = package(args.files, settings, args.output)
    except (WorkflowAuthoringError, FileNotFoundError) as e:
        print(f"alula package: {e}", file=sys.stderr)
        return 1
    for name in names:
        print(f"  packaged {name}")
    print(f"wrote {len(names)} entities to {args.output}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="alula", description="Flyte, rebuilt in Rust.")
    commands = p.add_subparsers(dest="command", required=True)
    pkg = commands.add_parser(
        "package", help="serialize the workflows of Python files into a tgz for registration"
    )
    pkg.add_argument("files", nargs="+", help="Python files defining tasks and workflows")
    pkg.add_argument("-p", "--project", required=True)
    pkg.add_argument("-d", "--domain", required=True)
    pkg.add_argument("-v", "--version", required=True)
    pkg.add_argument(
        "-i",
        "--image",
        default="ghcr.io/flyteorg/flytekit:py3.11-latest",
        help="default container image of the tasks",
    )
    pkg.add_argument(
        "-e",
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment variable for every task container",
    )
    pkg.add_argument("-o", "--output", default="flyte-package.tgz")
    pkg.set_defaults(run=_package)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
