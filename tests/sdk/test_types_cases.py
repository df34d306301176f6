"""Python types and values shared by the type-engine tests (no tests of its own)."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import typing


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclasses.dataclass
class Point:
    x: int
    y: float = 1.0


@dataclasses.dataclass
class Everything:
    count: int
    name: str
    ratio: float
    flag: bool
    items: list[int]
    scores: dict[str, float]
    inner: Point
    maybe: Point | None
    color: Color = Color.RED
    when: datetime.datetime = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456)
    day: datetime.date = datetime.date(2024, 5, 6)
    wait: datetime.timedelta = datetime.timedelta(seconds=90)
    raw: dict = dataclasses.field(default_factory=dict)  # type: ignore[type-arg]
    either: int | str = 3
    nothing: int | None = None
    blob: bytes = b"\x00\x01"
    nested: list[dict[str, Point]] = dataclasses.field(default_factory=list)


EVERYTHING = Everything(
    count=-7,
    name="n",
    ratio=0.5,
    flag=True,
    items=[1, 2, 300, 70000, 2**40],
    scores={"a": 1.5},
    inner=Point(1),
    maybe=None,
    color=Color.GREEN,
    raw={"k": [1, "two", None, {"x": 1.5}]},
    either="three",
    nested=[{"p": Point(2, 3.5)}],
)

AWARE = datetime.datetime(
    2024, 1, 2, 3, 4, 5, 6000, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
)

# (test id, Python type, value): plain values with no files behind them.
VALUE_CASES: list[tuple[str, typing.Any, typing.Any]] = [
    ("int", int, 42),
    ("int-negative-big", int, -(2**62)),
    ("float", float, 2.5),
    ("float-nan", float, float("inf")),
    ("str", str, "héllo"),
    ("bool", bool, False),
    ("datetime-naive", datetime.datetime, datetime.datetime(2024, 1, 2, 3, 4, 5, 6)),
    ("datetime-aware", datetime.datetime, AWARE),
    (
        "datetime-whole-second",
        datetime.datetime,
        datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc),
    ),
    ("datetime-year-99", datetime.datetime, datetime.datetime(99, 12, 31, 23, 59, 59, 1000)),
    ("date", datetime.date, datetime.date(2024, 2, 29)),
    ("timedelta", datetime.timedelta, datetime.timedelta(seconds=3, microseconds=500000)),
    ("timedelta-negative", datetime.timedelta, datetime.timedelta(seconds=-1, microseconds=-5)),
    ("none", type(None), None),
    ("list", list[int], [1, 2, 3]),
    ("typing-list", typing.List[str], ["a", "b"]),  # noqa: UP006
    ("list-of-lists", list[list[float]], [[1.0], [], [2.5, 3.5]]),
    ("dict", dict[str, int], {"a": 1, "b": 2}),
    ("dict-empty", dict[str, int], {}),
    ("typing-dict", typing.Dict[str, list[bool]], {"a": [True]}),  # noqa: UP006
    ("untyped-dict", dict, {"a": [1, 2], "b": {"c": None}, "d": 1.5}),
    ("dict-int-keys", dict[int, str], {1: "one"}),
    ("typing-optional", typing.Optional[int], None),  # noqa: UP045 (the typing spelling)
    ("typing-union", typing.Union[int, str], "x"),  # noqa: UP007 (the typing spelling)
    ("optional-none", int | None, None),
    ("optional-value", int | None, 5),
    ("pipe-union", int | list[int], [1]),
    ("union-str-vs-enum", str | Color, "red"),
    ("enum", Color, Color.GREEN),
    ("dataclass", Point, Point(3, 4.25)),
    ("dataclass-everything", Everything, EVERYTHING),
    ("list-of-dataclasses", list[Point], [Point(1), Point(2, 2.5)]),
    ("dict-of-dataclasses", dict[str, Point], {"p": Point(1)}),
    ("optional-dataclass", Point | None, Point(9)),
    ("optional-list", list[int] | None, [1]),
]
