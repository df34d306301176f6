"""Workflows whose tasks run on agents: flytekit's own FileSensor (task type `sensor`, served
by `pyflyte serve agent`) and tasks of the test agent's types (tests/agents/counting_agent.py),
authored as flytekit authors any agent task: a `PythonTask` of the agent's type whose `custom`
field carries its settings. Registered with `pyflyte register`."""

from __future__ import annotations

from typing import Any

from flytekit import task, workflow
from flytekit.configuration import SerializationSettings
from flytekit.core.base_task import PythonTask
from flytekit.core.interface import Interface
from flytekit.sensor.file_sensor import FileSensor

wait_for_file = FileSensor(name="agent_flows.wait_for_file")


@task
def after_the_file(path: str) -> str:
    with open(path) as f:
        return f"read: {f.read().strip()}"


@workflow
def sensor_wf(path: str) -> str:
    waited = wait_for_file(path=path)
    after = after_the_file(path=path)
    waited >> after
    return after


class AgentTask(PythonTask):  # type: ignore[misc]
    """A task the agent of `task_type` runs: x in, o0 out."""

    def __init__(self, name: str, task_type: str, fail: bool = False) -> None:
        super().__init__(
            task_type=task_type,
            name=name,
            task_config=None,
            interface=Interface(inputs={"x": int}, outputs={"o0": int}),
        )
        self._fail = fail

    def get_custom(self, settings: SerializationSettings) -> dict[str, Any]:
        return {"fail": self._fail}


count = AgentTask("agent_flows.count", "counting_task")
count_and_fail = AgentTask("agent_flows.count_and_fail", "counting_task", fail=True)
echo = AgentTask("agent_flows.echo", "echo_task")


@task
def plus_one(x: int) -> int:
    return x + 1


@workflow
def counting_wf(x: int) -> int:
    return plus_one(x=count(x=x))


@workflow
def failing_wf(x: int) -> int:
    return count_and_fail(x=x)


@workflow
def echo_wf(x: int) -> int:
    return echo(x=x)
