"""A task of a type no plugin of the test server runs: its registration must be refused."""

from __future__ import annotations

from flytekit.core.base_task import PythonTask
from flytekit.core.interface import Interface

bigquery_like = PythonTask(
    task_type="warehouse_query",
    name="unserved.warehouse_query",
    task_config=None,
    interface=Interface(inputs={"x": int}, outputs={"o0": int}),
)
