"""The web console (issue 14) in a real headless Chromium (Debian's `chromium`, driven by
Playwright): one alula-server with its propeller runs the workflows of console_flows/ remotely
(a chain, a branch, a map of 1,000, a dynamic workflow, a task failing on all its retries, an
approval gate, a sleeper), then the browser opens the projects, the executions list and each
execution, checks the graph's nodes and their phases, a node's values and logs, launches the
typed workflow from the form, terminates the sleeper and approves the gate.

Pages are found by the data attributes of the page contract (rust/console/src/lib.rs), never
by text or layout. A screenshot of every page goes to the test's temporary folder; the chain's
execution page also becomes docs/console-execution.png (README) once its test has passed."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer, browser_page, start_server
from playwright.sync_api import Browser, Page, expect

from alula.remote import Execution, Registration, Remote

REPO = Path(__file__).resolve().parents[2]
FLOWS = Path(__file__).parent / "console_flows" / "console_flows.py"
README_SHOT = REPO / "docs" / "console-execution.png"
PROJECT, DOMAIN = "flytesnacks", "development"
MODULE = "console_flows"
MAP_SIZE = 1000
RUN_TIMEOUT_S = 120
# How long the browser waits for something the page shows after a refresh or an action.
UI_TIMEOUT_MS = 20_000
TERMINAL = {"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"}
CAUSE = "console-test: stopped from the browser"


@dataclass
class Console:
    server: RunningServer
    remote: Remote
    registration: Registration
    runs: dict[str, Execution]
    shots: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server.http_port}"

    def execution_url(self, name: str) -> str:
        return f"{self.base}/console/projects/{PROJECT}/domains/{DOMAIN}/executions/{name}"

    def api(self, path: str) -> Any:
        """A GET of admin's REST API (the same services the console reads)."""
        with urllib.request.urlopen(f"{self.base}/api/v1/{path}", timeout=30) as response:
            return json.loads(response.read())

    def execution(self, name: str) -> Any:
        return self.api(f"executions/{PROJECT}/{DOMAIN}/{name}")

    def phase(self, name: str) -> str:
        return str(self.execution(name)["closure"].get("phase", "UNDEFINED"))

    def wait_phase(self, name: str, phases: set[str], timeout: float = RUN_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout
        while True:
            phase = self.phase(name)
            if phase in phases:
                return phase
            assert time.monotonic() < deadline, f"{name} is {phase}, not in {phases}"
            time.sleep(0.2)

    def succeeded(self, name: str) -> None:
        """Waits for the execution to end and asserts it succeeded (its error shown if not)."""
        phase = self.wait_phase(name, TERMINAL)
        closure = self.execution(name)["closure"]
        assert phase == "SUCCEEDED", closure.get("error", closure)

    def node_executions(self, name: str, parent: str = "") -> dict[str, Any]:
        """The execution's top-level node executions (or those under the node whose unique id
        is `parent`) by node id; start and end nodes left out: they run nothing."""
        query = (
            f"limit=1000&unique_parent_id={urllib.parse.quote(parent)}" if parent else "limit=1000"
        )
        found = self.api(f"node_executions/{PROJECT}/{DOMAIN}/{name}?{query}")
        nodes = found.get("nodeExecutions", found.get("node_executions", []))
        return {
            n["id"]["nodeId"]: n
            for n in nodes
            if n["id"]["nodeId"] not in ("start-node", "end-node")
        }

    def compiled_nodes(self, name: str) -> dict[str, Any]:
        """The compiled workflow's top-level nodes by id."""
        wf = self.execution(name)["closure"]["workflowId"]
        path = "/".join(urllib.parse.quote(wf[k]) for k in ("project", "domain", "name", "version"))
        template = self.api(f"workflows/{path}")["closure"]["compiledWorkflow"]["primary"]
        nodes = template["template"]["nodes"]
        return {n["id"]: n for n in nodes if n["id"] not in ("start-node", "end-node")}

    def node_of_task(self, name: str, task: str) -> str:
        """The id of the top-level node that runs `task` (short name) in execution `name`."""
        for node_id, node in self.compiled_nodes(name).items():
            ref = node.get("taskNode", {}).get("referenceId", {}).get("name", "")
            if ref.rsplit(".", 1)[-1] == task:
                return node_id
        raise AssertionError(f"no node runs {task} in {name}")

    def shot(self, page: Page, label: str) -> None:
        page.screenshot(path=str(self.shots / f"{label}.png"), full_page=True)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """One server for the module, every scenario registered and started at once (they run
    while the browser looks at the first ones)."""
    running = start_server(
        tmp_path_factory.mktemp("console-server"),
        propeller=True,
        extra_env={"ALULA_WARM_WORKERS": "4"},
    )
    try:
        remote = Remote(f"127.0.0.1:{running.server.grpc_port}", PROJECT, DOMAIN)
        registration = remote.register(FLOWS)
        runs = {
            "chain": remote.execute("chain", {"x": 1}),
            "branch": remote.execute("branch", {"t": 31.5}),
            "mapped": remote.execute("mapped", {"xs": list(range(MAP_SIZE))}),
            "dynamic": remote.execute("dynamic_wf", {"n": 3}),
            "failing": remote.execute("failing", {"x": 7}),
            "gated": remote.execute("gated", {"x": 1}),
            "sleeper": remote.execute("sleeper", {"seconds": 600}),
        }
        shots = tmp_path_factory.mktemp("console-screenshots")
        print(f"console screenshots: {shots}")
        yield Console(running, remote, registration, runs, shots)
    finally:
        code = running.stop()
    assert code == 0, f"alula-server exited with {code}:\n{running.server.log_file.read_text()}"


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    with browser_page(chromium, timeout_ms=UI_TIMEOUT_MS) as page:
        yield page


def open_page(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, (url, response and response.status)


def open_execution(console: Console, page: Page, run: str) -> str:
    """Opens the execution page of scenario `run` once it has ended; returns its name."""
    name = console.runs[run].name
    console.wait_phase(name, TERMINAL)
    open_page(page, console.execution_url(name))
    return name


def graph_node(page: Page, node_id: str) -> Any:
    return page.locator(f'svg#graph g.node[data-node-id="{node_id}"]')


def open_node(page: Page, node_id: str) -> Any:
    """Clicks a node of the graph; returns its panel once shown."""
    graph_node(page, node_id).locator("a").first.click()
    panel = page.locator(f'section#node-detail[data-node-id="{node_id}"]')
    expect(panel).to_be_visible()
    return panel


def expand(page: Page, node_id: str) -> Any:
    """Follows the expand control of a nested node (branch, subworkflow, dynamic); returns the
    section its graph is drawn in."""
    page.locator(f'svg#graph a[data-expand*="path={node_id}"]').first.click()
    nested = page.locator(f'section.graph-nested[data-path="{node_id}"]')
    expect(nested).to_be_visible()
    return nested


def header_phase(page: Page) -> Any:
    """The execution's own phase badge: the first one of the page's main content."""
    return page.locator("main span.phase[data-phase]").first


def expect_graph_phases(console: Console, page: Page, name: str) -> dict[str, Any]:
    """Every top-level node the API reports is drawn with the API's phase."""
    nodes = console.node_executions(name)
    assert nodes, f"{name} has no node executions"
    expect(page.locator("svg#graph")).to_be_visible()
    for node_id, node in nodes.items():
        expect(graph_node(page, node_id)).to_have_attribute("data-phase", node["closure"]["phase"])
    return nodes


def test_projects_lead_to_the_executions_list(console: Console, page: Page) -> None:
    finished = ["chain", "branch", "dynamic", "failing"]
    for run in finished:
        console.wait_phase(console.runs[run].name, TERMINAL)
    open_page(page, f"{console.base}/console")
    console.shot(page, "projects")
    page.locator(f'a[href*="/console/projects/{PROJECT}"]').first.click()
    page.wait_for_load_state()
    console.shot(page, "project")
    executions = page.locator('a[href$="/executions"], a[href*="/executions?"]').first
    executions.click()
    page.wait_for_url(re.compile(r".*/executions(\?.*)?$"))
    console.shot(page, "executions")
    for run in finished:
        name = console.runs[run].name
        row = page.locator(f'tr[data-execution="{name}"]')
        expect(row).to_have_attribute("data-phase", console.phase(name))
    running = page.locator(f'tr[data-execution="{console.runs["sleeper"].name}"]')
    expect(running).to_have_attribute("data-phase", re.compile("QUEUED|RUNNING"))
    # The list follows running executions without a reload (data-live): the map of 1,000
    # elements is usually still running when the page opens.
    mapped = page.locator(f'tr[data-execution="{console.runs["mapped"].name}"]')
    expect(mapped).to_have_attribute("data-phase", "SUCCEEDED", timeout=RUN_TIMEOUT_S * 1000)
    # A row leads to its execution's page.
    chain = console.runs["chain"].name
    page.locator(f'tr[data-execution="{chain}"] a[href*="/executions/{chain}"]').first.click()
    page.wait_for_url(console.execution_url(chain))
    expect(header_phase(page)).to_have_attribute("data-phase", "SUCCEEDED")


def test_chain_graph_values_and_logs(console: Console, page: Page) -> None:
    name = open_execution(console, page, "chain")
    assert console.phase(name) == "SUCCEEDED"
    expect(header_phase(page)).to_have_attribute("data-phase", "SUCCEEDED")
    nodes = expect_graph_phases(console, page, name)
    assert len(nodes) == 3
    first = console.node_of_task(name, "first")
    panel = open_node(page, first)
    expect(panel.locator('li[data-attempt="0"]')).to_have_attribute("data-phase", "SUCCEEDED")
    expect(panel.locator('div.value[data-name="x"]')).to_contain_text("1")
    expect(panel.locator('div.value[data-name="o0"]')).to_contain_text("2")
    logs = panel.locator('pre.logs[data-stream="stdout"]')
    expect(logs).to_contain_text("console-test first got 1")
    console.shot(page, "execution-chain-node")
    # The last node's output is the workflow's.
    third = console.node_of_task(name, "third")
    panel = open_node(page, third)
    expect(panel.locator('div.value[data-name="o0"]')).to_contain_text("chain=20")
    # The header links to the launch plan and the workflow it ran: their pages open.
    links = {
        kind: page.locator(f'main a[href*="/{kind}/{MODULE}.chain"]').first.get_attribute("href")
        for kind in ("launchPlans", "workflows")
    }
    for kind, href in links.items():
        assert href, kind
        open_page(page, urllib.parse.urljoin(console.base, href))
        expect(page.locator("main")).to_contain_text(f"{MODULE}.chain")
        console.shot(page, f"entity-{kind}")
    # The README's picture: the page as a user first sees it, a 1280x800 window.
    open_page(page, console.execution_url(name))
    expect(graph_node(page, first)).to_be_visible()
    README_SHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(console.shots / "execution-chain.png"))
    # Only a page that passed every check above replaces the committed picture.
    page.screenshot(path=str(README_SHOT))


def test_branch_shows_the_taken_and_the_skipped_case(console: Console, page: Page) -> None:
    name = open_execution(console, page, "branch")
    assert console.phase(name) == "SUCCEEDED"
    expect_graph_phases(console, page, name)
    (branch_id,) = [i for i, n in console.compiled_nodes(name).items() if "branchNode" in n]
    if_else = console.compiled_nodes(name)[branch_id]["branchNode"]["ifElse"]
    taken, skipped = if_else["case"]["thenNode"]["id"], if_else["elseNode"]["id"]
    expect(graph_node(page, branch_id)).to_have_attribute("data-phase", "SUCCEEDED")
    # The cases are drawn in the branch's own graph, opened from its box's expand control.
    cases = expand(page, branch_id)
    expect(cases.locator(f'g.node[data-node-id="{taken}"]')).to_have_attribute(
        "data-phase", "SUCCEEDED"
    )
    expect(cases.locator(f'g.node[data-node-id="{skipped}"]')).to_have_attribute(
        "data-phase", "SKIPPED"
    )
    console.shot(page, "execution-branch")


def test_map_of_a_thousand_elements(console: Console, page: Page) -> None:
    name = open_execution(console, page, "mapped")
    assert console.phase(name) == "SUCCEEDED"
    assert console.remote.wait(console.runs["mapped"]) == sum(x * x for x in range(MAP_SIZE))
    nodes = expect_graph_phases(console, page, name)
    (map_id,) = [i for i, n in console.compiled_nodes(name).items() if "arrayNode" in n]
    assert nodes[map_id]["closure"]["phase"] == "SUCCEEDED"
    mapped = graph_node(page, map_id)
    expect(mapped).to_have_attribute("data-elements", str(MAP_SIZE))
    # Aggregated: never one box per element.
    assert page.locator("svg#graph g.node").count() < 20
    console.shot(page, "execution-map")


def test_dynamic_workflow(console: Console, page: Page) -> None:
    name = open_execution(console, page, "dynamic")
    assert console.phase(name) == "SUCCEEDED"
    nodes = expect_graph_phases(console, page, name)
    dynamic = console.node_of_task(name, "cubes")
    assert nodes[dynamic]["closure"]["phase"] == "SUCCEEDED"
    # The nodes it generated at run time, in its own graph: one per cube, each with its phase.
    generated = console.node_executions(name, parent=dynamic)
    assert len(generated) == 3, generated
    inside = expand(page, dynamic)
    for node_id, node in generated.items():
        expect(inside.locator(f'g.node[data-node-id="{node_id}"]')).to_have_attribute(
            "data-phase", node["closure"]["phase"]
        )
    panel = open_node(page, dynamic)
    expect(panel.locator('div.value[data-name="o0"]')).to_contain_text("8")
    console.shot(page, "execution-dynamic")


def test_failing_task_shows_every_attempt_and_the_traceback(console: Console, page: Page) -> None:
    name = open_execution(console, page, "failing")
    assert console.phase(name) == "FAILED"
    expect(header_phase(page)).to_have_attribute("data-phase", "FAILED")
    expect_graph_phases(console, page, name)
    flaky = console.node_of_task(name, "flaky")
    expect(graph_node(page, flaky)).to_have_attribute("data-phase", "FAILED")
    panel = open_node(page, flaky)
    attempts = panel.locator("li[data-attempt]")
    expect(attempts).to_have_count(3)
    # Attempts that were retried end RETRYABLE_FAILED (as their task events say), the last FAILED.
    for retry in range(2):
        attempt = panel.locator(f'li[data-attempt="{retry}"]')
        expect(attempt).to_have_attribute("data-phase", re.compile("^(RETRYABLE_)?FAILED$"))
    expect(panel.locator('li[data-attempt="2"]')).to_have_attribute("data-phase", "FAILED")
    # The traceback, as the task raised it.
    expect(panel.get_by_text(re.compile("Traceback")).first).to_be_visible()
    expect(
        panel.get_by_text(re.compile("ValueError: console-test broken on purpose with x=7")).first
    ).to_be_visible()
    console.shot(page, "execution-failing")


def terminate_with_cause(page: Page) -> None:
    """Terminates from the page as a person does: the button opens the page's own dialog, the
    cause goes into its field, and its confirm button sends the action. The page then goes to
    the answer's URL: waiting for that navigation keeps the test's next one from racing it."""
    page.locator('button[data-action="terminate"]').first.click()
    dialog = page.locator("dialog#terminate-dialog")
    dialog.locator("#terminate-cause").fill(CAUSE)
    with page.expect_navigation(timeout=30_000):
        dialog.locator('button[data-confirm="terminate"]').click()


def test_terminate_the_sleeper(console: Console, page: Page) -> None:
    name = console.runs["sleeper"].name
    console.wait_phase(name, {"RUNNING"})
    open_page(page, console.execution_url(name))
    terminate_with_cause(page)
    assert console.wait_phase(name, TERMINAL, timeout=60) == "ABORTED"
    cause = console.execution(name)["closure"].get("abortMetadata", {}).get("cause", "")
    assert CAUSE in cause, cause
    open_page(page, console.execution_url(name))
    expect(header_phase(page)).to_have_attribute("data-phase", "ABORTED")
    expect(page.get_by_text(CAUSE).first).to_be_visible()
    console.shot(page, "execution-terminated")


def test_approve_the_gate(console: Console, page: Page) -> None:
    name = console.runs["gated"].name
    console.wait_phase(name, {"RUNNING"})
    # Wait until the run reaches the gate: every node before it has succeeded.
    deadline = time.monotonic() + RUN_TIMEOUT_S
    (gate,) = [i for i, n in console.compiled_nodes(name).items() if "gateNode" in n]
    while console.node_executions(name).get(gate, {}).get("closure", {}).get("phase") != "RUNNING":
        assert time.monotonic() < deadline, console.node_executions(name)
        time.sleep(0.2)
    open_page(page, console.execution_url(name))
    expect(graph_node(page, gate)).to_have_attribute("data-phase", "RUNNING")
    panel = open_node(page, gate)
    console.shot(page, "execution-gate")
    # The page reloads on the gate's panel once the signal is set.
    with page.expect_navigation(timeout=30_000):
        panel.locator('button[data-action="approve"]').first.click()
    assert console.wait_phase(name, TERMINAL) == "SUCCEEDED"
    assert console.remote.wait(console.runs["gated"]) == "published 101"
    open_page(page, console.execution_url(name))
    expect(header_phase(page)).to_have_attribute("data-phase", "SUCCEEDED")
    expect(graph_node(page, gate)).to_have_attribute("data-phase", "SUCCEEDED")
    console.shot(page, "execution-gate-approved")


def fill_input(page: Page, name: str, value: str) -> None:
    """Fills the launch form's input `name`, found as a user finds it: by its label."""
    field = page.locator(f'form [name="{name}"]')
    if field.count() != 1:
        field = page.get_by_label(re.compile(rf"^\s*{re.escape(name)}\b"))
    tag = field.evaluate("e => e.tagName.toLowerCase() + ':' + (e.type || '')")
    if tag == "select:select-one":
        field.select_option(value)
    elif tag == "input:checkbox":
        field.set_checked(value == "true")
    else:
        field.fill(value)


def test_launch_the_typed_workflow_from_the_form(console: Console, page: Page) -> None:
    lp = f"{MODULE}.typed"
    version = console.registration.version
    url = (
        f"{console.base}/console/projects/{PROJECT}/domains/{DOMAIN}"
        f"/launchPlans/{lp}/launch?version={version}"
    )
    open_page(page, url)
    values = {
        "count": "4",
        "ratio": "2.5",
        "title": "from the form",
        "loud": "true",
        "color": "blue",
        "values": "[1, 2, 3]",
        "point": '{"x": 3, "y": 4}',
    }
    for field, value in values.items():
        fill_input(page, field, value)
    console.shot(page, "launch-form")
    page.locator('[data-action="launch"]').first.click()
    page.wait_for_url(re.compile(r".*/executions/[^/?]+(\?.*)?$"))
    name = urllib.parse.urlparse(page.url).path.rsplit("/", 1)[-1]
    console.succeeded(name)
    expected = "FROM THE FORM: COUNT=4 RATIO=2.5 COLOR=BLUE SUM=6 POINT=(3,4)"
    execution = Execution(PROJECT, DOMAIN, name)
    assert expected in json.dumps(console.remote.outputs(execution))
    open_page(page, console.execution_url(name))
    expect(header_phase(page)).to_have_attribute("data-phase", "SUCCEEDED")
    expect(page.locator('div.value[data-name="o0"]').first).to_contain_text(expected)
    console.shot(page, "execution-launched")
