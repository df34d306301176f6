"""The `alula` command line."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from alula.core.settings import DEFAULT_IMAGE


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


def _parse_value(text: str, py_type: Any) -> Any:
    """A command-line string as a value of `py_type` (JSON for containers and dataclasses)."""
    import dataclasses
    import json

    if py_type is bool:
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    if py_type in (int, float, str):
        return py_type(text)
    value = json.loads(text)
    if isinstance(py_type, type) and dataclasses.is_dataclass(py_type) and isinstance(value, dict):
        return py_type(**value)
    return value


def _run(args: argparse.Namespace, rest: list[str]) -> int:
    from alula.core.errors import WorkflowAuthoringError
    from alula.core.interface import type_name
    from alula.core.local import TaskExecutionError
    from alula.core.local import run as run_locally
    from alula.core.package import load_module
    from alula.core.task import PythonFunctionTask
    from alula.core.workflow import Workflow

    try:
        module = load_module(args.file)
    except FileNotFoundError as e:
        print(f"alula run: {e}", file=sys.stderr)
        return 2
    entity = getattr(module, args.entity, None)
    if not isinstance(entity, (Workflow, PythonFunctionTask)):
        found = [
            n for n, v in vars(module).items() if isinstance(v, (Workflow, PythonFunctionTask))
        ]
        print(
            f"alula run: {args.file} has no workflow or task {args.entity!r}; found {found}",
            file=sys.stderr,
        )
        return 2
    interface = entity.interface
    p = argparse.ArgumentParser(prog=f"alula run {args.file} {args.entity}", allow_abbrev=False)
    for name, py_type in interface.inputs.items():
        default = interface.defaults.get(name, argparse.SUPPRESS)
        shown = "" if default is argparse.SUPPRESS else f" (default: {default!r})"
        p.add_argument(
            f"--{name}",
            required=name not in interface.defaults,
            default=default,
            help=f"{type_name(py_type)}{shown}",
        )
    values = vars(p.parse_args(rest))
    inputs: dict[str, Any] = {}
    for name, value in values.items():
        # Values typed on the command line are strings; defaults are already Python values.
        try:
            inputs[name] = (
                _parse_value(value, interface.inputs[name]) if isinstance(value, str) else value
            )
        except ValueError as e:
            p.error(f"--{name}: {e}")
    if args.remote:
        if not isinstance(entity, Workflow):
            print("alula run --remote: only workflows run remotely", file=sys.stderr)
            return 2
        return _run_remote(args, entity, inputs)
    signals = dict(kv.split("=", 1) for kv in args.signal)
    try:
        if isinstance(entity, Workflow):
            result = run_locally(
                entity,
                signals=signals,
                parallelism=args.parallelism,
                overwrite_cache=args.overwrite_cache,
                processes=args.processes,
                **inputs,
            )
        else:
            result = entity(**inputs)
    except (TaskExecutionError, WorkflowAuthoringError) as e:
        print(f"alula run: {e}", file=sys.stderr)
        return 1
    if result is not None:
        print(result)
    return 0


def _run_remote(args: argparse.Namespace, wf: Any, inputs: dict[str, Any]) -> int:
    from alula._native import RpcError
    from alula.auth import AuthError
    from alula.core.errors import WorkflowAuthoringError
    from alula.remote import ExecutionFailed, Remote

    image = args.image or os.environ.get("ALULA_TASK_IMAGE") or DEFAULT_IMAGE
    try:
        remote = Remote(args.endpoint, args.project, args.domain, image=image)
        registration = remote.register(args.file)
        print(f"registered {len(registration.entities)} entities, version {registration.version}")
        execution = remote.execute(wf, inputs)
        print(f"execution {execution}")
        print(f"console   {remote.console_url(execution)}", flush=True)
        if not args.wait:
            return 0
        result = remote.wait(execution)
    except (RpcError, ExecutionFailed, WorkflowAuthoringError, OSError, AuthError) as e:
        print(f"alula run: {e}", file=sys.stderr)
        return 1
    if result is not None:
        print(result)
    return 0


def _cache_clear(args: argparse.Namespace) -> int:
    from alula.core.local import cache_dir, clear_cache

    print(f"removed {clear_cache()} cached outputs from {cache_dir()}")
    return 0


def parser() -> argparse.ArgumentParser:
    from alula.core.settings import DEFAULT_IMAGE

    p = argparse.ArgumentParser(
        prog="alula", description="Flyte, rebuilt in Rust.", allow_abbrev=False
    )
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
        default=DEFAULT_IMAGE,
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
    run = commands.add_parser(
        "run",
        help="run a workflow or task locally: alula run FILE ENTITY --input value ...",
        add_help=False,
        allow_abbrev=False,
    )
    run.add_argument("file", help="the Python file defining the workflow")
    run.add_argument("entity", help="the workflow or task to run")
    run.add_argument(
        "--parallelism",
        type=int,
        default=None,
        help="task attempts run at once (default 1: inline, fastest)",
    )
    run.add_argument(
        "--signal",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="answer for a gate (approve: true/false; wait_for_input: a value)",
    )
    run.add_argument(
        "--processes",
        action="store_true",
        help="run task bodies in worker processes (CPU-bound Python); see --parallelism",
    )
    run.add_argument(
        "--overwrite-cache",
        action="store_true",
        help="run cacheable tasks again and replace their cached outputs",
    )
    run.add_argument(
        "--remote",
        action="store_true",
        help="register FILE and run the workflow on a control plane instead of locally",
    )
    run.add_argument(
        "--endpoint",
        default=None,
        help="gRPC address of the control plane (default: $ALULA_ENDPOINT or 127.0.0.1:8089)",
    )
    run.add_argument(
        "--image",
        default=None,
        help="with --remote: the container image tasks run in on a cluster "
        "(default: $ALULA_TASK_IMAGE, else flytekit's default image)",
    )
    run.add_argument("--project", default="flytesnacks", help="with --remote")
    run.add_argument("--domain", default="development", help="with --remote")
    run.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --remote: wait for the execution and print its outputs (default)",
    )
    run.set_defaults(run=None)
    cache = commands.add_parser("cache", help="manage the local cache of task outputs")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True)
    clear = cache_commands.add_parser("clear", help="delete every cached task output")
    clear.set_defaults(run=_cache_clear)
    from alula import auth_cli, start

    start.add_parser(commands)
    auth_cli.add_parser(commands)
    return p


def main(argv: list[str] | None = None) -> int:
    args, rest = parser().parse_known_args(argv)
    if args.command == "run":
        return _run(args, rest)
    if rest:
        parser().error(f"unrecognized arguments: {' '.join(rest)}")
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
