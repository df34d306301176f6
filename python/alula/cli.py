"""The `alula` command line."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NoReturn

from alula.core.settings import DEFAULT_IMAGE


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (exit code 2) instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


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

    if args.file is None:
        _run_parser_help()
        return 0
    try:
        module = load_module(args.file)
    except FileNotFoundError as e:
        print(f"alula run: {e}", file=sys.stderr)
        return 2
    found = {n: v for n, v in vars(module).items() if isinstance(v, (Workflow, PythonFunctionTask))}
    if args.entity is None:
        if args.help:
            print(_entities_help(args.file, found))
            return 0
        print(
            f"alula run: error: which workflow or task of {args.file}? "
            f"(see alula run {args.file} --help)",
            file=sys.stderr,
        )
        return 2
    entity = found.get(args.entity)
    if entity is None:
        print(
            f"alula run: {args.file} has no workflow or task {args.entity!r}; "
            f"found {sorted(found)}",
            file=sys.stderr,
        )
        return 2
    if args.help:
        rest = [*rest, "--help"]
    interface = entity.interface
    p = Parser(
        prog=f"alula run {args.file} {args.entity}",
        description=f"{type(entity).__name__} {entity.name}: its inputs as options",
        allow_abbrev=False,
    )
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


def _run_parser_help() -> None:
    """`alula run --help`: the run command's own options."""
    for action in parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            action.choices["run"].print_help()


def _entities_help(file: str, found: dict[str, Any]) -> str:
    """`alula run FILE --help`: the file's workflows and tasks, each with its inputs."""
    from alula.core.interface import type_name
    from alula.core.workflow import Workflow

    lines = [f"usage: alula run {file} ENTITY [--INPUT VALUE ...]", ""]
    if not found:
        lines.append(f"{file} defines no workflow or task")
    for kind, want in (("workflows", True), ("tasks", False)):
        names = [n for n, v in found.items() if isinstance(v, Workflow) == want]
        if not names:
            continue
        lines.append(f"{kind}:")
        for name in names:
            interface = found[name].interface
            params = []
            for arg, py_type in interface.inputs.items():
                shown = f"--{arg} {type_name(py_type)}"
                if arg in interface.defaults:
                    shown += f" (default: {interface.defaults[arg]!r})"
                params.append(shown)
            lines.append(f"  {name}  {'  '.join(params) if params else '(no inputs)'}")
    lines += ["", f"one entity's inputs: alula run {file} ENTITY --help"]
    return "\n".join(lines)


