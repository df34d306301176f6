"""The workflows of `flytekit_samples.py`, written against alula: only the imports differ."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from alula import (
    CronSchedule,
    FixedRate,
    LaunchPlan,
    Resources,
    Secret,
    approve,
    conditional,
    dynamic,
    map_task,
    sleep,
    task,
    wait_for_input,
    workflow,
)
from alula.types import FlyteDirectory, FlyteFile, StructuredDataset


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclass
class Point:
    x: float
    y: float


@dataclass
class Shape:
    name: str
    points: list[Point] = field(default_factory=list)
    tags: dict[str, int] = field(default_factory=dict)
    center: Point | None = None


class Opaque:
    """Not a type flytekit knows: goes through the pickle fallback."""

    def __init__(self, v: int) -> None:
        self.v = v


@task(
    cache=True,
    cache_version="1.0",
    cache_serialize=True,
    retries=3,
    timeout=timedelta(minutes=5),
    interruptible=True,
    requests=Resources(cpu="1", mem="500Mi"),
    limits=Resources(cpu="2", mem="1Gi", gpu="1"),
    environment={"MODE": "test"},
    secret_requests=[Secret(group="db", key="password")],
)
def scalars(
    a: int, b: float, c: str, d: bool, e: datetime, f: timedelta, g: bytes
) -> tuple[int, str]:
    return a + int(b), c * 2


@task
def square(x: int) -> int:
    return x * x


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@task
def collections(
    xs: list[int], m: dict[str, float], nested: list[dict[str, list[str]]]
) -> dict[str, list[int]]:
    return {"xs": xs}


@task
def optional_union(a: int | None, b: int | str, c: Color) -> Color:
    return c


@task
def make_shape(name: str) -> Shape:
    return Shape(name=name, points=[Point(0, 0)], tags={"a": 1}, center=Point(1, 2))


@task
def area(s: Shape) -> float:
    return float(len(s.points))


@task
def write_file(text: str) -> FlyteFile:
    return FlyteFile(path="/tmp/out.txt")


@task
def read_file(f: FlyteFile, d: FlyteDirectory) -> str:
    return str(f.path) + str(d.path)


@task
def make_frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"a": range(n)})


@task
def frame_sum(df: pd.DataFrame, sd: StructuredDataset) -> int:
    return int(df["a"].sum())


@task
def keep_opaque(o: Opaque) -> Opaque:
    return o


@task
def is_even(x: int) -> bool:
    return x % 2 == 0


@task
def nothing() -> None:
    pass


@workflow
def scalars_wf(a: int = 1, b: float = 2.5, c: str = "hi") -> tuple[int, str]:
    return scalars(
        a=a,
        b=b,
        c=c,
        d=True,
        e=datetime(2024, 1, 2, 3, 4, 5),
        f=timedelta(seconds=90),
        g=b"\x00\x01",
    )


@workflow
def map_wf(xs: list[int] = [1, 2, 3]) -> int:  # noqa: B006 - flytekit default
    squares = map_task(square, concurrency=2)(x=xs)
    return total(xs=squares)


@workflow
def ratio_map_wf(xs: list[int]) -> list[int | None]:
    return map_task(square, min_success_ratio=0.75)(x=xs)


@workflow
def partial_map_wf(xs: list[int], y: int = 10) -> list[int]:
    import functools

    return map_task(functools.partial(add, y=y))(x=xs)


@workflow
def branch_wf(x: int) -> int:
    return (
        conditional("sign")
        .if_(x > 0)
        .then(square(x=x))
        .elif_((x < -10) | (x == -5))
        .then(add(x=x, y=100))
        .else_()
        .then(add(x=x, y=0))
    )


@workflow
def branch_fail_wf(x: int) -> int:
    return (
        conditional("check")
        .if_((x >= 0) & (x <= 100))
        .then(square(x=x))
        .else_()
        .fail("out of range")
    )


@workflow
def shapes_wf(name: str = "tri") -> float:
    s = make_shape(name=name)
    return area(s=s)


@workflow
def files_wf(text: str, d: FlyteDirectory) -> str:
    f = write_file(text=text)
    return read_file(f=f, d=d)


@workflow
def frames_wf(n: int, sd: StructuredDataset) -> int:
    df = make_frame(n=n)
    return frame_sum(df=df, sd=sd)


@workflow
def types_wf(
    a: int | None,
    b: int | str,
    c: Color = Color.RED,
    xs: list[int] = [1],  # noqa: B006
    m: dict[str, float] = {"k": 1.0},  # noqa: B006
) -> Color:
    collections(xs=xs, m=m, nested=[{"a": ["b"]}])
    return optional_union(a=a, b=b, c=c)


@workflow
def pickle_wf(o: Opaque) -> Opaque:
    return keep_opaque(o=o)


@workflow
def sub_wf(x: int) -> int:
    return square(x=square(x=x))


@workflow
def parent_wf(x: int = 3) -> int:
    a = sub_wf(x=x)
    b = add(x=a, y=x)
    n = nothing()
    n >> b
    return b


square_lp = LaunchPlan.get_or_create(
    sub_wf,
    name="sub_wf_daily",
    default_inputs={"x": 4},
    schedule=CronSchedule(schedule="0 9 * * *", kickoff_time_input_arg=None),
)
fixed_lp = LaunchPlan.get_or_create(
    parent_wf, name="parent_fixed", fixed_inputs={"x": 7}, schedule=FixedRate(timedelta(hours=1))
)


@workflow
def lp_wf(x: int) -> int:
    return square_lp(x=x)


@dynamic
def fan_out(n: int) -> list[int]:
    return [square(x=i) for i in range(n)]


@workflow
def dynamic_wf(n: int = 5) -> int:
    return total(xs=fan_out(n=n))


@workflow
def gates_wf(x: int) -> int:
    y = square(x=x)
    s = sleep(timedelta(seconds=5))
    z = wait_for_input("factor", timeout=timedelta(hours=1), expected_type=int)
    approved = approve(y, "approve-y", timeout=timedelta(hours=2))
    s >> z
    return add(x=approved, y=z)


@workflow
def overrides_wf(x: int) -> int:
    return square(x=x).with_overrides(
        requests=Resources(cpu="3"), limits=Resources(mem="2Gi"), retries=5, name="sq"
    )


@workflow
def even_branch_wf(x: int) -> int:
    ok = is_even(x=x)
    return conditional("even").if_(ok.is_true()).then(square(x=x)).else_().then(add(x=x, y=1))


WORKFLOWS = [
    scalars_wf,
    map_wf,
    ratio_map_wf,
    partial_map_wf,
    branch_wf,
    branch_fail_wf,
    shapes_wf,
    files_wf,
    frames_wf,
    types_wf,
    pickle_wf,
    parent_wf,
    lp_wf,
    dynamic_wf,
    gates_wf,
    overrides_wf,
    even_branch_wf,
]
LAUNCH_PLANS = [square_lp, fixed_lp]
