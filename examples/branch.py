"""A conditional: `alula run examples/branch.py wf --temperature 31.5`."""

from alula import conditional, task, workflow


@task
def advice(text: str) -> str:
    return text


@workflow
def wf(temperature: float) -> str:
    return (
        conditional("weather")
        .if_(temperature > 30.0)
        .then(advice(text="stay in the shade"))
        .elif_(temperature < 5.0)
        .then(advice(text="take a coat"))
        .else_()
        .then(advice(text="enjoy the day"))
    )
