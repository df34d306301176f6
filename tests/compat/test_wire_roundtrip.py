"""Real flytekit/flyteidl messages decode in Rust and re-encode to the same message.

Each corpus sample is decoded by the prost types generated from proto/ (through
alula._native) and encoded again. The result must be byte-identical, or — where only the
order of fields differs (prost writes oneof fields after the others) — decode in Python to a
message equal to the original. Any field our types lack would be dropped and show up here.
The JSON mapping (what the REST gateway speaks) is checked against protobuf's json_format.
"""

from __future__ import annotations

import json

import pytest
from corpus import Sample, build_corpus
from google.protobuf import json_format

import alula._native as native


@pytest.fixture(scope="module")
def corpus() -> list[Sample]:
    return build_corpus()


def test_corpus_is_broad(corpus: list[Sample]) -> None:
    kinds = {s.full_name for s in corpus}
    for required in (
        "flyteidl.core.TaskTemplate",
        "flyteidl.core.WorkflowTemplate",
        "flyteidl.admin.TaskSpec",
        "flyteidl.admin.WorkflowSpec",
        "flyteidl.admin.LaunchPlan",
        "flyteidl.admin.ExecutionCreateRequest",
        "flyteidl.event.WorkflowExecutionEvent",
        "flyteidl.event.NodeExecutionEvent",
        "flyteidl.event.TaskExecutionEvent",
        "flyteidl.core.Literal",
    ):
        assert required in kinds, required
    blob = b"".join(s.message.SerializeToString() for s in corpus)
    # Features the samples must exercise (checked on the encoded bytes' field content).
    wf_nodes = [
        n
        for s in corpus
        if s.full_name == "flyteidl.core.WorkflowTemplate"
        for n in s.message.nodes
    ]
    targets = {n.WhichOneof("target") for n in wf_nodes}
    assert {"task_node", "workflow_node", "branch_node", "gate_node", "array_node"} <= targets
    literal_kinds = {
        s.message.scalar.WhichOneof("value")
        for s in corpus
        if s.full_name == "flyteidl.core.Literal" and s.message.HasField("scalar")
    }
    assert {"primitive", "binary", "blob", "structured_dataset", "union"} <= literal_kinds
    assert b"msgpack" in blob  # dataclasses travel as msgpack binaries


def test_binary_round_trip(corpus: list[Sample]) -> None:
    failures = []
    identical = 0
    for sample in corpus:
        original = sample.message.SerializeToString()
        ours = native.normalize_message(sample.full_name, original)
        if ours == original:
            identical += 1
            continue
        reparsed = type(sample.message).FromString(ours)
        if reparsed != sample.message:
            failures.append(f"{sample.label} ({sample.full_name}): re-encoded message differs")
    assert not failures, "\n".join(failures)
    # Byte identity is the normal case; field reordering is the only allowed difference.
    assert identical >= len(corpus) // 2, f"only {identical}/{len(corpus)} byte-identical"


def test_json_mapping_matches_protobuf(corpus: list[Sample]) -> None:
    failures = []
    for sample in corpus:
        expected = json_format.MessageToDict(sample.message)
        got = json.loads(
            native.message_to_json(sample.full_name, sample.message.SerializeToString())
        )
        if got != expected:
            failures.append(
                f"{sample.label} ({sample.full_name}):\n  ours   {got}\n  python {expected}"
            )
    assert not failures, "\n".join(failures[:10])


def test_json_from_protobuf_parses(corpus: list[Sample]) -> None:
    failures = []
    for sample in corpus:
        text = json_format.MessageToJson(sample.message)
        encoded = native.message_from_json(sample.full_name, text)
        if type(sample.message).FromString(encoded) != sample.message:
            failures.append(f"{sample.label} ({sample.full_name})")
    assert not failures, "\n".join(failures)


def test_invalid_bytes_name_the_message() -> None:
    with pytest.raises(ValueError, match="flyteidl.core.TaskTemplate"):
        native.normalize_message("flyteidl.core.TaskTemplate", b"\x0a\xff\xff")
    with pytest.raises(ValueError, match="no message named"):
        native.normalize_message("flyteidl.core.Nope", b"")
