#!/usr/bin/env python3
"""A stand-in for the Kubeflow training operator, for end-to-end tests against a real
kube-apiserver (../shared/tools/kube-apiserver) with the minimal CRDs of `tests/k8s/crds`.

It plays the operator's part that Alula depends on, no more: for every `PyTorchJob` and `TFJob`
(kubeflow.org/v1) in the cluster it

- creates the pod of the replica that decides the job (PyTorch's `Master`; TensorFlow's `Chief`,
  else its first `Worker`), named `<job>-<role>-0` from the replica spec's template, owned by
  the job (so the cluster's garbage collector deletes it with the job, as with the operator),
  labelled as the operator labels it, with the environment the operator injects (`MASTER_ADDR`,
  `RANK`, `WORLD_SIZE`; `TF_CONFIG`). `tests/k8s/local_kubelet.py` runs it as a local process.
  The other replicas are counted in the status but not run: their processes would only repeat
  the task on this one machine.
- writes the job's `status` as the operator does: the conditions `Created`, `Running`, then
  `Succeeded` or `Failed` (reason `<Kind>Failed`, a message naming the failed replica), each with
  its transition time, plus `replicaStatuses`, `startTime` and `completionTime`.
- fails a job without running it when its replica's primary container has the environment
  variable `ALULA_TEST_OPERATOR_FAILURE` (the message to fail with): how tests produce a failure
  that only the operator knows of (no `error.pb` from the task).

Standard library only (it reuses the kubelet's API client). Settings from the environment:
KUBECONFIG (default: the one up.sh writes), INTERVAL (seconds between passes, default 0.2).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from local_kubelet import Api, ApiError, now  # noqa: E402

FAILURE_ENV = "ALULA_TEST_OPERATOR_FAILURE"
JOB_NAME_LABEL = "training.kubeflow.org/job-name"
REPLICA_TYPE_LABEL = "training.kubeflow.org/replica-type"
REPLICA_INDEX_LABEL = "training.kubeflow.org/replica-index"


@dataclass(frozen=True)
class Kind:
    """One Kubeflow job kind: where its replica specs are and which replica decides the job."""

    kind: str
    plural: str
    specs_field: str
    deciding_roles: tuple[str, ...]

    def deciding_role(self, specs: dict[str, Any]) -> str | None:
        for role in self.deciding_roles:
            if int((specs.get(role) or {}).get("replicas") or 0) > 0:
                return role
        return None


KINDS = (
    Kind("PyTorchJob", "pytorchjobs", "pytorchReplicaSpecs", ("Master", "Worker")),
    Kind("TFJob", "tfjobs", "tfReplicaSpecs", ("Chief", "Worker")),
)


def condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
    stamp = now()
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
    }


class Controller:
    def __init__(self, api: Api) -> None:
        self.api = api

    def job_path(self, kind: Kind, namespace: str, name: str) -> str:
        return f"/apis/kubeflow.org/v1/namespaces/{namespace}/{kind.plural}/{name}"

    def set_status(self, kind: Kind, job: dict[str, Any], status: dict[str, Any]) -> None:
        m = job["metadata"]
        path = self.job_path(kind, m["namespace"], m["name"]) + "/status"
        self.api("PATCH", path, {"status": status})

    def add_condition(
        self, kind: Kind, job: dict[str, Any], type_: str, reason: str, message: str, **extra: Any
    ) -> None:
        status = job.get("status") or {}
        conditions = [
            # Like the operator: a job that finishes is no longer Running.
            {**c, "status": "False"}
            if c.get("type") == "Running" and type_ in ("Succeeded", "Failed")
            else c
            for c in status.get("conditions") or []
            if c.get("type") != type_
        ]
        conditions.append(condition(type_, "True", reason, message))
        self.set_status(kind, job, {**extra, "conditions": conditions})

    def pass_once(self) -> None:
        for kind in KINDS:
            listed = self.api("GET", f"/apis/kubeflow.org/v1/{kind.plural}")
            for job in (listed or {}).get("items", []):
                if job["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    self.reconcile(kind, job)
                except ApiError:
                    traceback.print_exc()

    def reconcile(self, kind: Kind, job: dict[str, Any]) -> None:
        m = job["metadata"]
        status = job.get("status") or {}
        types = {c["type"] for c in status.get("conditions") or [] if c.get("status") == "True"}
        if types & {"Succeeded", "Failed"}:
            return
        specs = job["spec"].get(kind.specs_field) or {}
        role = kind.deciding_role(specs)
        label = f"{kind.kind} {m['namespace']}/{m['name']}"
        if "Created" not in types:
            self.add_condition(
                kind, job, "Created", f"{kind.kind}Created", f"{label} is created.", startTime=now()
            )
            return
        if role is None:
            self.add_condition(
                kind, job, "Failed", f"{kind.kind}Failed", f"{label} has no replica to run."
            )
            return
        template = specs[role].get("template") or {}
        containers = (template.get("spec") or {}).get("containers") or []
        failure = next(
            (
                e.get("value", "")
                for c in containers[:1]
                for e in c.get("env") or []
                if e.get("name") == FAILURE_ENV
            ),
            None,
        )
        if failure is not None:
            self.add_condition(
                kind, job, "Failed", f"{kind.kind}Failed", failure, completionTime=now()
            )
            return
        pod_name = f"{m['name']}-{role.lower()}-0"
        pod_path = f"/api/v1/namespaces/{m['namespace']}/pods/{pod_name}"
        pod = self.api("GET", pod_path)
        if pod is None:
            self.create_pod(kind, job, specs, role, pod_name, template)
            return
        phase = (pod.get("status") or {}).get("phase", "Pending")
        replicas = {role: {"active": 1 if phase == "Running" else 0}}
        if phase == "Running" and "Running" not in types:
            self.add_condition(
                kind,
                job,
                "Running",
                f"{kind.kind}Running",
                f"{label} is running.",
                replicaStatuses=replicas,
            )
        elif phase == "Succeeded":
            self.add_condition(
                kind,
                job,
                "Succeeded",
                f"{kind.kind}Succeeded",
                f"{label} successfully completed.",
                replicaStatuses={role: {"succeeded": 1}},
                completionTime=now(),
            )
        elif phase == "Failed":
            self.add_condition(
                kind,
                job,
                "Failed",
                f"{kind.kind}Failed",
                f"{label} is failed because 1 {role} replica(s) failed.",
                replicaStatuses={role: {"failed": 1}},
                completionTime=now(),
            )

    def create_pod(
        self,
        kind: Kind,
        job: dict[str, Any],
        specs: dict[str, Any],
        role: str,
        name: str,
        template: dict[str, Any],
    ) -> None:
        m = job["metadata"]
        meta = dict(template.get("metadata") or {})
        meta["name"] = name
        meta["namespace"] = m["namespace"]
        meta["labels"] = {
            **(meta.get("labels") or {}),
            JOB_NAME_LABEL: m["name"],
            REPLICA_TYPE_LABEL: role.lower(),
            REPLICA_INDEX_LABEL: "0",
        }
        meta["ownerReferences"] = [
            {
                "apiVersion": job["apiVersion"],
                "kind": kind.kind,
                "name": m["name"],
                "uid": m["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        spec = json.loads(json.dumps(template.get("spec") or {}))
        spec["restartPolicy"] = "Never"
        world = sum(int((s or {}).get("replicas") or 0) for s in specs.values())
        if kind.kind == "PyTorchJob":
            env = {
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": "23456",
                "WORLD_SIZE": str(world),
                "RANK": "0",
                "PYTHONUNBUFFERED": "1",
            }
        else:
            cluster = {r.lower(): [f"{m['name']}-{r.lower()}-0:2222"] for r in specs}
            env = {
                "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": role.lower(), "index": 0}}
                )
            }
        for c in spec.get("containers") or []:
            c["env"] = [e for e in c.get("env") or [] if e.get("name") not in env] + [
                {"name": k, "value": v} for k, v in env.items()
            ]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
        self.api("POST", f"/api/v1/namespaces/{m['namespace']}/pods", pod, "application/json")


def main() -> None:
    kubeconfig = os.environ.get("KUBECONFIG") or str(
        Path.home() / ".cache/alula-kube-apiserver/kubeconfig"
    )
    interval = float(os.environ.get("INTERVAL", "0.2"))
    controller = Controller(Api(kubeconfig))
    print("operator controller running", flush=True)
    while True:
        try:
            controller.pass_once()
        except (ApiError, OSError):
            # The API server restarting, a CRD not installed yet: the next pass tries again.
            traceback.print_exc()
        time.sleep(interval)


if __name__ == "__main__":
    main()
