"""Authoring mistakes give one clear error naming the entity, the input, the types involved
and the `file:line` of the offending call."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alula import task, workflow
from alula.core.errors import InputTypeError, UnsupportedTypeError, WorkflowAuthoringError

HERE = __file__


def site(marker: str) -> str:
    """`file:line` of the line of this file carrying `# <marker>`."""
    with open(HERE) as f:
        lines = [i for i, line in enumerate(f, 1) if line.rstrip().endswith(f"# {marker}")]
    assert len(lines) == 1, marker
    return f"{HERE}:{lines[0]}"


@task
def make_text(n: int) -> str:
    return str(n)


@task
def double(x: int) -> int:
    return 2 * x


@task
def pair(xs: tuple[int, str]) -> int:
    return 0


def test_type_mismatch_between_tasks() -> None:
    @workflow
    def wf(n: int) -> int:
        t = make_text(n=n)  # producer
        return double(x=t)  # mismatch

    with pytest.raises(InputTypeError) as e:
        wf.trace()
    assert str(e.value) == (
        f"task 'double' (called at {site('mismatch')}): input 'x' expects int but gets str "
        f"from output 'o0' of n0 (task 'make_text' at {site('producer')})"
    )


def test_constant_of_the_wrong_type() -> None:
    @workflow
    def wf() -> int:
        return double(x="two")  # constant

    with pytest.raises(InputTypeError) as e:
        wf.trace()
    message = str(e.value)
    assert message.startswith(
        f"task 'double' (called at {site('constant')}): input 'x' expects int but gets "
        "str value 'two'"
    )


def test_wrong_keyword() -> None:
    @workflow
    def wf(n: int) -> int:
        return double(y=n)  # keyword

    with pytest.raises(WorkflowAuthoringError) as e:
        wf.trace()
    assert str(e.value) == (
        f"task 'double' (called at {site('keyword')}): unexpected input 'y' (int); "
        "its inputs are x: int"
    )


def test_positional_call() -> None:
    @workflow
    def wf(n: int) -> int:
        return double(n)  # positional

    with pytest.raises(WorkflowAuthoringError) as e:
        wf.trace()
    assert str(e.value) == (
        f"task 'double' (called at {site('positional')}): inside a workflow, pass inputs by "
        "keyword (its inputs are x: int); got 1 positional argument(s) of type int"
    )


def test_missing_binding() -> None:
    @workflow
    def wf(n: int) -> int:
        return double()  # missing

    with pytest.raises(WorkflowAuthoringError) as e:
        wf.trace()
    assert str(e.value) == (
        f"task 'double' (called at {site('missing')}): input 'x' (int) is missing and has "
        "no default"
    )


def test_missing_output() -> None:
    @workflow  # no-return
    def wf(n: int) -> int:
        double(x=n)

    with pytest.raises(WorkflowAuthoringError) as e:
        wf.trace()
    assert str(e.value) == (
        f"workflow 'wf' (defined at {site('no-return')}): declares outputs o0 (int) but "
        "returns nothing"
    )


def test_cycle_via_rshift() -> None:
    @workflow
    def wf(n: int) -> int:
        a = double(x=n)  # first
        b = double(x=a)  # second
        b >> a  # cycle
        return b

    with pytest.raises(WorkflowAuthoringError) as e:
        wf.trace()
    assert str(e.value) == (
        f"`>>` at {site('cycle')} makes a cycle: n0 (task 'double' at {site('first')}) must "
        f"run before n1 (task 'double' at {site('second')}), so n1 cannot also run before it"
    )


def test_unsupported_type() -> None:
    @workflow
    def wf(n: int) -> int:
        return pair(xs=(n, "a"))  # unsupported

    with pytest.raises(UnsupportedTypeError) as e:
        wf.trace()
    message = str(e.value)
    assert message.startswith("task 'pair' (defined at ")
    assert "'xs' has type tuple[int, str], which has no Flyte type" in message
    assert message.endswith(f"; called at {site('unsupported')}")


def test_missing_type_hint() -> None:
    def untyped(x):  # type: ignore[no-untyped-def]  # untyped
        return x

    with pytest.raises(WorkflowAuthoringError) as e:
        task(untyped)
    assert str(e.value) == (
        f"task 'untyped' ({site('untyped')}): input 'x' has no type hint; annotate it, "
        "e.g. `x: int`"
    )


def test_promise_used_as_bool() -> None:
    @workflow
    def wf(n: int) -> int:
        if double(x=n):  # truthiness
            pass
        return n

    with pytest.raises(WorkflowAuthoringError) as e:
        wf.trace()
    assert f"(at {site('truthiness')}); use alula.conditional()" in str(e.value)


def test_bad_timeout_type() -> None:
    with pytest.raises(WorkflowAuthoringError, match="timeout must be seconds"):
        task(timeout="5m")(double.fn)  # type: ignore[arg-type]
    assert task(timeout=timedelta(seconds=5))(double.fn).options.timeout == timedelta(seconds=5)


@task
def maybe(x: int) -> int | None:
    return x or None


def test_compiler_errors_name_the_call_site() -> None:
    from alula import SerializationSettings, conditional
    from alula.core.errors import WorkflowCompileError
    from alula.core.serialize import serialize

    @workflow
    def wf(n: int) -> int:
        m = maybe(x=n)
        return conditional("c").if_(m.is_none()).then(double(x=n)).else_().fail("x")  # branch

    with pytest.raises(WorkflowCompileError) as e:
        serialize([wf], SerializationSettings("p", "d", "v", "img"))
    (line,) = e.value.errors
    assert line.startswith("n1: ")
    assert "[MismatchingTypes]" in line
    assert line.endswith(f"(conditional 'c' at {site('branch')})")
    assert str(e.value).startswith("workflow 'wf' does not compile:\n  - n1: ")
