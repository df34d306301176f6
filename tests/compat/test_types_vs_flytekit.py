"""Alula's type engine against flytekit's: literal types, literals and read-back, both ways.

flytekit is the oracle. Anything we deliberately do not reproduce byte for byte is listed in
ALLOWED_DIFFERENCES with its reason, and normalised away in exactly one function (`normalise`).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import typing
from typing import Annotated, Any

import msgpack
import pandas as pd
import pytest
from flyteidl.core import literals_pb2, types_pb2
from flytekit.core.context_manager import FlyteContextManager
from flytekit.core.type_engine import TypeEngine as FlytekitEngine
from flytekit.models.literals import Literal as FlytekitLiteral
from flytekit.types.directory import FlyteDirectory as FlytekitDirectory
from flytekit.types.file import FlyteFile as FlytekitFile
from flytekit.types.structured import StructuredDataset as FlytekitDataset
from google.protobuf import json_format

import alula._native
from alula.types import FlyteDirectory, FlyteFile, StructuredDataset, TypeEngine, kwtypes

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sdk"))
from test_types_cases import VALUE_CASES  # noqa: E402

# Every way our output may differ from flytekit's, and why. `normalise` applies these and
# nothing else.
ALLOWED_DIFFERENCES = {
    "uri": "Files, folders, data sets and pickles are written to a fresh random path under each "
    "engine's own raw-output folder; every `uri` is replaced by a placeholder.",
    "msgpack-uri": "A dataclass holding a file or data set has its URI inside the msgpack bytes; "
    "such binaries are compared decoded, with their URIs replaced.",
}

URI = "<uri>"


def normalise(message: Any, with_uris: bool = False) -> Any:
    """A JSON message with the allowed differences taken out."""
    if isinstance(message, dict):
        out = {}
        for key, value in message.items():
            if key in ("uri", "path") and isinstance(value, str) and with_uris:
                out[key] = URI
            elif key == "binary" and with_uris:
                data = msgpack.unpackb(base64.b64decode(value["value"]), strict_map_key=False)
                out[key] = {"decoded": normalise(data, True), "tag": value["tag"]}
            else:
                out[key] = normalise(value, with_uris)
        return out
    if isinstance(message, list):
        return [normalise(item, with_uris) for item in message]
    return message


def test_normalise_hides_only_uris(tmp_path: Any) -> None:
    (tmp_path / "f").write_text("x")
    literal = TypeEngine.to_literal(str(tmp_path / "f"), FlyteFile["csv"])
    moved = json.loads(json.dumps(literal))
    moved["scalar"]["blob"]["uri"] = "/elsewhere/f"
    assert moved != literal and normalise(moved, True) == normalise(literal, True)
    moved["scalar"]["blob"]["metadata"]["type"]["format"] = "tsv"
    assert normalise(moved, True) != normalise(literal, True)
    packed = TypeEngine.to_literal({"a": 1}, dict)
    changed = TypeEngine.to_literal({"a": 2}, dict)
    assert normalise(packed, True) != normalise(changed, True)


def flytekit_literal_type(t: Any) -> dict[str, Any]:
    return json_format.MessageToDict(FlytekitEngine.to_literal_type(t).to_flyte_idl())


def flytekit_literal(value: Any, t: Any) -> dict[str, Any]:
    ctx = FlyteContextManager.current_context()
    literal = FlytekitEngine.to_literal(ctx, value, t, FlytekitEngine.to_literal_type(t))
    return json_format.MessageToDict(literal.to_flyte_idl())


def flytekit_reads(literal: dict[str, Any], t: Any) -> Any:
    ctx = FlyteContextManager.current_context()
    idl = json_format.ParseDict(literal, literals_pb2.Literal())
    return FlytekitEngine.to_python_value(ctx, FlytekitLiteral.from_flyte_idl(idl), t)


def encodes(literal: dict[str, Any], full_name: str = "flyteidl.core.Literal") -> None:
    """The native core encodes the dict, and protobuf decodes those bytes back to the same dict."""
    data = alula._native.message_from_json(full_name, json.dumps(literal))
    message = {
        "flyteidl.core.Literal": literals_pb2.Literal,
        "flyteidl.core.LiteralType": types_pb2.LiteralType,
    }
    decoded = message[full_name].FromString(data)
    assert json_format.MessageToDict(decoded) == literal


@pytest.mark.parametrize(
    ("t", "value"), [c[1:] for c in VALUE_CASES], ids=[c[0] for c in VALUE_CASES]
)
def test_literal_type_matches_flytekit(t: Any, value: Any) -> None:
    ours = TypeEngine.to_literal_type(t)
    encodes(ours, "flyteidl.core.LiteralType")
    assert normalise(ours) == flytekit_literal_type(t)


@pytest.mark.parametrize(
    ("t", "value"), [c[1:] for c in VALUE_CASES], ids=[c[0] for c in VALUE_CASES]
)
def test_literal_matches_flytekit_and_reads_back(t: Any, value: Any) -> None:
    ours = TypeEngine.to_literal(value, t)
    encodes(ours)
    assert ours == flytekit_literal(value, t)
    assert TypeEngine.to_python_value(ours, t) == expected_read_back(value, t)


@pytest.mark.parametrize(
    ("t", "value"), [c[1:] for c in VALUE_CASES], ids=[c[0] for c in VALUE_CASES]
)
def test_flytekit_reads_our_literal(t: Any, value: Any) -> None:
    assert flytekit_reads(TypeEngine.to_literal(value, t), t) == expected_read_back(value, t)


def expected_read_back(value: Any, t: Any) -> Any:
    """Literals carry datetimes in UTC: a naive datetime reads back as aware UTC, as in flytekit."""
    import datetime

    if t is datetime.datetime and value.tzinfo is None:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value


@pytest.fixture()
def sample_file(tmp_path: Any) -> str:
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    return str(path)


FILE_TYPES = [
    ("file", FlyteFile, FlytekitFile),
    ("file-csv", FlyteFile["csv"], FlytekitFile["csv"]),
    ("pathlike", os.PathLike, os.PathLike),
    ("directory", FlyteDirectory, FlytekitDirectory),
    ("directory-csv", FlyteDirectory["csv"], FlytekitDirectory["csv"]),
]


@pytest.mark.parametrize(
    ("ours", "theirs"), [c[1:] for c in FILE_TYPES], ids=[c[0] for c in FILE_TYPES]
)
def test_blob_types_match_flytekit(ours: Any, theirs: Any, sample_file: str) -> None:
    assert TypeEngine.to_literal_type(ours) == flytekit_literal_type(theirs)
    is_dir = isinstance(ours, type) and issubclass(ours, FlyteDirectory)
    path = os.path.dirname(sample_file) if is_dir else sample_file
    literal = TypeEngine.to_literal(path, ours)
    encodes(literal)
    assert normalise(literal, True) == normalise(flytekit_literal(path, theirs), True)
    read = TypeEngine.to_python_value(literal, ours)
    assert isinstance(read, FlyteFile if ours is os.PathLike else ours)
    assert read.path != path, "the data is copied into the raw-output folder"
    back = flytekit_reads(literal, theirs)
    assert os.path.basename(os.fspath(back)) == os.path.basename(read.path)
    if isinstance(read, FlyteFile):
        with read.open() as copied:
            assert copied.read() == "a,b\n1,2\n"


FRAME = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
DATASET_TYPES = [
    ("dataframe", pd.DataFrame, pd.DataFrame),
    (
        "dataframe-columns",
        Annotated[pd.DataFrame, kwtypes(a=int)],
        Annotated[pd.DataFrame, kwtypes(a=int)],
    ),
    ("dataset", StructuredDataset, FlytekitDataset),
    (
        "dataset-columns",
        Annotated[StructuredDataset, kwtypes(b=str)],
        Annotated[FlytekitDataset, kwtypes(b=str)],
    ),
]


@pytest.mark.parametrize(
    ("ours", "theirs"), [c[1:] for c in DATASET_TYPES], ids=[c[0] for c in DATASET_TYPES]
)
def test_datasets_match_flytekit(ours: Any, theirs: Any) -> None:
    assert TypeEngine.to_literal_type(ours) == flytekit_literal_type(theirs)
    is_frame = (
        typing.get_origin(ours) is not Annotated
        and ours is pd.DataFrame
        or (typing.get_origin(ours) is Annotated and ours.__origin__ is pd.DataFrame)
    )
    value = FRAME if is_frame else StructuredDataset(dataframe=FRAME)
    their_value = FRAME if is_frame else FlytekitDataset(dataframe=FRAME)
    literal = TypeEngine.to_literal(value, ours)
    encodes(literal)
    assert normalise(literal, True) == normalise(flytekit_literal(their_value, theirs), True)
    read = TypeEngine.to_python_value(literal, ours)
    frame = read if is_frame else read.open(pd.DataFrame).all()
    theirs_read = flytekit_reads(literal, theirs)
    their_frame = theirs_read if is_frame else theirs_read.open(pd.DataFrame).all()
    pd.testing.assert_frame_equal(frame, their_frame)
    columns = [
        c["name"]
        for c in TypeEngine.to_literal_type(ours)["structuredDatasetType"].get("columns", [])
    ]
    pd.testing.assert_frame_equal(frame, FRAME[columns] if columns else FRAME)


class Opaque:
    """A type with no transformer: both engines fall back to pickling it."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.n == self.n


