"""Every verb has `--help` with an example, and a bad argument to any of them is one line on
stderr with exit code 2 (argparse's usage block is not printed). No server needed: both are
decided before connecting. Also flytectl's filter spellings, translated to admin's."""

from __future__ import annotations

import subprocess

import pytest
from conftest import ALULA

from alula.ctl.filters import FilterError, translate

VERBS = [
    *[["get", noun] for noun in ("projects", "tasks", "workflows", "launchplans", "executions")],
    ["get", "signals"],
    *[
        [verb, noun]
        for verb in ("get", "update", "delete")
        for noun in ("task-resource-attribute", "execution-config", "execution-cluster-label")
    ],
    ["create", "project"],
    ["create", "execution"],
    ["update", "launchplan"],
    ["update", "execution"],
    ["update", "project"],
    ["relaunch"],
    ["recover"],
    ["terminate"],
    ["logs"],
    ["approve"],
    ["reject"],
    ["set-signal"],
    ["config", "init"],
    ["get"],
    ["create"],
    ["update"],
    ["delete"],
    ["config"],
]


def _alula(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ALULA), *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_help_has_an_example(verb: list[str]) -> None:
    done = _alula(*verb, "--help")
    assert done.returncode == 0, done.stderr
    assert "example:\n  alula " in done.stdout, done.stdout


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_a_bad_argument_is_one_line_and_exit_2(verb: list[str]) -> None:
    done = _alula(*verb, "--no-such-option")
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("alula") and "error:" in lines[0]
    assert "--help" in lines[0]


@pytest.mark.parametrize(
    ("given", "admin"),
    [
        (["phase=SUCCEEDED"], "eq(phase,SUCCEEDED)"),
        (
            ["eq(phase,SUCCEEDED)+gte(created_at,2024-01-01T00:00:00Z)"],
            "eq(phase,SUCCEEDED)+gte(created_at,2024-01-01T00:00:00Z)",
        ),
        (
            ["execution.phase in (FAILED;ABORTED),created_at>=2024-01-01"],
            "value_in(execution.phase,FAILED;ABORTED)+gte(created_at,2024-01-01)",
        ),
        (["phase notin (FAILED)", "name!=x"], "value_not_in(phase,FAILED)+ne(name,x)"),
        (["name contains abc"], "contains(name,abc)"),
        (
            ["duration<200", "duration>10", "duration<=5"],
            "lt(duration,200)+gt(duration,10)+lte(duration,5)",
        ),
        ([], ""),
    ],
)
def test_filters_in_both_spellings(given: list[str], admin: str) -> None:
    assert translate(given) == admin


@pytest.mark.parametrize("bad", ["phase", "eq(phase,SUCCEEDED", "=x"])
def test_unreadable_filters(bad: str) -> None:
    with pytest.raises(FilterError):
        translate([bad])
