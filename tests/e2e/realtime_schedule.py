"""Real time, with the real flytekit: a `FixedRate(1 minute)` launch plan registered with
`pyflyte register --activate-launchplans` is launched by the server's scheduler within 70 s.

Not in the default suite (its name does not match `test_*.py`, so `pytest tests` skips the
file: it waits a real minute). The schedule logic itself is covered under a fake clock by
`rust/admin/tests/schedules.rs`. Run it on its own:

    .venv/bin/python -m pytest -q -p no:cacheprovider tests/e2e/realtime_schedule.py
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import grpc
from conftest import start_server
from flyteidl.admin import common_pb2, execution_pb2
from flyteidl.service import admin_pb2_grpc

PYFLYTE = Path(sys.executable).parent / "pyflyte"
PROJECT, DOMAIN = "flytesnacks", "development"

FLOW = """
from datetime import datetime, timedelta

from flytekit import FixedRate, LaunchPlan, task, workflow


@task
def stamp(t: datetime) -> str:
    return t.isoformat()


@workflow
def ticking(kickoff: datetime) -> str:
    return stamp(t=kickoff)


every_minute = LaunchPlan.get_or_create(
    ticking,
    name="every_minute",
    schedule=FixedRate(duration=timedelta(minutes=1), kickoff_time_input_arg="kickoff"),
)
"""


def test_fixed_rate_launch_plan_runs_within_70_seconds(tmp_path: Path) -> None:
    running = start_server(tmp_path, propeller=False)
    try:
        flows = tmp_path / "src" / "flows"
        flows.mkdir(parents=True)
        (flows / "__init__.py").write_text("")
        (flows / "ticking.py").write_text(FLOW)
        registered = subprocess.run(
            [
                PYFLYTE,
                "--config",
                running.server.config_file,
                "register",
                "--version",
                "rt-v1",
                "--activate-launchplans",
                "flows",
            ],
            cwd=tmp_path / "src",
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert registered.returncode == 0, registered.stdout + registered.stderr
        activated = time.monotonic()

        channel = grpc.insecure_channel(f"127.0.0.1:{running.server.grpc_port}")
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        scheduled: list[execution_pb2.Execution] = []
        while time.monotonic() - activated < 70 and not scheduled:
            time.sleep(2)
            listed = admin.ListExecutions(
                common_pb2.ResourceListRequest(
                    id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN),
                    limit=100,
                )
            )
            scheduled = [
                e
                for e in listed.executions
                if e.spec.launch_plan.name == "every_minute"
                and e.spec.metadata.mode == execution_pb2.ExecutionMetadata.SCHEDULED
            ]
        assert scheduled, (
            f"no scheduled execution {time.monotonic() - activated:.0f} s after activation:\n"
            + running.server.log_file.read_text()[-4000:]
        )
        execution = scheduled[0]
        assert len(scheduled) == 1
        assert execution.spec.metadata.HasField("scheduled_at")
        channel.close()
    finally:
        running.stop()
