"""Secrets requested by tasks reach them through propeller's local plugins: from the server's
secrets folder (`ALULA_SECRETS_DIR/<group>/<key>`) or its environment (`_FSEC_<GROUP>_<KEY>`),
read in the task with `alula.current_context().secrets`; a secret found nowhere fails the
attempt with an error naming it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import RunningServer, start_server

from alula.remote import ExecutionFailed, Remote

FLOWS = Path(__file__).parent / "flows" / "secret_flows.py"
TIMEOUT_S = 60


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    work = tmp_path_factory.mktemp("alula-secrets")
    folder = work / "secrets"
    (folder / "files").mkdir(parents=True)
    (folder / "files" / "token").write_text("from-folder\n")
    running: RunningServer = start_server(
        work,
        propeller=True,
        extra_env={"ALULA_SECRETS_DIR": str(folder), "_FSEC_ENVS_PASSWORD": "from-env"},
    )
    try:
        remote = Remote(f"127.0.0.1:{running.server.grpc_port}")
        remote.register(FLOWS)
        yield remote
    finally:
        code = running.stop()
    assert code == 0, running.server.log_file.read_text()


def test_a_task_reads_its_secrets(remote: Remote) -> None:
    execution = remote.execute("with_secrets", {})
    assert remote.wait(execution, timeout=TIMEOUT_S) == "from-folder+from-env"


def test_a_missing_secret_fails_naming_it(remote: Remote) -> None:
    execution = remote.execute("with_a_missing_secret", {})
    with pytest.raises(ExecutionFailed) as raised:
        remote.wait(execution, timeout=TIMEOUT_S)
    assert raised.value.phase == "FAILED"
    assert '"absent"' in raised.value.message and '"nothing"' in raised.value.message
