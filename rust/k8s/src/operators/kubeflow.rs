//! `pytorch`, `tensorflow` and `mpi` tasks as Kubeflow training jobs (kubeflow.org/v1
//! `PyTorchJob`, `TFJob`, `MPIJob`), built from flytekit's `Distributed*TrainingTask` as
//! flyteplugins' `kfoperators` build them: one replica spec per role (its count, image,
//! resources and restart policy over the task's pod), the run policy, PyTorch's elastic policy
//! and MPI's slots per worker.

#![allow(deprecated)] // flytekit still fills the replica specs' deprecated fields when asked.

use alula_idl::flyteidl::core::Resources;
use alula_idl::flyteidl::plugins::kubeflow::{
    CleanPodPolicy, DistributedMpiTrainingTask, DistributedPyTorchTrainingTask,
    DistributedTensorflowTrainingTask, RunPolicy,
};
use alula_idl::flyteidl::plugins::{CommonReplicaSpec, RestartPolicy};
use alula_propeller::{AttemptStatus, PluginError};
use serde_json::{json, Map, Value as Json};

use super::status::kubeflow;
use super::{Job, Operator, Replica};

pub struct PyTorch;
pub struct TensorFlow;
pub struct Mpi;

/// One role's settings, from the common spec or (older flytekit) the deprecated fields.
#[derive(Default)]
struct Role<'a> {
    replicas: i32,
    image: &'a str,
    resources: Option<&'a Resources>,
    restart_policy: i32,
    command: &'a [String],
}

impl<'a> Role<'a> {
    fn new(
        common: Option<&'a CommonReplicaSpec>,
        replicas: i32,
        image: &'a str,
        resources: Option<&'a Resources>,
        restart_policy: i32,
    ) -> Self {
        match common {
            Some(c) => Role {
                replicas: c.replicas,
                image: &c.image,
                resources: c.resources.as_ref(),
                restart_policy: c.restart_policy,
                command: &[],
            },
            None => Role {
                replicas,
                image,
                resources,
                restart_policy,
                command: &[],
            },
        }
    }
}

fn restart_policy(p: i32) -> &'static str {
    match RestartPolicy::try_from(p).unwrap_or(RestartPolicy::Never) {
        RestartPolicy::Never => "Never",
        RestartPolicy::OnFailure => "OnFailure",
        RestartPolicy::Always => "Always",
    }
}

/// A role's replica spec; `container` is the name the operator looks for.
fn replica_spec(job: &Job<'_>, role: &Role<'_>, container: &str) -> Result<Json, PluginError> {
    let pod = job.replica(&Replica {
        container_name: container,
        image: role.image,
        resources: role.resources,
        command: role.command,
        ..Default::default()
    })?;
    Ok(json!({
        "replicas": role.replicas,
        "restartPolicy": restart_policy(role.restart_policy),
        "template": pod.template,
    }))
}

/// Flyte's `ParseRunPolicy`: the clean pod policy always, the rest when set.
fn run_policy(p: Option<&RunPolicy>) -> Option<Json> {
    let p = p?;
    let clean = match CleanPodPolicy::try_from(p.clean_pod_policy)
        .unwrap_or(CleanPodPolicy::CleanpodPolicyNone)
    {
        CleanPodPolicy::CleanpodPolicyNone => "None",
        CleanPodPolicy::CleanpodPolicyRunning => "Running",
        CleanPodPolicy::CleanpodPolicyAll => "All",
    };
    let mut out = Map::new();
    out.insert("cleanPodPolicy".into(), json!(clean));
    for (key, value) in [
        ("ttlSecondsAfterFinished", p.ttl_seconds_after_finished),
        ("activeDeadlineSeconds", p.active_deadline_seconds),
        ("backoffLimit", p.backoff_limit),
    ] {
        if value != 0 {
            out.insert(key.into(), json!(value));
        }
    }
    Some(Json::Object(out))
}

fn with_run_policy(mut spec: Json, p: Option<&RunPolicy>) -> Json {
    if let Some(p) = run_policy(p) {
        spec["runPolicy"] = p;
    }
    spec
}

fn need_workers(n: i32, kind: &str) -> Result<(), PluginError> {
    if n <= 0 {
        return Err(PluginError::Invalid(format!(
            "the {kind} task asks for {n} workers; it needs at least one"
        )));
    }
    Ok(())
}