@pytest.mark.parametrize("t", [bytes, Opaque, list[Opaque]])
def test_pickle_fallback_matches_flytekit(t: Any) -> None:
    value: Any = {bytes: b"\x00raw", Opaque: Opaque(3)}.get(t, [Opaque(1), Opaque(2)])
    assert TypeEngine.to_literal_type(t) == flytekit_literal_type(t)
    literal = TypeEngine.to_literal(value, t)
    encodes(literal)
    assert normalise(literal, True) == normalise(flytekit_literal(value, t), True)
    assert TypeEngine.to_python_value(literal, t) == value
    assert flytekit_reads(literal, t) == value


def test_named_file_formats_match_flytekit() -> None:
    import flytekit.types.directory as their_dirs
    import flytekit.types.file as their_files

    import alula.types.directory as our_dirs
    import alula.types.file as our_files

    pairs = [(our_files, their_files, FlytekitFile), (our_dirs, their_dirs, FlytekitDirectory)]
    for ours, theirs, base in pairs:
        names = [n for n, o in vars(theirs).items() if isinstance(o, type) and issubclass(o, base)]
        assert len(names) > 2
        for name in names:
            their_type = flytekit_literal_type(getattr(theirs, name))
            assert TypeEngine.to_literal_type(getattr(ours, name)) == their_type, name


