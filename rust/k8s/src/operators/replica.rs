//! The pods of an operator's replicas (a Spark driver, a Ray head, a PyTorch worker...), built
//! by the pod plugin's own code so that every replica gets what a pod task would: the attempt's
//! environment, rendered command, resources, scheduling, pod template, secrets and labels.
//!
//! A replica differs from the task's pod only where the plugin message says so (Flyte's
//! `ToReplicaSpecWithOverrides`): its own image, resources, pod spec (`K8sPod`), command, the
//! container name its operator expects, and for a Spark driver, never interruptible.

use std::collections::BTreeMap;
use std::sync::Arc;

use alula_idl::flyteidl::core::{
    task_template::Target, K8sPod, Resources, TaskNodeOverrides, TaskTemplate,
};
use alula_propeller::process::pod_task::primary_container_name;
use alula_propeller::{Attempt, PluginError};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use kube::api::ObjectMeta;

use crate::config::PodPluginConfig;
use crate::pod::{build_pod_with, PRIMARY_CONTAINER_ANNOTATION};
use crate::podtemplate::struct_to_json;

/// How one replica departs from the task's own pod.
#[derive(Debug, Default, Clone)]
pub struct Replica<'a> {
    /// The primary container's name, as the operator looks for it (`pytorch`, `ray-head`).
    pub container_name: &'a str,
    /// The replica's image (empty: the task's).
    pub image: &'a str,
    /// The replica's resources, replacing the task's (and the node's overrides) name by name.
    pub resources: Option<&'a Resources>,
    /// The replica's pod (flytekit's `pod_template` on a Ray node or a Spark driver), which
    /// already holds the task's primary container.
    pub k8s_pod: Option<&'a K8sPod>,
    /// Replaces the primary container's command, without arguments (an MPI worker's `sshd`).
    pub command: &'a [String],
    /// The operator starts the process itself (a Ray node runs `ray start`): no arguments.
    pub clear_args: bool,
    /// Overrides the attempt's interruptible setting (a Spark driver never is).
    pub interruptible: Option<bool>,
}

/// A replica's pod, and the name of its primary container in it.
#[derive(Debug, Clone)]
pub struct ReplicaPod {
    pub template: PodTemplateSpec,
    pub primary: String,
}

impl ReplicaPod {
    pub fn spec(&self) -> &PodSpec {
        // Always set by `build`.
        self.template
            .spec
            .as_ref()
            .expect("a replica has a pod spec")
    }

    pub fn primary_container(&self) -> &Container {
        let spec = self.spec();
        spec.containers
            .iter()
            .find(|c| c.name == self.primary)
            .unwrap_or(&spec.containers[0])
    }

    pub fn metadata(&self) -> &ObjectMeta {
        self.template
            .metadata
            .as_ref()
            .expect("a replica has metadata")
    }
}

