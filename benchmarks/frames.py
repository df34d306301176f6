"""A pandas DataFrame passed between two tasks; its own module so that only this workload pays
for importing pandas (and its memory does not show in the other workloads' peak RSS)."""

import pandas as pd
from fw import task, workflow


@task
def make_frame(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": range(n),
            "value": [i * 0.5 for i in range(n)],
            "label": [f"row-{i % 1000}" for i in range(n)],
        }
    )


@task
def frame_sum(df: pd.DataFrame) -> int:
    return int(df["id"].sum())


@workflow
def frames(n: int) -> int:
    return frame_sum(df=make_frame(n=n))
