"""`alula-execute`: one task attempt in pyflyte-execute's layout, as an executor runs it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from alula import _native
from alula.core.local import _kinds
from alula.execute import INDEX_VAR_NAME, run


def _args(inputs: Path, out: Path, *loader: str) -> list[str]:
    return [
        "--inputs", str(inputs), "--output-prefix", str(out),
        "--raw-output-data-prefix", str(out / "raw"), "--checkpoint-path", "",
        "--prev-checkpoint", "", "--resolver", "alula.core.resolver.default_task_resolver",
        "--", "task-module", "local_samples", *loader,
    ]  # fmt: skip


def _write_inputs(path: Path, values: dict[str, object], types: dict[str, object]) -> Path:
    path.write_bytes(_native.encode_values(values, _kinds(types)))
    return path


def test_a_task_writes_its_outputs(tmp_path: Path) -> None:
    inputs = _write_inputs(tmp_path / "inputs.pb", {"x": 2, "y": 40}, {"x": int, "y": int})
    assert run(_args(inputs, tmp_path / "out", "task-name", "add"), map_task=False) == 0
    outputs = (tmp_path / "out" / "outputs.pb").read_bytes()
    assert _native.decode_values(outputs, _kinds({"o0": int})) == {"o0": 42}


def test_a_failing_task_writes_an_error_document(tmp_path: Path) -> None:
    inputs = _write_inputs(tmp_path / "inputs.pb", {"x": -3}, {"x": int})
    assert run(_args(inputs, tmp_path / "out", "task-name", "fragile"), map_task=False) == 0
    assert not (tmp_path / "out" / "outputs.pb").exists()
    doc = json.loads(
        _native.message_to_json(
            "flyteidl.core.ErrorDocument", (tmp_path / "out" / "error.pb").read_bytes()
        )
    )
    assert doc["error"]["code"] == "USER:ValueError"
    assert doc["error"]["origin"] == "USER"
    assert "negative input -3" in doc["error"]["message"]


def test_a_dynamic_task_writes_its_workflow(tmp_path: Path) -> None:
    inputs = _write_inputs(tmp_path / "inputs.pb", {"n": 3}, {"n": int})
    assert run(_args(inputs, tmp_path / "out", "task-name", "fan_out"), map_task=False) == 0
    spec = json.loads(
        _native.message_to_json(
            "flyteidl.core.DynamicJobSpec", (tmp_path / "out" / "futures.pb").read_bytes()
        )
    )
    assert [n["id"] for n in spec["nodes"]] == ["n0", "n1", "n2"]
    assert spec["tasks"][0]["id"]["name"] == "local_samples.square"


def test_a_map_element_picks_its_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = _write_inputs(
        tmp_path / "inputs.pb", {"x": [5, 6, 7], "y": 100}, {"x": list[int], "y": int}
    )
    monkeypatch.setenv(INDEX_VAR_NAME, "MY_INDEX")
    monkeypatch.setenv("MY_INDEX", "2")
    loader = ["vars", "y", "resolver", "alula.core.resolver.default_task_resolver"]
    args = _args(inputs, tmp_path / "out", "task-name", "add")
    args[args.index("--resolver") + 1] = "alula.core.map_task.map_task_resolver"
    args = args[: args.index("--") + 1] + loader + args[args.index("--") + 1 :]
    assert run(args, map_task=True) == 0
    outputs = (tmp_path / "out" / "outputs.pb").read_bytes()
    assert _native.decode_values(outputs, _kinds({"o0": int})) == {"o0": 107}
    assert os.environ["MY_INDEX"] == "2"
