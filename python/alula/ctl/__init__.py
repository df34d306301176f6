"""The control-plane verbs of `alula` (flytectl's nouns and habits): `get`, `create`,
`update`, `delete`, `relaunch`, `recover`, `terminate`, `logs`, `approve`, `reject`,
`set-signal`, `config init`. `add_parsers` registers them on the `alula` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from alula.ctl.attributes import ALIASES as ATTRIBUTE_ALIASES
from alula.ctl.attributes import KINDS as ATTRIBUTE_KINDS
from alula.ctl.output import FORMATS

ENDPOINT_HINT = "set ALULA_ENDPOINT or --endpoint (or write a config: alula config init)"
_ATTRIBUTES = [*ATTRIBUTE_KINDS, *ATTRIBUTE_ALIASES]


def _connection(
    p: argparse.ArgumentParser, output: bool = True, scope: bool = True
) -> argparse.ArgumentParser:
    g = p.add_argument_group("control plane")
    g.add_argument(
        "--endpoint",
        default=None,
        help="gRPC address (default: $ALULA_ENDPOINT, else the config's admin.endpoint, "
        "else 127.0.0.1:8089)",
    )
    g.add_argument(
        "-c",
        "--config",
        default=None,
        help="flytekit/flytectl config file (default: $FLYTECTL_CONFIG or ~/.flyte/config.yaml)",
    )
    if scope:
        p.add_argument("-p", "--project", default=None, help="default flytesnacks")
        p.add_argument("-d", "--domain", default=None, help="default development")
    if output:
        p.add_argument(
            "-o",
            "--output",
            choices=FORMATS,
            default="table",
            help="table (default), or json / yaml of the API's answer for scripts",
        )
    return p


def _listing(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("lists (flytectl's --filter.* spellings work too)")
    g.add_argument(
        "--filter",
        "--filter.fieldSelector",
        dest="filter",
        action="append",
        default=[],
        metavar="FILTER",
        help="'phase=SUCCEEDED,created_at>=2024-01-01T00:00:00Z', 'phase in (FAILED;ABORTED)' "
        "or admin's 'eq(phase,SUCCEEDED)+gte(...)'; repeatable",
    )
    g.add_argument("--limit", "--filter.limit", dest="limit", type=_positive, default=100)
    g.add_argument("--page", "--filter.page", dest="page", type=_positive, default=1)
    g.add_argument("--sort-by", "--filter.sortBy", dest="sort_by", default=None)
    g.add_argument("--asc", "--filter.asc", dest="asc", action="store_true", help="oldest first")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _verb(sub: Any, name: str, summary: str, example: str, **kw: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=summary,
        description=summary,
        epilog="example:\n  " + example.replace("\n", "\n  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kw,
    )
    return parser


def _with_remote(handler: Callable[[Any, argparse.Namespace], int]) -> Callable[..., int]:
    def run(args: argparse.Namespace) -> int:
        from alula.ctl import client

        return handler(client.remote(args), args)

    return run


def add_parsers(commands: Any) -> None:
    from alula.ctl import attributes, config_cmd, get, logs, mutate

    # get
    getp = _verb(
        commands,
        "get",
        "list or show projects, tasks, workflows, launch plans, executions, signals, attributes",
        "alula get executions -p flytesnacks -d development --limit 10\n"
        "alula get executions --help",
    )
    nouns = getp.add_subparsers(dest="noun", required=True, metavar="NOUN")
    examples = {
        "projects": "alula get projects -o json",
        "tasks": "alula get tasks -p flytesnacks -d development my.module.my_task --latest",
        "workflows": "alula get workflows my.module.wf --version v1 -o yaml",
        "launchplans": "alula get launchplans my.module.wf --latest",
        "executions": "alula get executions --filter 'phase=FAILED' --limit 10 --page 2\n"
        "alula get executions a1b2c3 --details",
        "signals": "alula get signals a1b2c3",
    }
    for noun, example in examples.items():
        p = _verb(nouns, noun, f"{noun}: a list, or one by NAME", example, aliases=[noun[:-1]])
        _connection(p)
        if noun == "signals":
            p.add_argument("name", metavar="EXECUTION", nargs="?")
            p.add_argument("--limit", type=_positive, default=100)
        else:
            p.add_argument("name", nargs="?", metavar="NAME")
            _listing(p)
        if noun in ("tasks", "workflows", "launchplans"):
            p.add_argument("--version", default=None, help="this version of NAME")
            p.add_argument("--latest", action="store_true", help="the newest version of NAME")
        if noun == "launchplans":
            p.add_argument(
                "--execFile",
                "--exec-file",
                dest="exec_file",
                default=None,
                help="write an exec file for `alula create execution --file` (flytectl's)",
            )
        if noun == "executions":
            p.add_argument(
                "--details",
                action="store_true",
                help="the node executions as a tree, with task attempts",
            )
            p.add_argument("--archived", action="store_true", help="list archived executions too")
        p.set_defaults(run=get.run)
    for noun in _ATTRIBUTES:
        p = _verb(
            nouns,
            noun,
            f"the {noun} of a project/domain (or one WORKFLOW of it)",
            f"alula get {noun} -p flytesnacks -d development [--attrFile out.yaml]",
        )
        _attribute_args(p, "get")

    # create
    create = _verb(
        commands,
        "create",
        "create a project or an execution",
        "alula create execution --launchplan my.module.wf --input n=3",
    )
    nouns = create.add_subparsers(dest="noun", required=True, metavar="NOUN")
    p = _verb(
        nouns,
        "project",
        "register a project",
        "alula create project --id ml --name 'ML team' --description 'models' --label team=ml",
    )
    _connection(p, scope=False)
    p.add_argument("--id", default=None)
    p.add_argument("--name", dest="project_name", default=None)
    p.add_argument("--description", default=None)
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--file", default=None, help="a YAML file with id, name, description, labels")
    p.set_defaults(run=_with_remote(mutate.create_project))
    p = _verb(
        nouns,
        "execution",
        "start a launch plan (its newest version unless --version)",
        "alula create execution --launchplan my.module.wf --input n=3 --input name=x\n"
        "alula create execution --file exec.yaml   # flytectl's exec file: launchplan, "
        "version, inputs",
        aliases=["executions"],
    )
    _connection(p)
    p.add_argument("--launchplan", default=None, help="the launch plan's name")
    p.add_argument("--version", default=None)
    p.add_argument("--input", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--name", default=None, help="the execution's name (default: generated)")
    p.add_argument("--file", "--execFile", dest="file", default=None, help="an exec file")
    p.set_defaults(run=_with_remote(mutate.create_execution))

    # update
    update = _verb(
        commands,
        "update",
        "activate launch plans, archive executions, change projects and attributes",
        "alula update launchplan my.module.wf --activate",
    )
    nouns = update.add_subparsers(dest="noun", required=True, metavar="NOUN")
    p = _verb(
        nouns,
        "launchplan",
        "activate (starting its schedule) or deactivate a launch plan",
        "alula update launchplan my.module.wf --activate [--version v1]",
    )
    _connection(p)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--version", default=None, help="default: the newest")
    state = p.add_mutually_exclusive_group(required=True)
    state.add_argument("--activate", action="store_true")
    state.add_argument("--deactivate", action="store_true")
    p.set_defaults(run=_with_remote(mutate.update_launchplan))
    p = _verb(
        nouns,
        "execution",
        "archive an execution (hidden from lists) or make it active again",
        "alula update execution a1b2c3 --archive",
    )
    _connection(p)
    p.add_argument("name", metavar="EXECUTION")
    state = p.add_mutually_exclusive_group(required=True)
    state.add_argument("--archive", action="store_true")
    state.add_argument("--activate", action="store_true")
    p.set_defaults(run=_with_remote(mutate.update_execution))
    p = _verb(
        nouns,
        "project",
        "change a project's name, description, labels or state",
        "alula update project ml --description 'models and data' --label owner=ana",
    )
    _connection(p, scope=False)
    p.add_argument("id", metavar="PROJECT")
    p.add_argument("--name", dest="project_name", default=None)
    p.add_argument("--description", default=None)
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    state = p.add_mutually_exclusive_group()
    state.add_argument("--archive", action="store_true")
    state.add_argument("--activate", action="store_true")
    p.set_defaults(run=_with_remote(mutate.update_project))
    for noun in _ATTRIBUTES:
        p = _verb(
            nouns,
            noun,
            f"set the {noun} of a project/domain (or a workflow) from a YAML file",
            f"alula update {noun} --attrFile attrs.yaml   # project:, domain:, then the fields",
        )
        _attribute_args(p, "update")

    # delete
    delete = _verb(
        commands,
        "delete",
        "delete matchable attributes",
        "alula delete task-resource-attribute -p flytesnacks -d development",
    )
    nouns = delete.add_subparsers(dest="noun", required=True, metavar="NOUN")
    for noun in _ATTRIBUTES:
        p = _verb(
            nouns,
            noun,
            f"remove the {noun} of a project/domain (or a workflow)",
            f"alula delete {noun} -p flytesnacks -d development",
        )
        _attribute_args(p, "delete")

    # executions
    for verb, summary, handler in (
        ("relaunch", "run an execution again with the same inputs", mutate.relaunch),
        (
            "recover",
            "run a failed execution again, reusing its nodes that succeeded",
            mutate.recover,
        ),
    ):
        p = _verb(commands, verb, summary, f"alula {verb} a1b2c3")
        _connection(p)
        p.add_argument("execution", metavar="EXECUTION")
        p.add_argument("--name", default=None, help="the new execution's name")
        if verb == "relaunch":
            p.add_argument("--overwrite-cache", action="store_true")
        p.set_defaults(run=_with_remote(handler))
    p = _verb(commands, "terminate", "abort running executions", "alula terminate a1b2c3 d4e5f6")
    _connection(p, output=False)
    p.add_argument("executions", nargs="+", metavar="EXECUTION")
    p.add_argument("--cause", default="terminated with alula terminate")
    p.set_defaults(run=_with_remote(mutate.terminate))

    # logs
    p = _verb(
        commands,
        "logs",
        "what a task attempt printed (default: the failed, else running, else last node)",
        "alula logs a1b2c3 n0 -f\nalula logs a1b2c3 n1 --attempt 0 --stream stderr",
    )
    _connection(p, output=False)
    p.add_argument("execution", metavar="EXECUTION")
    p.add_argument("node", metavar="NODE", nargs="?", default=None)
    p.add_argument("--attempt", type=int, default=None, help="default: the last")
    p.add_argument("--index", type=int, default=None, help="the element of a map task")
    p.add_argument(
        "--stream", choices=("all", "stdout", "stderr"), default="all", help="default: both"
    )
    p.add_argument("-f", "--follow", action="store_true", help="follow while the attempt runs")
    p.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    p.set_defaults(run=logs.run)

    # signals
    for verb, summary in (
        ("approve", "approve a gate (approve(...) in the workflow)"),
        ("reject", "reject a gate: the execution fails"),
    ):
        p = _verb(commands, verb, summary, f"alula {verb} a1b2c3 deploy-ok")
        _connection(p, output=False)
        p.add_argument("execution", metavar="EXECUTION")
        p.add_argument("signal", metavar="SIGNAL")
        p.set_defaults(run=_with_remote(mutate.set_signal), verb=verb)
    p = _verb(
        commands,
        "set-signal",
        "give a wait_for_input gate its value (read as the signal's type)",
        "alula set-signal a1b2c3 threshold 0.75",
    )
    _connection(p, output=False)
    p.add_argument("execution", metavar="EXECUTION")
    p.add_argument("signal", metavar="SIGNAL")
    p.add_argument("value", metavar="VALUE")
    p.set_defaults(run=_with_remote(mutate.set_signal), verb="set-signal")

    # config
    config = _verb(
        commands,
        "config",
        "the client config alula, pyflyte and flytectl read",
        "alula config init --endpoint 127.0.0.1:8089 --insecure",
    )
    sub = config.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    p = _verb(
        sub,
        "init",
        "write a config (admin endpoint, TLS, credentials)",
        "alula config init --endpoint alula.example.com:443 --ca-cert ca.pem\n"
        "alula config init --endpoint 127.0.0.1:8089 --insecure --file ./config.yaml",
    )
    p.add_argument("--endpoint", default=None, help="gRPC address (default 127.0.0.1:8089)")
    tls = p.add_mutually_exclusive_group()
    tls.add_argument("--insecure", action="store_true", help="plaintext gRPC")
    tls.add_argument("--secure", action="store_true", help="TLS with the system's roots")
    p.add_argument("--ca-cert", default=None, help="PEM file of the CA to trust (implies TLS)")
    p.add_argument("--client-id", default=None)
    p.add_argument("--client-secret-file", default=None)
    p.add_argument("--console", default=None, help="the console's URL, for links")
    p.add_argument("--file", default=None, help="default: $FLYTECTL_CONFIG or ~/.flyte/config.yaml")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.set_defaults(run=config_cmd.run)

    del attributes  # registered through _attribute_args


def _attribute_args(p: argparse.ArgumentParser, verb: str) -> None:
    from alula.ctl import attributes

    _connection(p)
    p.add_argument("workflow", nargs="?", metavar="WORKFLOW", default=None)
    p.add_argument(
        "--attrFile",
        "--attr-file",
        dest="attr_file",
        default=None,
        required=verb == "update",
        help="update: read the attributes from it; get: write them to it (flytectl's shape)",
    )
    p.set_defaults(run=_with_remote(attributes.run), verb=verb)


def dispatch(args: argparse.Namespace, prog: str) -> int:
    """Runs a verb; its failures are one line on stderr: exit 2 for a bad argument (refused by
    this side or the server's INVALID_ARGUMENT), 1 for anything else."""
    from alula.auth import AuthError
    from alula.ctl.filters import FilterError
    from alula.ctl.literals import InputError
    from alula.errors import RpcError

    try:
        code: int = args.run(args)
        return code
    except RpcError as e:
        if e.code == "UNAVAILABLE":
            print(
                f"{prog}: cannot reach the control plane: {e.message}; {ENDPOINT_HINT}",
                file=sys.stderr,
            )
            return 1
        print(f"{prog}: {e.code}: {e.message}", file=sys.stderr)
        return 2 if e.code == "INVALID_ARGUMENT" else 1
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (InputError, FilterError, FileNotFoundError, ValueError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    except (LookupError, RuntimeError, AuthError, OSError, ImportError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
