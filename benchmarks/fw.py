"""The import switch: the same workload code runs on Alula or on flytekit.

`BENCH_FRAMEWORK=flytekit` selects flytekit; anything else (the default) selects Alula. Only the
authoring names both frameworks share are exported, so a workload cannot silently use one side's
extras.
"""

import os

FRAMEWORK = os.environ.get("BENCH_FRAMEWORK", "alula")

if FRAMEWORK == "flytekit":
    from flytekit import dynamic, map_task, task, workflow
else:
    from alula import dynamic, map_task, task, workflow

__all__ = ["FRAMEWORK", "dynamic", "map_task", "task", "workflow"]
