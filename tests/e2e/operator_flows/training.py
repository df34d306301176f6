"""Kubeflow training tasks authored with the real flytekit plugins (flytekitplugins-kfpytorch
and -kftensorflow from PyPI), for tests/e2e/test_k8s_operators.py: Alula's propeller turns each
attempt into a PyTorchJob or a TFJob, which tests/k8s/operator_controller.py runs in the
operator's place."""

from __future__ import annotations

import os
import time
from pathlib import Path

from flytekit import task, workflow
from flytekitplugins.kfpytorch import CleanPodPolicy, Master, PyTorch, RunPolicy, Worker
from flytekitplugins.kftensorflow import PS, Chief, TfJob
from flytekitplugins.kftensorflow import Worker as TfWorker

TORCH = PyTorch(
    master=Master(),
    worker=Worker(replicas=2),
    run_policy=RunPolicy(clean_pod_policy=CleanPodPolicy.RUNNING, backoff_limit=1),
)


@task(task_config=TORCH, environment={"TRAINING_LABEL": "loss"})
def train(epochs: int, rate: float) -> str:
    # What the pod got from the task (its environment) and from the operator (its rank).
    label = os.environ["TRAINING_LABEL"]
    world = os.environ["WORLD_SIZE"]
    return f"{label}={rate / epochs:.3f} rank={os.environ['RANK']}/{world}"


@task(task_config=TfJob(chief=Chief(replicas=1), ps=PS(replicas=1), worker=TfWorker(replicas=2)))
def evaluate(summary: str) -> int:
    return len(summary)


@workflow
def training(epochs: int = 4, rate: float = 0.5) -> tuple[str, int]:
    summary = train(epochs=epochs, rate=rate)
    return summary, evaluate(summary=summary)


@task(task_config=TORCH)
def diverge(epochs: int) -> float:
    if epochs > 0:
        raise ValueError(f"the loss went to NaN after {epochs} epochs")
    return 0.0


@workflow
def diverging(epochs: int = 3) -> float:
    return diverge(epochs=epochs)


@task(
    task_config=TORCH,
    environment={"ALULA_TEST_OPERATOR_FAILURE": "0/1 nodes are available: 2 Insufficient gpu"},
)
def unschedulable(epochs: int) -> float:
    return float(epochs)


@workflow
def refused(epochs: int = 3) -> float:
    return unschedulable(epochs=epochs)


@task(task_config=TORCH)
def wait_for(release: str) -> str:
    path = Path(release)
    while not path.exists():
        time.sleep(0.1)
    return path.read_text()


@workflow
def gated(release: str) -> str:
    return wait_for(release=release)
