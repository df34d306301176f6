"""The verbs that change things, against a running server: create project / execution (from
`--input`s and from flytectl's exec file), relaunch, recover, terminate, update launch plan /
execution / project, matchable attributes get / update / delete, each with a bad argument."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from conftest import DOMAIN, PROJECT, Cli

from alula.remote import Execution

LP = "ctl_flows.adder"


def _created(stdout: str) -> Execution:
    found = re.search(r"execution (\S+) created", stdout)
    assert found, stdout
    return Execution(PROJECT, DOMAIN, found.group(1))


def _outputs(cli: Cli, execution: Execution) -> dict[str, object]:
    cli.remote.wait(execution, timeout=60)
    return cli.remote.outputs(execution)


def _int_output(cli: Cli, execution: Execution) -> int:
    literal = _outputs(cli, execution)["o0"]
    assert isinstance(literal, dict)
    return int(literal["scalar"]["primitive"]["integer"])


def test_create_execution_from_inputs(cli: Cli) -> None:
    out = cli.ok("create", "execution", "--launchplan", LP, "--input", "a=40", "--name", "made1")
    execution = _created(out)
    assert execution.name == "made1"
    assert _int_output(cli, execution) == 42  # b took the plan's default


def test_create_execution_from_an_exec_file(cli: Cli, tmp_path: Path) -> None:
    exec_file = tmp_path / "exec.json"
    spec = {"launchplan": LP, "version": cli.registration.version, "inputs": {"a": 3, "b": 4}}
    exec_file.write_text(json.dumps(spec))
    data = cli.json("create", "execution", "--execFile", str(exec_file))
    execution = Execution(PROJECT, DOMAIN, data["id"]["name"])
    assert _int_output(cli, execution) == 7
    # flytectl's round trip: an exec file written from the launch plan, edited, launched.
    template = tmp_path / "template.json"
    assert "wrote an exec file" in cli.ok(
        "get", "launchplan", LP, "--latest", "--execFile", str(template)
    )
    written = json.loads(template.read_text())
    assert written["inputs"] == {"a": None, "b": 2}
    assert written["version"] == cli.registration.version
    written["inputs"]["a"] = 8
    template.write_text(json.dumps(written))
    execution = _created(cli.ok("create", "execution", "--file", str(template)))
    assert _int_output(cli, execution) == 10
    yaml_file = tmp_path / "exec.yaml"
    yaml_file.write_text(f"launchplan: {LP}\ninputs:\n  a: 10\n")
    execution = _created(cli.ok("create", "execution", "--file", str(yaml_file), "--input", "b=1"))
    assert _int_output(cli, execution) == 11


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--launchplan", LP, "--input", "a=notanumber"], "input a: expected an integer"),
        (["--launchplan", LP, "--input", "zzz=1", "--input", "a=1"], "no input(s) ['zzz']"),
        (["--launchplan", LP], "needs input(s) ['a']"),
        (["--launchplan", LP, "--input", "a"], "expected KEY=VALUE"),
        ([], "needs --launchplan"),
        (["--file", "/no/such/exec.yaml"], "No such file"),
    ],
)
def test_create_execution_bad_arguments(cli: Cli, args: list[str], message: str) -> None:
    assert message in cli.fails("create", "execution", *args)


def test_relaunch_recover_terminate(cli: Cli) -> None:
    first = _created(cli.ok("create", "execution", "--launchplan", LP, "--input", "a=1"))
    assert _int_output(cli, first) == 3
    again = _created(cli.ok("relaunch", first.name))
    assert again.name != first.name and _int_output(cli, again) == 3
    failed = Execution(
        PROJECT,
        DOMAIN,
        cli.json("create", "execution", "--launchplan", "ctl_flows.failing")["id"]["name"],
    )
    with pytest.raises(Exception, match="FAILED"):
        cli.remote.wait(failed, timeout=60)
    recovered = cli.json("recover", failed.name, "--name", "recovered1")
    assert recovered["id"]["name"] == "recovered1"
    ticking = _created(
        cli.ok("create", "execution", "--launchplan", "ctl_flows.ticker", "--input", "seconds=60")
    )
    assert f"execution {ticking.name} terminated" in cli.ok("terminate", ticking.name)
    deadline = time.monotonic() + 30
    while cli.remote.phase(ticking) != "ABORTED":
        assert time.monotonic() < deadline, cli.remote.phase(ticking)
        time.sleep(0.2)
    assert "NOT_FOUND" in cli.fails("relaunch", "nosuchexecution", code=1)
    assert "required" in cli.fails("terminate")


def test_update_execution_archives(cli: Cli) -> None:
    run = _created(cli.ok("create", "execution", "--launchplan", LP, "--input", "a=2"))
    _outputs(cli, run)
    assert "archived" in cli.ok("update", "execution", run.name, "--archive")
    listed = cli.json("get", "executions", "--limit", "100")["executions"]
    assert run.name not in [e["id"]["name"] for e in listed]
    archived = cli.json("get", "executions", "--limit", "100", "--archived")["executions"]
    assert run.name in [e["id"]["name"] for e in archived]
    cli.ok("update", "execution", run.name, "--activate")
    listed = cli.json("get", "executions", "--limit", "100")["executions"]
    assert run.name in [e["id"]["name"] for e in listed]
    assert "one of the arguments" in cli.fails("update", "execution", run.name)


def test_update_launchplan_activates(cli: Cli) -> None:
    def state() -> str:
        lp = cli.json("get", "launchplan", LP, "--latest")
        return str(lp["closure"].get("state", "INACTIVE"))

    assert state() == "INACTIVE"
    assert "activated" in cli.ok("update", "launchplan", LP, "--activate")
    assert state() == "ACTIVE"
    cli.ok("update", "launchplan", LP, "--deactivate")
    assert state() == "INACTIVE"
    assert "not allowed with" in cli.fails("update", "launchplan", LP, "--activate", "--deactivate")


def test_create_and_update_project(cli: Cli) -> None:
    out = cli.ok("create", "project", "--id", "ctlproj", "--name", "Ctl", "--label", "team=ml")
    assert "ctlproj created" in out
    project = cli.json("get", "project", "ctlproj")
    assert project["name"] == "Ctl"
    assert project["labels"]["values"] == {"team": "ml"}
    cli.ok("update", "project", "ctlproj", "--description", "changed", "--label", "owner=ana")
    project = cli.json("get", "project", "ctlproj")
    assert project["description"] == "changed"
    assert project["labels"]["values"] == {"team": "ml", "owner": "ana"}
    assert "needs --id" in cli.fails("create", "project")
    assert "expected KEY=VALUE" in cli.fails("update", "project", "ctlproj", "--label", "x")


def test_matchable_attributes(cli: Cli, tmp_path: Path) -> None:
    attr = tmp_path / "tra.yaml"
    attr.write_text(
        f"project: {PROJECT}\ndomain: {DOMAIN}\n"
        'defaults:\n  cpu: "1"\n  memory: 150Mi\nlimits:\n  cpu: "2"\n  memory: 450Mi\n'
    )
    assert "updated" in cli.ok("update", "task-resource-attribute", "--attrFile", str(attr))
    got = cli.json("get", "task-resource-attribute", "-p", PROJECT, "-d", DOMAIN)
    resources = got["attributes"]["matchingAttributes"]["taskResourceAttributes"]
    assert resources["defaults"]["memory"] == "150Mi"
    assert resources["limits"]["cpu"] == "2"
    out_file = tmp_path / "back.yaml"
    cli.ok("get", "task-resource-attribute", "--attrFile", str(out_file))
    assert "450Mi" in out_file.read_text()
    config = tmp_path / "ec.yaml"
    config.write_text(f"project: {PROJECT}\ndomain: {DOMAIN}\nmax_parallelism: 7\n")
    cli.ok("update", "execution-config", "--attrFile", str(config))
    got = cli.json("get", "execution-config")
    assert got["attributes"]["matchingAttributes"]["workflowExecutionConfig"]["maxParallelism"] == 7
    label = tmp_path / "ecl.yaml"
    label.write_text(f"project: {PROJECT}\ndomain: {DOMAIN}\nworkflow: {LP}\nvalue: gpu-pool\n")
    assert f"workflow {LP}" in cli.ok("update", "execution-cluster-label", "--attrFile", str(label))
    assert "gpu-pool" in cli.ok("get", "execution-cluster-label", LP)
    cli.ok("delete", "execution-cluster-label", LP)
    # What this server does not support is its one-line INVALID_ARGUMENT, exit 2.
    labels = tmp_path / "cra.yaml"
    labels.write_text(f"project: {PROJECT}\ndomain: {DOMAIN}\nattributes:\n  team: ml\n")
    refused = cli.fails("update", "cluster-resource-attribute", "--attrFile", str(labels))
    assert "INVALID_ARGUMENT" in refused
    assert "deleted" in cli.ok("delete", "task-resource-attribute")
    assert "NOT_FOUND" in cli.fails("get", "task-resource-attribute", code=1)
    assert "--attrFile" in cli.fails("update", "task-resource-attribute")
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"project: {PROJECT}\ndomain: {DOMAIN}\nno_such_field: 1\n")
    assert "no_such_field" in cli.fails("update", "task-resource-attribute", "--attrFile", str(bad))
