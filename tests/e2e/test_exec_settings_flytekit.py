"""An execution's settings reach its tasks and show on GetExecution, with the real flytekit:
`FlyteRemote.execute` with envs and labels over a launch plan's labels and project-domain
WORKFLOW_EXECUTION_CONFIG attributes, against admin + propeller."""

from __future__ import annotations

import pytest
from conftest import RunningServer, pyflyte_register
from flyteidl.admin import common_pb2
from flyteidl.admin import matchable_resource_pb2 as mr
from flyteidl.admin import project_domain_attributes_pb2 as pda
from flyteidl.core import literals_pb2
from flytekit.core.options import Options
from flytekit.models.common import Labels
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.remote import FlyteRemote

PROJECT, DOMAIN, VERSION = "flytesnacks", "development", "settings-v1"
TIMEOUT_S = 180

FLOW = """
import os

from flytekit import LaunchPlan, task, workflow
from flytekit.models.common import Labels


@task
def env_of(names: list[str]) -> str:
    return ",".join(os.environ.get(n, "-") for n in names)


@workflow
def read_env(names: list[str]) -> str:
    return env_of(names=names)


with_labels = LaunchPlan.get_or_create(read_env, name="with_labels", labels=Labels({"from": "lp"}))
"""


@pytest.fixture(scope="module")
def remote(alula_cluster: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> FlyteRemote:
    root = tmp_path_factory.mktemp("src")
    (root / "settings_flows").mkdir()
    (root / "settings_flows" / "__init__.py").write_text("")
    (root / "settings_flows" / "flow.py").write_text(FLOW)
    return pyflyte_register(alula_cluster.server.config_file, root, "settings_flows", VERSION)


def test_envs_and_labels_reach_the_task_and_show_on_the_execution(remote: FlyteRemote) -> None:
    # Project-domain attributes: the last level before the server's defaults.
    config = mr.WorkflowExecutionConfig(
        envs=common_pb2.Envs(values=[literals_pb2.KeyValuePair(key="FROM_PD", value="pd")]),
        annotations=common_pb2.Annotations(values={"note": "pd"}),
    )
    remote.client.raw.update_project_domain_attributes(
        pda.ProjectDomainAttributesUpdateRequest(
            attributes=pda.ProjectDomainAttributes(
                project=PROJECT,
                domain=DOMAIN,
                matching_attributes=mr.MatchingAttributes(workflow_execution_config=config),
            )
        )
    )
    names = ["GREETING", "FROM_PD", "FLYTE_INTERNAL_EXECUTION_ID"]

    lp = remote.fetch_launch_plan(name="with_labels", version=VERSION)
    plain = remote.wait(
        remote.execute(lp, inputs={"names": names}), timeout=TIMEOUT_S, poll_interval=0.2
    )
    assert plain.closure.phase == WorkflowExecutionPhase.SUCCEEDED, plain.error
    # Nothing in the request: the launch plan's labels, the attributes' envs and annotations.
    assert plain.outputs["o0"] == f"-,pd,{plain.id.name}"
    assert plain.spec.labels.values == {"from": "lp"}
    assert plain.spec.annotations.values == {"note": "pd"}

    execution = remote.execute(
        lp,
        inputs={"names": names},
        envs={"GREETING": "hello"},
        options=Options(labels=Labels({"team": "data"})),
    )
    done = remote.wait(execution, timeout=TIMEOUT_S, poll_interval=0.2)
    assert done.closure.phase == WorkflowExecutionPhase.SUCCEEDED, done.error
    # The request's envs replace the attributes' whole (maps are not merged across levels).
    assert done.outputs["o0"] == f"hello,-,{done.id.name}"
    spec = remote.client.get_execution(done.id).spec
    assert spec.envs.envs == {"GREETING": "hello"}
    assert spec.labels.values == {"team": "data"}
    assert spec.annotations.values == {"note": "pd"}
