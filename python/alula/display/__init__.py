"""Rich displays for notebooks (Jupyter calls `_repr_html_`; consoles keep the plain `repr`).

- a task, workflow or launch plan shows its interface, and a workflow its graph of nodes;
- `alula.display.run(wf, **inputs)` runs a workflow locally, showing it live, then its outputs;
- `Remote.watch(execution)` (or `await Remote.watch_async(execution)`) shows a remote
  execution live: nodes by phase, elapsed time, map progress; then outputs or the failure.

IPython is imported only when a display is shown in it: nothing here needs it to import.
"""

from alula.display.entities import launch_plan_html, task_html, workflow_html
from alula.display.local_run import run
from alula.display.remote_run import execution_repr_html, remember, watch, watch_async

__all__ = [
    "execution_repr_html",
    "launch_plan_html",
    "remember",
    "run",
    "task_html",
    "watch",
    "watch_async",
    "workflow_html",
]
