//! `ray` tasks as `RayJob`s (ray.io/v1), built from flytekit's `RayJob` as flyteplugins'
//! `ray.go` builds them: a head group and worker groups whose pods are the task's pod (each
//! replaced by the group's own pod when flytekit gave one), the task's command as the job's
//! entrypoint, the runtime environment, shutdown and time to live after the job.

use std::collections::BTreeMap;

use alula_idl::flyteidl::plugins::RayJob;
use alula_propeller::{AttemptStatus, PluginError};
use base64::Engine;
use k8s_openapi::api::core::v1::{ContainerPort, EnvVar, EnvVarSource, ObjectFieldSelector};
use serde_json::{json, Value as Json};

use super::status::{failed, succeeded, text};
use super::{Job, Operator, Replica, ReplicaPod};

const HEAD_CONTAINER: &str = "ray-head";
const WORKER_CONTAINER: &str = "ray-worker";
/// Flyte's defaults: the cluster outlives its job by an hour unless the task says otherwise,
/// and is shut down once the job finished.
const DEFAULT_TTL_SECONDS: i32 = 3600;
/// The head's ports, as KubeRay expects them named: GCS, client, dashboard, metrics.
const HEAD_PORTS: &[(&str, i32)] = &[
    ("gcs-server", 6379),
    ("client", 10001),
    ("dashboard", 8265),
    ("metrics", 8080),
];

pub struct Ray;

/// `ray start` parameters: the task's, with Flyte's defaults for what it leaves out.
fn start_params(own: &BTreeMap<String, String>, head: bool) -> BTreeMap<String, String> {
    let mut params = own.clone();
    let mut default = |k: &str, v: &str| {
        params.entry(k.to_string()).or_insert_with(|| v.to_string());
    };
    if head {
        default("dashboard-host", "0.0.0.0");
        default("include-dashboard", "true");
    }
    default("node-ip-address", "$MY_POD_IP");
    default("disable-usage-stats", "true");
    params
}

/// A Ray node's pod: KubeRay runs `ray start` in it, so the task's arguments go; the node
/// learns its address from `MY_POD_IP` (the default `node-ip-address`).
fn node_template(mut pod: ReplicaPod, head: bool) -> Json {
    let primary = pod.primary.clone();
    if let Some(spec) = pod.template.spec.as_mut() {
        if let Some(c) = spec.containers.iter_mut().find(|c| c.name == primary) {
            c.args = None;
            c.command = None;
            c.env.get_or_insert_with(Vec::new).push(EnvVar {
                name: "MY_POD_IP".into(),
                value: None,
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "status.podIP".into(),
                        api_version: None,
                    }),
                    ..Default::default()
                }),
            });
            if head {
                c.ports = Some(
                    HEAD_PORTS
                        .iter()
                        .map(|(name, port)| ContainerPort {
                            name: Some(name.to_string()),
                            container_port: *port,
                            ..Default::default()
                        })
                        .collect(),
                );
            }
        }
        // KubeRay restarts its nodes itself; `Never` is the pod plugin's rule for tasks.
        spec.restart_policy = None;
    }
    json!(pod.template)
}

