"""`Remote.execute` with local files and folders among the inputs: the client uploads them
through the data proxy (CreateUploadLocation, then a PUT to the signed URL), so the literal
the server stores names the server's own storage, and its tasks read them there."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import RunningServer

from alula.remote import Remote
from alula.types import FlyteDirectory, FlyteFile

FLOWS = textwrap.dedent(
    """
    import os

    from alula import task, workflow
    from alula.types import FlyteDirectory, FlyteFile


    @task
    def describe(f: FlyteFile, d: FlyteDirectory) -> str:
        with f.open() as src:
            text = src.read()
        names = sorted(
            os.path.relpath(os.path.join(r, n), d) for r, _, ns in os.walk(d) for n in ns
        )
        return f"{text}|{','.join(names)}"


    @workflow
    def wf(f: FlyteFile, d: FlyteDirectory) -> str:
        return describe(f=f, d=d)
    """
)


@pytest.fixture(scope="module")
def remote(alula_cluster: RunningServer) -> Remote:
    return Remote(f"127.0.0.1:{alula_cluster.server.grpc_port}")


def test_local_inputs_are_uploaded_through_the_data_proxy(
    remote: Remote, alula_cluster: RunningServer, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "upload_flows.py").write_text(FLOWS)
    remote.register(flows / "upload_flows.py")

    data = tmp_path / "data"
    data.mkdir()
    (data / "note.txt").write_text("from the client")
    folder = data / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("1,2")
    (folder / "sub" / "b.csv").write_text("3,4")

    execution = remote.execute(
        "wf", {"f": FlyteFile(str(data / "note.txt")), "d": FlyteDirectory(str(folder))}
    )
    stored = remote.call("GetExecutionData", {"id": execution.id_json()})
    literals = stored["fullInputs"]["literals"]
    uris = {name: literals[name]["scalar"]["blob"]["uri"] for name in ("f", "d")}
    storage = alula_cluster.server.storage_root
    uploads = f"{storage}/uploads/{remote.project}/{remote.domain}/"
    for name, uri in uris.items():
        assert uri.removeprefix("file://").startswith(uploads), (name, json.dumps(literals))
    assert Path(uris["f"].removeprefix("file://")).read_text() == "from the client"
    assert Path(uris["d"].removeprefix("file://"), "sub", "b.csv").read_text() == "3,4"

    # The server's task read what was uploaded.
    assert remote.wait(execution, timeout=120) == "from the client|a.csv,sub/b.csv"
