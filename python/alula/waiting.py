"""Waiting for a remote execution from a notebook or a script: without blocking an event loop,
and, when the wait is interrupted (Ctrl-C, a notebook's interrupt button, a cancelled task),
leaving the execution running and saying so: the work goes on on the server, and the person
who stopped waiting must know how to follow or stop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alula.remote import Execution, Remote

TERMINAL_PHASES = frozenset({"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"})


def interrupted_message(remote: Remote, execution: Execution) -> str:
    """What to tell someone who stopped waiting for `execution`."""
    scope = f"-p {execution.project} -d {execution.domain}"
    return (
        f"stopped waiting; execution {execution.name} is still running on {remote.endpoint}.\n"
        f"  console:   {remote.console_url(execution)}\n"
        f"  wait:      remote.wait(ex) or await remote.wait_async(ex)\n"
        f"  stop it:   remote.terminate(ex), or alula terminate {execution.name} {scope}"
    )


@contextlib.contextmanager
def still_running_on_interrupt(remote: Remote, execution: Execution) -> Iterator[None]:
    """Says that `execution` goes on when the block is interrupted; the interrupt goes on too."""
    try:
        yield
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(interrupted_message(remote, execution), file=sys.stderr, flush=True)
        raise


async def poll_until_done(
    remote: Remote, execution: Execution, timeout: float | None, poll: float
) -> dict[str, Any]:
    """The execution's closure once its phase is terminal, polled without blocking the loop:
    each GetExecution on a worker thread, `asyncio.sleep` between them."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with still_running_on_interrupt(remote, execution):
        while True:
            got = await asyncio.to_thread(remote.call, "GetExecution", {"id": execution.id_json()})
            closure: dict[str, Any] = got.get("closure", {})
            phase = closure.get("phase", "UNDEFINED")
            if phase in TERMINAL_PHASES:
                return closure
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"execution {execution} still {phase} after {timeout}s")
            await asyncio.sleep(poll)
