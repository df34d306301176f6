"""A small pandas pipeline; data frames travel between tasks as parquet.

`alula run examples/dataframe.py wf --rows 1000`
"""

import pandas as pd

from alula import task, workflow


@task
def load(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"city": ["Oslo", "Lima", "Pune"] * rows, "sales": range(3 * rows)})


@task
def by_city(df: pd.DataFrame) -> pd.DataFrame:
    return df.groupby("city", as_index=False)["sales"].sum()


@task
def best(df: pd.DataFrame) -> str:
    return str(df.sort_values("sales").iloc[-1]["city"])


@workflow
def wf(rows: int = 100) -> str:
    return best(df=by_city(df=load(rows=rows)))