impl Operator for PyTorch {
    fn name(&self) -> &'static str {
        "pytorch"
    }

    fn resource(&self) -> (&'static str, &'static str, &'static str, &'static str) {
        ("kubeflow.org", "v1", "PyTorchJob", "pytorchjobs")
    }

    fn spec(&self, job: &Job<'_>) -> Result<Json, PluginError> {
        let task: DistributedPyTorchTrainingTask = job.custom("DistributedPyTorchTrainingTask")?;
        let w = task.worker_replicas.clone().unwrap_or_default();
        let workers = Role::new(
            w.common.as_ref(),
            w.replicas,
            &w.image,
            w.resources.as_ref(),
            w.restart_policy,
        );
        let mut specs = Map::new();
        let elastic = task.elastic_config.as_ref();
        // Elastic training has no master: the workers meet at the rendezvous (Flyte drops it).
        if elastic.is_none() {
            need_workers(workers.replicas, "PyTorch")?;
            let m = task.master_replicas.clone().unwrap_or_default();
            let mut master = Role::new(
                m.common.as_ref(),
                m.replicas,
                &m.image,
                m.resources.as_ref(),
                m.restart_policy,
            );
            // There is one master, whatever the message says.
            master.replicas = 1;
            specs.insert("Master".into(), replica_spec(job, &master, "pytorch")?);
        }
        specs.insert("Worker".into(), replica_spec(job, &workers, "pytorch")?);
        let mut spec = json!({ "pytorchReplicaSpecs": specs });
        if let Some(e) = elastic {
            spec["elasticPolicy"] = json!({
                "rdzvBackend": e.rdzv_backend,
                "minReplicas": e.min_replicas,
                "maxReplicas": e.max_replicas,
                "nProcPerNode": e.nproc_per_node,
                "maxRestarts": e.max_restarts,
            });
        }
        Ok(with_run_policy(spec, task.run_policy.as_ref()))
    }

    fn status(&self, object: &Json) -> AttemptStatus {
        kubeflow(object, "PyTorchJob")
    }
}

impl Operator for TensorFlow {
    fn name(&self) -> &'static str {
        "tensorflow"
    }

    fn resource(&self) -> (&'static str, &'static str, &'static str, &'static str) {
        ("kubeflow.org", "v1", "TFJob", "tfjobs")
    }

    fn spec(&self, job: &Job<'_>) -> Result<Json, PluginError> {
        let task: DistributedTensorflowTrainingTask =
            job.custom("DistributedTensorflowTrainingTask")?;
        let mut specs = Map::new();
        // Roles without replicas are left out (Flyte's `tfReplicaSpecs` holds only the others).
        for (role, spec) in [
            ("Chief", &task.chief_replicas),
            ("PS", &task.ps_replicas),
            ("Worker", &task.worker_replicas),
            ("Evaluator", &task.evaluator_replicas),
        ] {
            let s = spec.clone().unwrap_or_default();
            let r = Role::new(
                s.common.as_ref(),
                s.replicas,
                &s.image,
                s.resources.as_ref(),
                s.restart_policy,
            );
            if r.replicas > 0 {
                specs.insert(role.into(), replica_spec(job, &r, "tensorflow")?);
            }
        }
        if !specs.contains_key("Worker") && !specs.contains_key("Chief") {
            return Err(PluginError::Invalid(
                "the TensorFlow task asks for no workers and no chief; it needs one of them".into(),
            ));
        }
        let spec = json!({ "tfReplicaSpecs": specs });
        Ok(with_run_policy(spec, task.run_policy.as_ref()))
    }

    fn status(&self, object: &Json) -> AttemptStatus {
        kubeflow(object, "TFJob")
    }
}

impl Operator for Mpi {
    fn name(&self) -> &'static str {
        "mpi"
    }

    fn resource(&self) -> (&'static str, &'static str, &'static str, &'static str) {
        ("kubeflow.org", "v1", "MPIJob", "mpijobs")
    }

    fn spec(&self, job: &Job<'_>) -> Result<Json, PluginError> {
        let task: DistributedMpiTrainingTask = job.custom("DistributedMPITrainingTask")?;
        let w = task.worker_replicas.clone().unwrap_or_default();
        let l = task.launcher_replicas.clone().unwrap_or_default();
        let mut workers = Role::new(
            w.common.as_ref(),
            w.replicas,
            &w.image,
            w.resources.as_ref(),
            w.restart_policy,
        );
        workers.command = &w.command;
        need_workers(workers.replicas, "MPI")?;
        let mut launcher = Role::new(
            l.common.as_ref(),
            l.replicas,
            &l.image,
            l.resources.as_ref(),
            l.restart_policy,
        );
        launcher.command = &l.command;
        // One launcher runs `mpirun`.
        launcher.replicas = 1;
        let spec = json!({
            "slotsPerWorker": task.slots.max(1),
            "mpiReplicaSpecs": {
                "Launcher": replica_spec(job, &launcher, "mpi")?,
                "Worker": replica_spec(job, &workers, "mpi")?,
            },
        });
        Ok(with_run_policy(spec, task.run_policy.as_ref()))
    }

    fn status(&self, object: &Json) -> AttemptStatus {
        kubeflow(object, "MPIJob")
    }
}