def test_optional_file_union_tag_matches_flytekit() -> None:
    assert TypeEngine.to_literal_type(FlyteFile | None) == flytekit_literal_type(
        FlytekitFile | None
    )


def test_dataclass_with_files_matches_flytekit(sample_file: str) -> None:
    import dataclasses

    def shape(file_type: Any, dir_type: Any, dataset_type: Any) -> Any:
        fields = [("f", file_type), ("d", dir_type), ("s", dataset_type)]
        return dataclasses.make_dataclass("Bundle", fields)

    ours_t = shape(FlyteFile, FlyteDirectory, StructuredDataset)
    theirs_t = shape(FlytekitFile, FlytekitDirectory, FlytekitDataset)
    folder = os.path.dirname(sample_file)
    assert TypeEngine.to_literal_type(ours_t) == flytekit_literal_type(theirs_t)
    literal = TypeEngine.to_literal(
        ours_t(sample_file, folder, StructuredDataset(dataframe=FRAME)), ours_t
    )
    encodes(literal)
    their_value = theirs_t(
        FlytekitFile(sample_file), FlytekitDirectory(folder), FlytekitDataset(dataframe=FRAME)
    )
    assert normalise(literal, True) == normalise(flytekit_literal(their_value, theirs_t), True)
    back = flytekit_reads(literal, theirs_t)
    with open(back.f) as copied:
        assert copied.read() == "a,b\n1,2\n"
    pd.testing.assert_frame_equal(back.s.open(pd.DataFrame).all(), FRAME)
    read = TypeEngine.to_python_value(literal, ours_t)
    assert sorted(os.listdir(read.d)) == ["data.csv"]
    pd.testing.assert_frame_equal(read.s.open(pd.DataFrame).all(), FRAME)


def test_pydantic_models_match_flytekit() -> None:
    pydantic = pytest.importorskip("pydantic")
    from test_types_cases import Color

    class Model(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        n: int
        tags: list[str] = []
        color: Color = Color.RED
        child: dict[str, float] | None = None

    value = Model(n=1, tags=["a"], color=Color.GREEN, child={"x": 0.5})
    assert TypeEngine.to_literal_type(Model) == flytekit_literal_type(Model)
    literal = TypeEngine.to_literal(value, Model)
    encodes(literal)
    assert literal == flytekit_literal(value, Model)
    assert TypeEngine.to_python_value(literal, Model) == value
    assert flytekit_reads(literal, Model) == value
