"""A warm worker: runs task attempts one after another in one long-lived Python process, so an
attempt costs the task itself and not a Python start plus imports (Flyte's per-task cold start).

Propeller's warm-worker plugin starts it as `python -m alula.worker` with the code bundle's
folder as its working directory, and speaks JSON lines: on stdin
`{"id": 7, "entrypoint": "alula-execute", "argv": [...], "env": {...}}`, on the protocol stream
`{"id": 7, "code": 0}` once the attempt has written its outputs (or error) like `alula-execute`
does. The task's own prints go to stderr, so they cannot corrupt the protocol.
"""

from __future__ import annotations

import json
import os
import sys
import traceback


def _serve(requests: object, protocol: object) -> None:
    from alula.execute import run

    for line in requests:  # type: ignore[attr-defined]
        request = json.loads(line)
        saved = dict(os.environ)
        os.environ.update(request.get("env", {}))
        try:
            code = run(request["argv"], map_task=request["entrypoint"] == "alula-map-execute")
        except SystemExit as e:  # bad arguments, as the command would exit
            code = e.code if isinstance(e.code, int) else 2
        except BaseException:  # noqa: BLE001 - the worker must survive anything a task does
            traceback.print_exc()
            code = 1
        finally:
            os.environ.clear()
            os.environ.update(saved)
        protocol.write(json.dumps({"id": request["id"], "code": code}) + "\n")  # type: ignore[attr-defined]
        protocol.flush()  # type: ignore[attr-defined]


def main() -> None:
    # Keep the real stdout for the protocol; everything else written to fd 1 goes to stderr.
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.path.insert(0, os.getcwd())
    _serve(sys.stdin, protocol)


if __name__ == "__main__":
    main()
