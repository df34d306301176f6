"""flytekit tasks with pod templates, for a server without Kubernetes: they run their primary
container's command locally and the rest of the pod is ignored."""

import os

from flytekit import PodTemplate, task, workflow
from kubernetes.client import (
    V1Container,
    V1EmptyDirVolumeSource,
    V1EnvVar,
    V1PodSpec,
    V1Toleration,
    V1Volume,
    V1VolumeMount,
)

POD = PodTemplate(
    primary_container_name="primary",
    pod_spec=V1PodSpec(
        containers=[
            # A sidecar that would fail the attempt if anything ran it locally.
            V1Container(name="sidecar", image="busybox", command=["false"]),
            V1Container(
                name="primary",
                env=[V1EnvVar(name="POD_GREETING", value="hello from the pod spec")],
                volume_mounts=[V1VolumeMount(name="scratch", mount_path="/scratch")],
            ),
        ],
        volumes=[V1Volume(name="scratch", empty_dir=V1EmptyDirVolumeSource())],
        tolerations=[V1Toleration(key="gpu", operator="Exists")],
    ),
    labels={"team": "ml"},
)


@task(pod_template=POD)
def greet(name: str) -> str:
    return f"{os.environ['POD_GREETING']}, {name}"


@task(pod_template_name="gpu-template")
def shout(s: str) -> str:
    return s.upper()


@workflow
def pod_wf(name: str) -> str:
    return shout(s=greet(name=name))
