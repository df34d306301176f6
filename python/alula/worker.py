"""A warm worker: runs task attempts one after another in one long-lived Python process, so an
attempt costs the task itself and not a Python start plus imports (Flyte's per-task cold start).

Propeller's warm-worker plugin starts it as `python -m alula.worker` with the code bundle's
folder as its working directory, and speaks JSON lines: on stdin
`{"id": 7, "entrypoint": "alula-execute", "argv": [...], "env": {...}, "stdout": PATH,
"stderr": PATH}`, on the protocol stream `{"id": 7, "code": 0}` once the attempt has written
its outputs (or error) like `alula-execute` does.

While an attempt runs, file descriptors 1 and 2 (and `sys.stdout`, `sys.stderr` over them) point
at that attempt's own files, so its logs hold only what it printed (child processes included);
between attempts both go to the worker's log (its stderr). The protocol stream is a descriptor of
its own, duplicated before anything else, which no redirection touches.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Iterator
from typing import IO, Any


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


@contextlib.contextmanager
def _captured(stdout: str | None, stderr: str | None) -> Iterator[None]:
    """Points fds 1 and 2 at the attempt's log files for the duration of the block."""
    if stdout is None or stderr is None:
        yield
        return
    _flush()
    saved = os.dup(1), os.dup(2)
    saved_streams = sys.stdout, sys.stderr
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    out = os.open(stdout, flags, 0o644)
    err = out if stderr == stdout else os.open(stderr, flags, 0o644)
    try:
        os.dup2(out, 1)
        os.dup2(err, 2)
        # Line-buffered text streams over the redirected descriptors: Python-level prints
        # land in order with what C code and child processes write to the same descriptors.
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - closed below
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115 - closed below
        yield
    finally:
        _flush()
        for stream in (sys.stdout, sys.stderr):
            if stream not in saved_streams:
                with contextlib.suppress(Exception):
                    stream.close()
        sys.stdout, sys.stderr = saved_streams
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in {out, err, *saved}:
            os.close(fd)


def _serve(requests: IO[str], protocol: IO[str]) -> None:
    from alula.execute import run

    for line in requests:
        request: dict[str, Any] = json.loads(line)
        saved = dict(os.environ)
        os.environ.update(request.get("env", {}))
        try:
            with _captured(request.get("stdout"), request.get("stderr")):
                try:
                    code = run(
                        request["argv"], map_task=request["entrypoint"] == "alula-map-execute"
                    )
                except SystemExit as e:  # bad arguments, as the command would exit
                    code = e.code if isinstance(e.code, int) else 2
                except BaseException:  # noqa: BLE001 - the worker must survive anything a task does
                    traceback.print_exc()
                    code = 1
        except OSError:  # the log files cannot be opened: the attempt fails, the worker lives
            traceback.print_exc()
            code = 1
        finally:
            os.environ.clear()
            os.environ.update(saved)
        protocol.write(json.dumps({"id": request["id"], "code": code}) + "\n")
        protocol.flush()


def main() -> None:
    # Keep the real stdout for the protocol; everything else written to fd 1 goes to stderr.
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.path.insert(0, os.getcwd())
    _serve(sys.stdin, protocol)


if __name__ == "__main__":
    main()