/// The pod of `replica` for `attempt`, on the base pod template `base`.
pub fn build(
    attempt: &Attempt,
    config: &PodPluginConfig,
    base: Option<&PodTemplateSpec>,
    replica: &Replica<'_>,
) -> Result<ReplicaPod, PluginError> {
    let mut a = attempt.clone();
    let mut task = (*attempt.task).clone();
    // The task's resources, for a replica pod whose primary container sets none.
    let mut inherited = None;
    if let Some(pod) = replica.k8s_pod.filter(|p| p.pod_spec.is_some()) {
        // Its primary container is found as a pod task's (the pod's `primary_container_name`,
        // the task config's, or its only container).
        let (pod, own_resources) = over_task_container(pod, &task)?;
        task.target = Some(Target::K8sPod(pod));
        inherited = own_resources;
    }
    a.task = Arc::new(task);
    if !replica.image.is_empty() || replica.resources.is_some() || inherited.is_some() {
        let o = a.overrides.get_or_insert_with(TaskNodeOverrides::default);
        if !replica.image.is_empty() {
            o.container_image = replica.image.to_string();
        }
        if let Some(r) = replica.resources {
            // The replica's own resources replace the task's and the node's, as in Flyte.
            o.resources = Some(r.clone());
        } else if let Some(mut r) = inherited {
            // The task's resources, which the node's overrides still replace name by name.
            if let Some(node) = o.resources.take() {
                for e in node.requests {
                    r.requests.retain(|x| x.name != e.name);
                    r.requests.push(e);
                }
                for e in node.limits {
                    r.limits.retain(|x| x.name != e.name);
                    r.limits.push(e);
                }
            }
            o.resources = Some(r);
        }
    }
    if replica.interruptible.is_some() {
        Arc::make_mut(&mut a.settings).interruptible = replica.interruptible;
    }
    let pod = build_pod_with(&a, config, base)?;
    let mut metadata = pod.metadata;
    let mut spec = pod.spec.unwrap_or_default();
    let annotations = metadata.annotations.get_or_insert_with(BTreeMap::new);
    let old = annotations
        .get(PRIMARY_CONTAINER_ANNOTATION)
        .cloned()
        .unwrap_or_default();
    let primary = if replica.container_name.is_empty() {
        old.clone()
    } else {
        replica.container_name.to_string()
    };
    annotations.insert(PRIMARY_CONTAINER_ANNOTATION.into(), primary.clone());
    let container = spec
        .containers
        .iter_mut()
        .find(|c| c.name == old)
        .ok_or_else(|| PluginError::Invalid(format!("the replica has no container {old:?}")))?;
    container.name = primary.clone();
    if !replica.command.is_empty() {
        container.command = Some(replica.command.to_vec());
        container.args = None;
    }
    if replica.clear_args {
        container.args = None;
    }
    // The object's name and namespace are the custom resource's; the operator names its pods.
    metadata.name = None;
    metadata.namespace = None;
    Ok(ReplicaPod {
        template: PodTemplateSpec {
            metadata: Some(metadata),
            spec: Some(spec),
        },
        primary,
    })
}

/// The replica's pod with the task's own container beneath its primary container: what the
/// pod leaves out (image, command, arguments, environment, resources) is the task's, as when
/// Flyte merges a Spark driver's or executor's pod over the task's pod. flytekit sends such a
/// pod as the user wrote it, its primary container often no more than a name.
/// Also returns the task's resources when the primary container sets none.
fn over_task_container(
    pod: &K8sPod,
    task: &TaskTemplate,
) -> Result<(K8sPod, Option<Resources>), PluginError> {
    let Some(Target::Container(own)) = &task.target else {
        return Ok((pod.clone(), None));
    };
    let Some(spec) = &pod.pod_spec else {
        return Ok((pod.clone(), None));
    };
    let mut spec = struct_to_json(spec);
    let names: Vec<String> = spec["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let primary = primary_container_name(pod, task, &refs)?;
    let Some(container) = spec["containers"]
        .as_array_mut()
        .and_then(|cs| cs.iter_mut().find(|c| c["name"] == primary.as_str()))
    else {
        return Ok((pod.clone(), None));
    };
    let unset = |v: &serde_json::Value| match v {
        serde_json::Value::Null => true,
        serde_json::Value::String(s) => s.is_empty(),
        serde_json::Value::Array(a) => a.is_empty(),
        serde_json::Value::Object(o) => o.is_empty(),
        _ => false,
    };
    if unset(&container["image"]) {
        container["image"] = own.image.clone().into();
    }
    if unset(&container["command"]) && unset(&container["args"]) {
        container["command"] = serde_json::json!(own.command);
        container["args"] = serde_json::json!(own.args);
    }
    // The task's variables first: the pod's own win on a clash.
    let mut env: Vec<serde_json::Value> = own
        .env
        .iter()
        .filter(|kv| {
            !container["env"]
                .as_array()
                .is_some_and(|e| e.iter().any(|v| v["name"] == kv.key.as_str()))
        })
        .map(|kv| serde_json::json!({"name": kv.key, "value": kv.value}))
        .collect();
    env.extend(container["env"].as_array().cloned().unwrap_or_default());
    if !env.is_empty() {
        container["env"] = env.into();
    }
    let resources = unset(&container["resources"])
        .then(|| own.resources.clone())
        .flatten();
    let pod_spec = serde_json::from_value(spec)
        .map_err(|e| PluginError::Invalid(format!("the replica's pod spec: {e}")))?;
    Ok((
        K8sPod {
            pod_spec: Some(pod_spec),
            ..pod.clone()
        },
        resources,
    ))
}