def _run_remote(args: argparse.Namespace, wf: Any, inputs: dict[str, Any]) -> int:
    from alula.auth import AuthError
    from alula.core.errors import WorkflowAuthoringError
    from alula.ctl import ENDPOINT_HINT
    from alula.ctl.client import remote as make_remote
    from alula.errors import RpcError
    from alula.remote import ExecutionFailed

    image = args.image or os.environ.get("ALULA_TASK_IMAGE") or DEFAULT_IMAGE
    execution = None
    try:
        remote = make_remote(args)
        remote.image = image
        registration = remote.register(args.file)
        print(f"registered {len(registration.entities)} entities, version {registration.version}")
        execution = remote.execute(wf, inputs)
        print(f"execution {execution}")
        print(f"console   {remote.console_url(execution)}", flush=True)
        if not args.wait:
            return 0
        _progress(remote, execution)
        result = remote.wait(execution)
    except KeyboardInterrupt:
        if execution is None:
            print("\nalula run: interrupted", file=sys.stderr)
            return 130
        name = execution.name
        scope = f"-p {execution.project} -d {execution.domain}"
        print(
            f"\nalula run: stopped waiting; execution {name} goes on on the server.\n"
            f"  follow it:  alula get executions {name} {scope} --details\n"
            f"              alula logs {name} {scope} -f\n"
            f"  stop it:    alula terminate {name} {scope}",
            file=sys.stderr,
        )
        return 130
    except ExecutionFailed as e:
        print(f"alula run: {e}", file=sys.stderr)
        _failed_logs(remote, e.execution)
        return 1
    except RpcError as e:
        hint = f"; {ENDPOINT_HINT}" if e.code == "UNAVAILABLE" else ""
        print(f"alula run: {e}{hint}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"alula run: {e}", file=sys.stderr)
        return 2
    except (WorkflowAuthoringError, OSError, AuthError) as e:
        print(f"alula run: {e}", file=sys.stderr)
        return 1
    if result is not None:
        print(result)
    return 0


def _progress(remote: Any, execution: Any) -> None:
    """Until the execution ends: a line with its nodes counted by phase whenever they change."""
    import time

    from alula.ctl.client import call
    from alula.remote import TERMINAL_PHASES

    shown = ""
    while True:
        phase = remote.phase(execution)
        nodes = call(
            remote,
            "ListNodeExecutions",
            {"workflowExecutionId": execution.id_json(), "limit": 1000},
        ).get("nodeExecutions", [])
        counts: dict[str, int] = {}
        for node in nodes:
            if node.get("id", {}).get("nodeId") in ("start-node", "end-node"):
                continue
            node_phase = node.get("closure", {}).get("phase", "UNDEFINED")
            counts[node_phase] = counts.get(node_phase, 0) + 1
        line = f"{phase}: " + ", ".join(f"{n} {p}" for p, n in sorted(counts.items()))
        if line != shown:
            print(f"  {line.rstrip(': ')}", flush=True)
            shown = line
        if phase in TERMINAL_PHASES:
            return
        time.sleep(0.5)


def _failed_logs(remote: Any, execution: Any, lines: int = 20) -> None:
    """The end of the failed task's stderr (best effort: the failure is already reported)."""
    from alula.ctl.logs import _pick

    try:
        entry = _pick(remote, execution.id_json(), None)
        if entry is None:
            return
        node_id = entry["node"]["id"]["nodeId"]
        text = remote.logs(execution, node_id, stream="stderr")
    except Exception:  # noqa: BLE001 - logs are a courtesy here
        return
    tail = text.rstrip().splitlines()[-lines:]
    if tail:
        print(f"--- last lines of node {node_id}'s stderr ---", file=sys.stderr)
        print("\n".join(tail), file=sys.stderr)


def _cache_clear(args: argparse.Namespace) -> int:
    from alula.core.local import cache_dir, clear_cache

    print(f"removed {clear_cache()} cached outputs from {cache_dir()}")
    return 0


def parser() -> argparse.ArgumentParser:
    from alula.core.settings import DEFAULT_IMAGE

    p = Parser(
        prog="alula",
        description="Flyte, rebuilt in Rust: run workflows (alula run), serve the control plane "
        "(alula start), and operate it (alula get / create / update / logs ...).",
        allow_abbrev=False,
    )
    p.add_argument("--version", action="version", version=f"alula {_version()}")
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
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
        help="run a workflow or task locally (or --remote): alula run FILE ENTITY --INPUT VALUE",
        description="Run a workflow or task of FILE, locally or (--remote) on a control plane. "
        "Its inputs are options after ENTITY: `alula run FILE --help` lists the file's "
        "workflows and tasks with their inputs, `alula run FILE ENTITY --help` one's inputs.",
        epilog="examples:\n  alula run examples/hello.py wf --name world\n"
        "  alula run flows.py pipeline --n 3 --remote --project ml --domain development\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
        allow_abbrev=False,
    )
    run.add_argument("file", nargs="?", help="the Python file defining the workflow")
    run.add_argument("entity", nargs="?", help="the workflow or task to run")
    run.add_argument(
        "-h",
        "--help",
        action="store_true",
        help="this help; after FILE: its workflows and tasks; after ENTITY: its inputs",
    )
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
        help="gRPC address of the control plane (default: $ALULA_ENDPOINT, else the config's "
        "admin.endpoint, else 127.0.0.1:8089)",
    )
    run.add_argument(
        "--image",
        default=None,
        help="with --remote: the container image tasks run in on a cluster "
        "(default: $ALULA_TASK_IMAGE, else flytekit's default image)",
    )
    run.add_argument(
        "-c",
        "--config",
        default=None,
        help="with --remote: a flytekit config for the endpoint, TLS and credentials "
        "(default: $FLYTECTL_CONFIG or ~/.flyte/config.yaml when present)",
    )
    run.add_argument("-p", "--project", default="flytesnacks", help="with --remote")
    run.add_argument("-d", "--domain", default="development", help="with --remote")
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
    from alula import ctl

    ctl.add_parsers(commands)
    return p


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("alula")
    except Exception:  # noqa: BLE001 - not installed as a distribution (a source tree)
        return "unknown"


# The control-plane verbs, whose failures are one line with an exit code (alula.ctl.dispatch).
_CTL = frozenset(
    {"get", "create", "update", "delete", "relaunch", "recover", "terminate", "logs"}
    | {"approve", "reject", "set-signal", "config"}
)


def main(argv: list[str] | None = None) -> int:
    args, rest = parser().parse_known_args(argv)
    if args.command == "run":
        return _run(args, rest)
    if rest:
        parser().error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command in _CTL:
        from alula.ctl import dispatch

        return dispatch(args, f"alula {args.command}")
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
