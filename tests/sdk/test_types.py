"""The type engine on its own: errors for bad input, round trips, hashes, user transformers."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from typing import Annotated, Any, NamedTuple

import pytest

import alula._native
from alula.types import (
    FlyteDirectory,
    FlyteFile,
    HashMethod,
    TypeEngine,
    TypeTransformer,
    TypeTransformerFailedError,
)
from alula.types.context import raw_output_dir, set_raw_output_dir
from alula.types.transformer import Json, primitive_literal, scalar_of

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_types_cases import VALUE_CASES, Color, Point  # noqa: E402


def encode(literal: Json) -> bytes:
    return alula._native.message_from_json("flyteidl.core.Literal", json.dumps(literal))


@pytest.mark.parametrize(
    ("value", "t", "named"),
    [
        ("3", int, ["<class 'int'>", "'3'", "<class 'str'>"]),
        (3, float, ["<class 'float'>", "<class 'int'>"]),
        (True, int, ["<class 'int'>", "<class 'bool'>"]),
        (1.5, datetime.timedelta, ["timedelta", "<class 'float'>"]),
        ([1, "a"], list[int], ["<class 'int'>", "'a'"]),
        ((1, 2), list[int], ["list[int]", "<class 'tuple'>"]),
        ({"a": "b"}, dict[str, int], ["<class 'int'>", "'b'"]),
        (Point(1), Color, ["Color", "Point"]),
        (2**64, int, ["64-bit", str(2**64)]),
        ({"a": object()}, dict, ["msgpack"]),
    ],
)
def test_a_value_of_the_wrong_type_is_named_with_the_expected_type(
    value: Any, t: Any, named: list[str]
) -> None:
    with pytest.raises(TypeTransformerFailedError) as error:
        TypeEngine.to_literal(value, t)
    for text in named:
        assert text in str(error.value)


@pytest.mark.parametrize("t", [tuple, tuple[int, str], NamedTuple("Pair", [("a", int)])])
def test_tuples_are_refused_by_name(t: Any) -> None:
    with pytest.raises(
        TypeTransformerFailedError, match="is not supported as a task input or output"
    ):
        TypeEngine.to_literal_type(t)


def test_a_list_needs_its_element_type() -> None:
    with pytest.raises(TypeTransformerFailedError, match="needs exactly one element type"):
        TypeEngine.to_literal_type(list)


def test_a_typed_dict_needs_str_keys() -> None:
    with pytest.raises(TypeTransformerFailedError, match=r"str keys.*key 1 of type <class 'int'>"):
        TypeEngine.to_literal({1: 2}, dict[str, int])


def test_an_unknown_enum_value_lists_the_allowed_ones() -> None:
    with pytest.raises(
        TypeTransformerFailedError, match=r"'blue' is not a value of enum Color.*'red', 'green'"
    ):
        TypeEngine.to_literal("blue", Color)
    with pytest.raises(TypeTransformerFailedError, match="'blue' is not a value of enum Color"):
        TypeEngine.to_python_value(primitive_literal("stringValue", "blue"), Color)


def test_enums_need_string_values() -> None:
    import enum

    class Numbers(enum.Enum):
        ONE = 1

    with pytest.raises(TypeTransformerFailedError, match="Numbers needs str values.*1"):
        TypeEngine.to_literal_type(Numbers)


@pytest.mark.parametrize("t", [int, list[int], Point, FlyteFile, dict[str, str]])
def test_none_is_only_accepted_where_declared_optional(t: Any) -> None:
    with pytest.raises(TypeTransformerFailedError, match=r"cannot be None: expected .*Optional"):
        TypeEngine.to_literal(None, t)
    assert TypeEngine.to_python_value(TypeEngine.to_literal(None, t | None), t | None) is None


def test_a_union_value_must_fit_exactly_one_variant() -> None:
    with pytest.raises(TypeTransformerFailedError, match="fits none of the variants"):
        TypeEngine.to_literal(1.5, int | str)

    with pytest.raises(TypeTransformerFailedError, match=r"Ambiguous union.*\[\] fits several"):
        TypeEngine.to_literal([], list[int] | list[str])


def test_reading_a_literal_of_another_kind_names_what_was_expected() -> None:
    with pytest.raises(TypeTransformerFailedError, match="expected a scalar primitive"):
        TypeEngine.to_python_value({"collection": {}}, int)
    with pytest.raises(TypeTransformerFailedError, match="expected a collection"):
        TypeEngine.to_python_value(primitive_literal("integer", "1"), list[int])


@pytest.mark.parametrize(
    ("t", "value"), [c[1:] for c in VALUE_CASES], ids=[c[0] for c in VALUE_CASES]
)
def test_values_round_trip_and_encode(t: Any, value: Any) -> None:
    literal = TypeEngine.to_literal(value, t)
    assert encode(literal)
    read = TypeEngine.to_python_value(literal, t)
    if isinstance(value, datetime.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    assert read == value


def test_an_optional_output_reads_as_its_plain_type() -> None:
    literal = TypeEngine.to_literal([1, 2], list[int] | None)
    assert "union" in literal["scalar"]
    assert TypeEngine.to_python_value(literal, list[int]) == [1, 2]


def test_hash_method_sets_the_literal_hash() -> None:
    t = Annotated[list[int], HashMethod(lambda v: f"sum-{sum(v)}")]
    literal = TypeEngine.to_literal([1, 2, 3], t)
    assert literal["hash"] == "sum-6"
    assert TypeEngine.to_literal_type(t) == TypeEngine.to_literal_type(list[int])
    assert TypeEngine.to_python_value(literal, t) == [1, 2, 3]
    assert b"sum-6" in encode(literal)


def test_files_and_directories_land_in_the_raw_output_dir(tmp_path: Any) -> None:
    previous = raw_output_dir()
    set_raw_output_dir(tmp_path / "raw")
    try:
        source = tmp_path / "in"
        source.mkdir()
        (source / "a.txt").write_text("hello")
        file_literal = TypeEngine.to_literal(FlyteFile(str(source / "a.txt")), FlyteFile["txt"])
        dir_literal = TypeEngine.to_literal(str(source), FlyteDirectory)
        read_file = TypeEngine.to_python_value(file_literal, FlyteFile["txt"])
        # A value already in raw output (an upstream task's output) is passed on, not copied.
        assert TypeEngine.to_literal(read_file, FlyteFile["txt"]) == file_literal
    finally:
        set_raw_output_dir(previous)
    for literal in (file_literal, dir_literal):
        assert literal["scalar"]["blob"]["uri"].startswith(str(tmp_path / "raw"))
    assert file_literal["scalar"]["blob"]["metadata"]["type"] == {"format": "txt"}
    assert open(read_file).read() == "hello"
    read_dir = TypeEngine.to_python_value(dir_literal, FlyteDirectory)
    assert [os.path.basename(p) for p in read_dir.listdir()] == ["a.txt"]


def test_a_missing_file_is_named() -> None:
    with pytest.raises(TypeTransformerFailedError, match="File '/no/such/file' does not exist"):
        TypeEngine.to_literal("/no/such/file", FlyteFile)


class Celsius:
    def __init__(self, degrees: float) -> None:
        self.degrees = degrees

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Celsius) and other.degrees == self.degrees


class CelsiusTransformer(TypeTransformer[Celsius]):
    def __init__(self) -> None:
        super().__init__("celsius", Celsius)

    def get_literal_type(self, t: Any) -> Json:
        return {"simple": "FLOAT"}

    def to_literal(self, value: Celsius, t: Any, expected: Json) -> Json:
        self.assert_type(t, value)
        return primitive_literal("floatValue", value.degrees)

    def to_python_value(self, literal: Json, t: Any) -> Celsius:
        return Celsius(scalar_of(literal, "primitive", t)["floatValue"])


def test_a_registered_transformer_is_used_inside_containers() -> None:
    TypeEngine.register(CelsiusTransformer())
    t = dict[str, list[Celsius] | None]
    value = {"a": [Celsius(1.5)], "b": None}
    literal = TypeEngine.to_literal(value, t)
    variant = literal["map"]["literals"]["a"]["scalar"]["union"]["type"]
    assert variant == {"collectionType": {"simple": "FLOAT"}, "structure": {"tag": "Typed List"}}
    assert TypeEngine.to_python_value(literal, t) == value


GUESSABLE = [
    int,
    float,
    str,
    bool,
    datetime.datetime,
    datetime.timedelta,
    type(None),
    list[int],
    dict[str, list[float]],
    dict,
    str | None,
    FlyteFile["csv"],
    FlyteDirectory,
]


@pytest.mark.parametrize("t", GUESSABLE)
def test_guessed_types_have_the_same_literal_type(t: Any) -> None:
    literal_type = TypeEngine.to_literal_type(t)
    assert TypeEngine.to_literal_type(TypeEngine.guess_python_type(literal_type)) == literal_type


def test_a_guessed_enum_and_dataclass_read_values() -> None:
    enum_type = TypeEngine.guess_python_type(TypeEngine.to_literal_type(Color))
    assert enum_type("green").value == "green"
    point_type = TypeEngine.guess_python_type(TypeEngine.to_literal_type(Point))
    point = TypeEngine.to_python_value(TypeEngine.to_literal(Point(2, 0.5), Point), point_type)
    assert (point.x, point.y) == (2, 0.5)


def test_literal_maps_name_the_input_at_fault() -> None:
    types = {"a": int, "b": list[str]}
    literal_map = TypeEngine.literal_map({"a": 1, "b": ["x"]}, types)
    alula._native.message_from_json("flyteidl.core.LiteralMap", json.dumps(literal_map))
    assert TypeEngine.literal_map_to_python(literal_map, types) == {"a": 1, "b": ["x"]}
    with pytest.raises(
        TypeTransformerFailedError, match=r"^'b': Expected value of type <class 'str'>"
    ):
        TypeEngine.literal_map({"a": 1, "b": [2]}, types)
    with pytest.raises(TypeTransformerFailedError, match=r"No declared type for \['c'\]"):
        TypeEngine.literal_map({"c": 1}, types)


def test_importing_the_type_engine_stays_light() -> None:
    heavy = "('pandas', 'pyarrow', 'pydantic', 'flytekit')"
    code = f"import sys, alula.types; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
