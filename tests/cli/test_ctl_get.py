"""`alula get ...` against a running server: every noun as a table and as `-o json` parsed
back, one entity by version or --latest, filters in both spellings, pages, the node tree of
`--details`, and bad arguments as one line with exit code 2."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import DOMAIN, PROJECT, Cli

from alula.remote import Execution


@pytest.fixture(scope="module")
def runs(cli: Cli) -> dict[str, Execution]:
    """Three finished executions: two of `adder` (one SUCCEEDED page each at --limit 1) and
    one of `failing`."""
    out = {}
    for key, lp, inputs in (
        ("first", "adder", {"a": 1}),
        ("second", "adder", {"a": 5, "b": 7}),
        ("failed", "failing", {"x": 2}),
    ):
        execution = cli.remote.execute(lp, inputs)
        out[key] = execution
    for execution in out.values():
        try:
            cli.remote.wait(execution, timeout=60)
        except Exception:  # noqa: BLE001 - `failing` fails, as it should
            pass
    return out


def test_get_projects(cli: Cli) -> None:
    listed = cli.json("get", "projects")
    assert PROJECT in [p["id"] for p in listed["projects"]]
    table = cli.ok("get", "projects")
    assert table.splitlines()[0].split() == ["ID", "NAME", "DESCRIPTION", "STATE"]
    assert cli.json("get", "project", PROJECT)["id"] == PROJECT


def test_get_tasks_workflows_launchplans(cli: Cli) -> None:
    version = cli.registration.version
    tasks = cli.json("get", "tasks", "-p", PROJECT, "-d", DOMAIN)
    names = {e["name"] for e in tasks["entities"]}
    assert {"ctl_flows.add", "ctl_flows.tick", "ctl_flows.explode"} <= names
    one = cli.json("get", "task", "ctl_flows.add", "--version", version)
    assert one["id"]["version"] == version
    latest = cli.json("get", "workflows", "ctl_flows.adder", "--latest")
    assert latest["id"] == {**latest["id"], "name": "ctl_flows.adder", "version": version}
    lps = cli.json("get", "launchplans", "ctl_flows.adder")
    assert [lp["id"]["version"] for lp in lps["launchPlans"]] == [version]
    table = cli.ok("get", "launchplans", "ctl_flows.adder")
    assert "INACTIVE" in table or "ACTIVE" in table
    assert version in table


def test_get_executions_lists_and_filters(cli: Cli, runs: dict[str, Execution]) -> None:
    listed = cli.json("get", "executions")
    names = [e["id"]["name"] for e in listed["executions"]]
    assert {r.name for r in runs.values()} <= set(names)
    # Newest first, as flytectl lists.
    assert names.index(runs["failed"].name) < names.index(runs["first"].name)
    failed = cli.json("get", "executions", "--filter", "phase=FAILED")
    assert [e["id"]["name"] for e in failed["executions"]] == [runs["failed"].name]
    flyte = cli.json("get", "executions", "--filter", "eq(phase,SUCCEEDED)")
    assert {e["id"]["name"] for e in flyte["executions"]} == {
        runs["first"].name,
        runs["second"].name,
    }
    selector = cli.json("get", "executions", "--filter.fieldSelector", "phase in (FAILED;ABORTED)")
    assert [e["id"]["name"] for e in selector["executions"]] == [runs["failed"].name]
    table = cli.ok("get", "executions", "--filter", "phase=FAILED")
    assert runs["failed"].name in table and "FAILED" in table and "ago)" in table
    assert "\x1b[" not in table  # colour only on a terminal


def test_get_executions_pages(cli: Cli, runs: dict[str, Execution]) -> None:
    pages = [
        cli.json("get", "executions", "--limit", "1", "--page", str(n))["executions"]
        for n in (1, 2, 3, 4)
    ]
    assert [len(p) for p in pages[:3]] == [1, 1, 1]
    seen = [p[0]["id"]["name"] for p in pages[:3]]
    assert seen == [runs["failed"].name, runs["second"].name, runs["first"].name]
    assert pages[3] == []
    ascending = cli.json("get", "executions", "--limit", "1", "--asc")["executions"]
    assert ascending[0]["id"]["name"] == runs["first"].name


def test_get_one_execution_and_its_node_tree(cli: Cli, runs: dict[str, Execution]) -> None:
    name = runs["failed"].name
    one = cli.json("get", "execution", name)
    assert one["closure"]["phase"] == "FAILED"
    details: dict[str, Any] = cli.json("get", "execution", name, "--details")
    nodes = {n["node"]["id"]["nodeId"]: n for n in details["nodes"]}
    assert nodes["n0"]["node"]["closure"]["phase"] == "SUCCEEDED"
    assert nodes["n1"]["node"]["closure"]["phase"] == "FAILED"
    assert [a["closure"]["phase"] for a in nodes["n1"]["attempts"]][-1] == "FAILED"
    tree = cli.ok("get", "execution", name, "--details")
    assert "attempt 0 ctl_flows.explode  FAILED" in tree
    assert "ctl explode 3" in tree
    full = cli.ok("get", "execution", f"{PROJECT}:{DOMAIN}:{name}", "-o", "yaml")
    assert "phase: FAILED" in full


def test_the_node_tree_shows_dynamic_children_and_map_elements(cli: Cli) -> None:
    execution = cli.remote.execute("shapes", {"n": 2})
    assert cli.remote.wait(execution, timeout=60) == 1 + 16  # 1², 2², squared again
    tree = cli.ok("get", "execution", execution.name, "--details")
    assert "[4 elements: 4 SUCCEEDED]" in tree, tree
    assert "(dynamic)" in tree, tree
    details = cli.json("get", "execution", execution.name, "--details")
    parents = [n for n in details["nodes"] if n["children"]]
    assert len(parents) == 1
    children = [c["node"]["id"]["nodeId"] for c in parents[0]["children"]]
    assert len(children) >= 2, children


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["get", "executions", "--limit", "0"], "expected a positive number"),
        (["get", "executions", "--filter", "phase~~FAILED"], "expected FIELD=VALUE"),
        (["get", "executions", "--filter", "eq(no_such_field,1)"], "no_such_field"),
        (["get", "executions", "-o", "xml"], "invalid choice"),
        (["get", "things"], "invalid choice"),
        (["get", "task", "--latest", "--nope"], "unrecognized arguments"),
        (["get", "signals"], "EXECUTION"),
    ],
)
def test_bad_arguments_exit_2(cli: Cli, args: list[str], message: str) -> None:
    assert message in cli.fails(*args)


def test_missing_things_exit_1(cli: Cli) -> None:
    assert "NOT_FOUND" in cli.fails("get", "execution", "nosuchexecution", code=1)
    assert "no task 'no.such.task'" in cli.fails("get", "tasks", "no.such.task", code=1)
