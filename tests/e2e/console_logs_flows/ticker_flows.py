"""A task that prints a line a second for a while, for the console's log-following test
(tests/e2e/test_console_logs.py)."""

from __future__ import annotations

import time

from alula import task, workflow


@task
def tick(seconds: int) -> int:
    for i in range(1, seconds + 1):
        print(f"console-logs tick {i}", flush=True)
        time.sleep(1)
    return seconds


@workflow
def ticker(seconds: int = 12) -> int:
    return tick(seconds=seconds)
