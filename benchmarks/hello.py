"""The smallest workflow: one task returning a string.

Run in-process by workloads.py and as a whole process by `alula run hello.py wf` /
`pyflyte run hello.py wf` (both put this file's folder on sys.path, so `fw` is found).
"""

from fw import task, workflow


@task
def greet(name: str) -> str:
    return f"hello {name}"


@workflow
def wf(name: str = "world") -> str:
    return greet(name=name)
