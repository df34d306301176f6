"""Serializes one task per operator plugin with the real flytekit plugins (the oracle of the
wire contract) and writes each `TaskTemplate` for `rust/k8s/tests/operators_golden.rs`:
`<name>.pb` (binary protobuf, what the test reads) and `<name>.json` (the same, for review).

Run from the repository root with the test virtualenv, after installing the plugins (pyspark and
ray make them too big to install on every CI run; the fixtures are committed):
`.venv/bin/pip install flytekitplugins-{spark,ray,kfpytorch,kftensorflow,kfmpi}==1.16.31` and
`.venv/bin/python tests/k8s/make_operator_fixtures.py`; then rewrite the resources built from them
(`ALULA_UPDATE_GOLDEN=1 cargo test -p alula-k8s --test operators_golden`), review the YAML diff
and commit what changes.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from pathlib import Path

from flytekit import PodTemplate, Resources, task
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.tools.translator import get_serializable
from flytekitplugins.kfmpi import Launcher, MPIJob
from flytekitplugins.kfmpi import Worker as MpiWorker
from flytekitplugins.kfpytorch import CleanPodPolicy, Master, PyTorch, RunPolicy
from flytekitplugins.kfpytorch import Worker as TorchWorker
from flytekitplugins.kftensorflow import PS, Chief, TfJob
from flytekitplugins.kftensorflow import Worker as TfWorker
from flytekitplugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig
from flytekitplugins.spark import Spark
from google.protobuf import json_format
from kubernetes.client import V1Container, V1PodSpec, V1Toleration

OUT = Path(__file__).resolve().parents[2] / "rust" / "k8s" / "tests" / "fixtures" / "operators"
IMAGE = "ghcr.io/alula/operators:1.0"

driver_pod = PodTemplate(
    primary_container_name="primary",
    labels={"role": "driver"},
    pod_spec=V1PodSpec(
        containers=[V1Container(name="primary")],
        tolerations=[V1Toleration(key="spark", operator="Exists", effect="NoSchedule")],
    ),
)


@task(
    task_config=Spark(
        spark_conf={
            "spark.driver.memory": "1000M",
            "spark.driver.cores": "1",
            "spark.executor.memory": "1000M",
            "spark.executor.cores": "2",
            "spark.executor.instances": "3",
        },
        hadoop_conf={"fs.s3a.path.style.access": "true"},
        executor_path="/usr/bin/python3",
        driver_pod=driver_pod,
    ),
)
def spark_count(n: int) -> int:
    return n


@task(
    task_config=RayJobConfig(
        head_node_config=HeadNodeConfig(ray_start_params={"log-color": "True"}),
        worker_node_config=[
            WorkerNodeConfig(group_name="workers", replicas=2, min_replicas=1, max_replicas=4)
        ],
        runtime_env={"pip": ["numpy"]},
        shutdown_after_job_finishes=True,
        ttl_seconds_after_finished=120,
    ),
    requests=Resources(cpu="1", mem="1Gi"),
)
def ray_sum(n: int) -> int:
    return n


@task(
    task_config=PyTorch(
        master=Master(restart_policy=None),
        worker=TorchWorker(replicas=2, requests=Resources(cpu="2"), limits=Resources(cpu="2")),
        run_policy=RunPolicy(
            clean_pod_policy=CleanPodPolicy.ALL, backoff_limit=3, ttl_seconds_after_finished=600
        ),
    ),
)
def torch_train(epochs: int) -> float:
    return 0.0


@task(task_config=TfJob(chief=Chief(replicas=1), ps=PS(replicas=1), worker=TfWorker(replicas=2)))
def tf_train(epochs: int) -> float:
    return 0.0


@task(task_config=MPIJob(launcher=Launcher(replicas=1), worker=MpiWorker(replicas=2), slots=2))
def mpi_train(epochs: int) -> float:
    return 0.0


TASKS = {
    "spark": spark_count,
    "ray": ray_sum,
    "pytorch": torch_train,
    "tensorflow": tf_train,
    "mpi": mpi_train,
}


def main() -> int:
    settings = SerializationSettings(
        image_config=ImageConfig.auto(img_name=IMAGE),
        project="p",
        domain="d",
        version="v1",
    )
    OUT.mkdir(parents=True, exist_ok=True)
    for name, t in TASKS.items():
        template = get_serializable(OrderedDict(), settings, t).template.to_flyte_idl()
        (OUT / f"{name}.pb").write_bytes(template.SerializeToString(deterministic=True))
        (OUT / f"{name}.json").write_text(
            json_format.MessageToJson(template, sort_keys=True) + "\n"
        )
        print(f"{name}: {template.type} -> {OUT / (name + '.pb')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