/// The runtime environment as YAML: flytekit's `runtime_env_yaml`, else its older base64 JSON
/// `runtime_env` (JSON is YAML, so it passes as is once decoded).
fn runtime_env_yaml(job: &RayJob) -> Result<String, PluginError> {
    #[allow(deprecated)]
    let (yaml, old) = (&job.runtime_env_yaml, &job.runtime_env);
    if !yaml.is_empty() || old.is_empty() {
        return Ok(yaml.clone());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(old.trim())
        .map_err(|e| PluginError::Invalid(format!("the task's runtime_env is not base64: {e}")))?;
    String::from_utf8(bytes)
        .map_err(|_| PluginError::Invalid("the task's runtime_env is not UTF-8 text".into()))
}

impl Operator for Ray {
    fn name(&self) -> &'static str {
        "ray"
    }

    fn resource(&self) -> (&'static str, &'static str, &'static str, &'static str) {
        ("ray.io", "v1", "RayJob", "rayjobs")
    }

    fn spec(&self, job: &Job<'_>) -> Result<Json, PluginError> {
        let ray: RayJob = job.custom("RayJob")?;
        let cluster = ray.ray_cluster.clone().unwrap_or_default();
        let head_group = cluster.head_group_spec.clone().unwrap_or_default();
        let head = job.replica(&Replica {
            container_name: HEAD_CONTAINER,
            k8s_pod: head_group.k8s_pod.as_ref(),
            ..Default::default()
        })?;
        // The job runs the task's command line on the head, submitted by KubeRay.
        let c = head.primary_container();
        let entrypoint = c
            .command
            .iter()
            .flatten()
            .chain(c.args.iter().flatten())
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        if entrypoint.is_empty() {
            return Err(PluginError::Invalid(
                "the Ray task's container has no command to run as the job's entrypoint".into(),
            ));
        }
        let mut workers = Vec::new();
        for group in &cluster.worker_group_spec {
            if group.group_name.is_empty() {
                return Err(PluginError::Invalid(
                    "a worker group of the Ray task has no name".into(),
                ));
            }
            let pod = job.replica(&Replica {
                container_name: WORKER_CONTAINER,
                k8s_pod: group.k8s_pod.as_ref(),
                ..Default::default()
            })?;
            let mut spec = json!({
                "groupName": group.group_name,
                "replicas": group.replicas,
                "rayStartParams": start_params(&group.ray_start_params, false),
                "template": node_template(pod, false),
            });
            // Unset bounds default to the replica count, as flyteplugins does.
            spec["minReplicas"] = json!(if group.min_replicas > 0 {
                group.min_replicas
            } else {
                group.replicas
            });
            spec["maxReplicas"] = json!(group.max_replicas.max(group.replicas));
            workers.push(spec);
        }
        let mut cluster_spec = json!({
            "headGroupSpec": {
                "rayStartParams": start_params(&head_group.ray_start_params, true),
                "template": node_template(head, true),
            },
            "workerGroupSpecs": workers,
        });
        if cluster.enable_autoscaling {
            cluster_spec["enableInTreeAutoscaling"] = json!(true);
        }
        let mut spec = json!({
            "entrypoint": entrypoint,
            "rayClusterSpec": cluster_spec,
            // Flyte's `shutdownAfterJobFinishes` default is on; the task may only add to it.
            "shutdownAfterJobFinishes": true,
            "ttlSecondsAfterFinished": if ray.ttl_seconds_after_finished > 0 {
                ray.ttl_seconds_after_finished
            } else {
                DEFAULT_TTL_SECONDS
            },
        });
        let runtime_env = runtime_env_yaml(&ray)?;
        if !runtime_env.is_empty() {
            spec["runtimeEnvYAML"] = json!(runtime_env);
        }
        Ok(spec)
    }

    /// `.status.jobDeploymentStatus` `Failed` fails (the cluster or submission failed);
    /// `.status.jobStatus` `SUCCEEDED` succeeds, `FAILED` and `STOPPED` fail with
    /// `.status.message`; the rest (`Initializing`, `Running`, `PENDING`) are on the way.
    fn status(&self, object: &Json) -> AttemptStatus {
        let message = text(object, "/status/message");
        match (
            text(object, "/status/jobDeploymentStatus"),
            text(object, "/status/jobStatus"),
        ) {
            (_, "SUCCEEDED") => succeeded(),
            (_, "FAILED") => failed("RayJobFailed", message),
            (_, "STOPPED") => failed("RayJobStopped", message),
            ("Failed", _) => failed("RayJobDeploymentFailed", message),
            _ => AttemptStatus::Running,
        }
    }
}
