"""The local runner indexes a workflow once per trace, not once per run."""

from __future__ import annotations

import pytest

from alula import task, workflow
from alula.core import local


@task
def double(x: int) -> int:
    return 2 * x


@task
def inc(x: int) -> int:
    return x + 1


@workflow
def chain(x: int = 1) -> int:
    return inc(x=double(x=inc(x=x)))


def test_the_index_is_made_once_per_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    walks = []
    entities = local._entities

    def counting(wf: local.Workflow) -> object:
        walks.append(wf)
        return entities(wf)

    monkeypatch.setattr(local, "_entities", counting)
    chain.__dict__.pop("_local_index", None)
    assert chain(x=1) == 5
    assert chain(x=2) == 7
    assert chain(x=3) == 9
    assert len(walks) == 1, "every run walked the workflow's nodes again"
    index = local._index(chain)
    assert set(index.resolved) == {double.name, inc.name}


def test_a_new_trace_makes_a_new_index() -> None:
    first = local._index(chain)
    chain._traced = None  # as a redefinition in a notebook makes the workflow trace again
    second = local._index(chain)
    assert second is not first
    assert second.tasks.keys() == first.tasks.keys()
    assert chain(x=1) == 5
