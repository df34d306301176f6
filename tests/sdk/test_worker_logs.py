"""The warm worker (`python -m alula.worker`) points fds 1 and 2 at each attempt's own log files
while it runs: two attempts in one worker each get only their own output (Python prints, raw
descriptor writes, child processes), and the protocol stream stays clean JSON lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Stands in for `alula.execute.run` (no registered task needed): writes to both streams in
# every way a task can, then fails or succeeds as the request's argv says.
DRIVER = """
import os, subprocess, sys
import alula.execute, alula.worker

def run(argv, *, map_task):
    tag = argv[0]
    print(f"print-{tag}")
    print(f"warn-{tag}", file=sys.stderr)
    os.write(1, f"fd1-{tag}\\n".encode())
    os.write(2, f"fd2-{tag}\\n".encode())
    subprocess.run(["sh", "-c", f"echo child-out-{tag}; echo child-err-{tag} >&2"], check=True)
    if argv[1] == "raise":
        raise RuntimeError(f"escaped-{tag}")
    return int(argv[1])

alula.execute.run = run
alula.worker.main()
"""


def test_each_attempt_gets_only_its_own_output(tmp_path: Path) -> None:
    logs = {tag: (tmp_path / f"{tag}.out", tmp_path / f"{tag}.err") for tag in ("a", "b", "c")}
    requests = [
        {
            "id": i,
            "entrypoint": "alula-execute",
            "argv": [tag, arg],
            "env": {},
            "stdout": str(logs[tag][0]),
            "stderr": str(logs[tag][1]),
        }
        for i, (tag, arg) in enumerate([("a", "0"), ("b", "raise"), ("c", "3")], start=1)
    ]
    stdin = "".join(json.dumps(r) + "\n" for r in requests)
    # Between requests the worker's own output goes to its log (its stderr).
    done = subprocess.run(
        [sys.executable, "-c", DRIVER], input=stdin, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert answers == [{"id": 1, "code": 0}, {"id": 2, "code": 1}, {"id": 3, "code": 3}]
    for tag, (out, err) in logs.items():
        out_text, err_text = out.read_text(), err.read_text()
        assert sorted(out_text.split()) == sorted(
            [f"print-{tag}", f"fd1-{tag}", f"child-out-{tag}"]
        ), out_text
        assert {f"warn-{tag}", f"fd2-{tag}", f"child-err-{tag}"} <= set(err_text.split()), err_text
        for other in set(logs) - {tag}:
            assert f"-{other}" not in out_text + err_text
    # An exception escaping the task is the attempt's, in its stderr.
    assert "RuntimeError: escaped-b" in logs["b"][1].read_text()
    assert "escaped-b" not in done.stderr
