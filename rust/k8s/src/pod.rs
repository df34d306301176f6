//! Builds the pod that runs one attempt of a container task (flyteplugins' `ToK8sPodSpec` for
//! container tasks): image, templated command, environment, resources, scheduling, and names
//! and labels from which the attempt can be found again.

use std::collections::BTreeMap;

use alula_idl::flyteidl::core::{
    resources::{ResourceEntry, ResourceName},
    task_metadata::InterruptibleValue,
    task_template::Target,
    Container as TaskContainer, TaskTemplate,
};
use alula_propeller::{Attempt, PluginError};
use k8s_openapi::api::core::v1::{
    Container, EnvFromSource, EnvVar, Pod, PodSpec, ResourceRequirements, SecretEnvSource,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ObjectMeta;
use sha2::{Digest, Sha256};

use crate::config::PodPluginConfig;
use alula_propeller::template::TemplateVars;

/// The label every pod of ours carries; the watcher selects on it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "alula";
pub const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=alula";
/// The task's container; status mapping looks for it among the container statuses.
pub const PRIMARY_CONTAINER: &str = "task";
/// Annotations carry the full ids (labels are cut to 63 characters and sanitized).
pub const ANNOTATION_PREFIX: &str = "alula.dev/";

/// Kubernetes' limit for names used as DNS labels and for label values.
const MAX_LABEL: usize = 63;

/// The container of a task, if it has one (what this plugin runs).
pub fn task_container(task: &TaskTemplate) -> Option<&TaskContainer> {
    match &task.target {
        Some(Target::Container(c)) => Some(c),
        _ => None,
    }
}

/// The attempt's pod name: deterministic (a restarted propeller finds the same pod, and a second
/// `start` collides on it instead of running twice), a DNS-1123 label of at most 63 characters.
/// When the readable form had to be cut or changed, a hash of the full ids keeps names apart.
pub fn pod_name(attempt: &Attempt) -> String {
    // Not `Attempt::unique_name`: it runs the execution name and the node id together.
    let e = &attempt.execution;
    let element = attempt
        .array_index
        .map(|i| format!("-{i}"))
        .unwrap_or_default();
    let readable = format!(
        "{}-{}-{}-{}{element}-{}",
        e.project, e.domain, e.name, attempt.node_id, attempt.retry_attempt
    );
    let key = format!(
        "{}\0{}\0{}\0{}\0{}\0{}",
        attempt.execution.project,
        attempt.execution.domain,
        attempt.execution.name,
        attempt.node_id,
        attempt
            .array_index
            .map(|i| i.to_string())
            .unwrap_or_default(),
        attempt.retry_attempt
    );
    dns_safe(&readable, &key, true)
}

/// A label value for `raw`: `[A-Za-z0-9._-]`, alphanumeric at both ends, at most 63
/// characters; hashed when it had to change, so that distinct ids keep distinct values.
pub fn label_value(raw: &str) -> String {
    dns_safe(raw, raw, false)
}

fn dns_safe(raw: &str, key: &str, name: bool) -> String {
    let allowed = |c: char| {
        if name {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
        } else {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
        }
    };
    let cleaned: String = raw
        .chars()
        .map(|c| if name { c.to_ascii_lowercase() } else { c })
        .map(|c| if allowed(c) { c } else { '-' })
        .collect();
    let cleaned = cleaned.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if cleaned == raw && !raw.is_empty() && raw.len() <= MAX_LABEL {
        return cleaned.to_string();
    }
    let digest = Sha256::digest(key.as_bytes());
    let hash: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    // Room for "-" and the hash.
    let keep = MAX_LABEL - hash.len() - 1;
    let head =
        cleaned[..cleaned.len().min(keep)].trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if head.is_empty() {
        hash
    } else {
        format!("{head}-{hash}")
    }
}

fn interruptible(task: &TaskTemplate) -> bool {
    task.metadata.as_ref().and_then(|m| m.interruptible_value)
        == Some(InterruptibleValue::Interruptible(true))
}

fn pod_path(
    config: &PodPluginConfig,
    path: &std::path::Path,
    what: &str,
) -> Result<String, PluginError> {
    config.pod_path(path).ok_or_else(|| {
        PluginError::Invalid(format!(
            "{what} {} is outside the storage root {} the pod can see",
            path.display(),
            config.storage_root.display()
        ))
    })
}

/// The pod for `attempt`.
pub fn build_pod(attempt: &Attempt, config: &PodPluginConfig) -> Result<Pod, PluginError> {
    let task = attempt.task.as_ref();
    let container = task_container(task).ok_or_else(|| {
        PluginError::Invalid(
            "the pod plugin runs container tasks; this task has no container".into(),
        )
    })?;
    let name = pod_name(attempt);

    let image = attempt
        .overrides
        .as_ref()
        .map(|o| o.container_image.as_str())
        .filter(|i| !i.is_empty())
        .unwrap_or(&container.image);
    if image.is_empty() {
        return Err(PluginError::Invalid(
            "the task's container has no image".into(),
        ));
    }

    let input_prefix = attempt.inputs_path.parent().unwrap_or(&attempt.inputs_path);
    let vars = TemplateVars {
        input: pod_path(config, &attempt.inputs_path, "inputs")?,
        input_prefix: pod_path(config, input_prefix, "input prefix")?,
        output_prefix: pod_path(config, &attempt.output_prefix, "output prefix")?,
        raw_output_prefix: pod_path(config, &attempt.raw_output_prefix, "raw output prefix")?,
        checkpoint_prefix: pod_path(config, &attempt.checkpoint_prefix, "checkpoint prefix")?,
        prev_checkpoint_prefix: match &attempt.prev_checkpoint_prefix {
            Some(p) => pod_path(config, p, "previous checkpoint prefix")?,
            None => String::new(),
        },
        per_retry_unique_key: name.clone(),
        inputs: Some(attempt.inputs.as_ref()),
    };
    let render = |v: &[String]| -> Result<Vec<String>, PluginError> {
        v.iter()
            .map(|s| vars.render(s).map_err(PluginError::Invalid))
            .collect()
    };
    let command = render(&container.command)?;
    let args = render(&container.args)?;
    if command.is_empty() && args.is_empty() {
        return Err(PluginError::Invalid(
            "the task's container has no command".into(),
        ));
    }

    // The platform's defaults, the template's environment, then Flyte's per-attempt variables:
    // later ones win.
    let mut env: Vec<EnvVar> = Vec::new();
    let pairs = config
        .default_env_vars
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(
            container
                .env
                .iter()
                .map(|kv| (kv.key.as_str(), kv.value.as_str())),
        )
        .chain(attempt.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    for (k, v) in pairs {
        env.retain(|e| e.name != k);
        env.push(EnvVar {
            name: k.to_string(),
            value: Some(v.to_string()),
            value_from: None,
        });
    }

    let interruptible = interruptible(task);
    let mut node_selector = config.node_selector.clone();
    let mut tolerations = config.tolerations.clone();
    if interruptible {
        node_selector.extend(config.interruptible_node_selector.clone());
        tolerations.extend(config.interruptible_tolerations.clone());
    }

    let task_name = task
        .id
        .as_ref()
        .map(|i| i.name.as_str())
        .unwrap_or_default();
    let mut labels = config.default_labels.clone();
    labels.extend([
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
        ("project".into(), label_value(&attempt.execution.project)),
        ("domain".into(), label_value(&attempt.execution.domain)),
        ("execution-id".into(), label_value(&attempt.execution.name)),
        ("node-id".into(), label_value(&attempt.node_id)),
        ("task-name".into(), label_value(task_name)),
        ("attempt".into(), attempt.retry_attempt.to_string()),
    ]);
    if interruptible {
        labels.insert("interruptible".into(), "true".into());
    }
    let mut annotations = config.default_annotations.clone();
    let a = |k: &str| format!("{ANNOTATION_PREFIX}{k}");
    annotations.extend([
        (a("project"), attempt.execution.project.clone()),
        (a("domain"), attempt.execution.domain.clone()),
        (a("execution"), attempt.execution.name.clone()),
        (a("node-id"), attempt.node_id.clone()),
        (a("retry-attempt"), attempt.retry_attempt.to_string()),
    ]);
    if let Some(i) = attempt.array_index {
        annotations.insert(a("array-index"), i.to_string());
    }
    if let Some(id) = &task.id {
        annotations.insert(
            a("task"),
            format!("{}/{}/{}@{}", id.project, id.domain, id.name, id.version),
        );
    }

    Ok(Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(config.namespace.clone()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: PRIMARY_CONTAINER.into(),
                image: Some(image.to_string()),
                image_pull_policy: config.image_pull_policy.clone(),
                command: (!command.is_empty()).then_some(command),
                args: (!args.is_empty()).then_some(args),
                env: (!env.is_empty()).then_some(env),
                env_from: (!config.default_env_from_secrets.is_empty()).then(|| {
                    config
                        .default_env_from_secrets
                        .iter()
                        .map(|name| EnvFromSource {
                            secret_ref: Some(SecretEnvSource {
                                name: name.clone(),
                                optional: None,
                            }),
                            ..Default::default()
                        })
                        .collect()
                }),
                resources: Some(resources(attempt, container, config)),
                // A failed container's message is its log tail when it wrote no termination
                // message: what the user needs to see (as Flyte sets it).
                termination_message_policy: Some("FallbackToLogsOnError".into()),
                ..Default::default()
            }],
            // Retries are the engine's business, not the kubelet's.
            restart_policy: Some("Never".into()),
            service_account_name: config.service_account.clone(),
            node_selector: (!node_selector.is_empty()).then_some(node_selector),
            tolerations: (!tolerations.is_empty()).then_some(tolerations),
            ..Default::default()
        }),
        status: None,
    })
}

fn resource_key(entry: &ResourceEntry, config: &PodPluginConfig) -> Option<String> {
    match ResourceName::try_from(entry.name).ok()? {
        ResourceName::Cpu => Some("cpu".into()),
        ResourceName::Memory => Some("memory".into()),
        ResourceName::Gpu => Some(config.gpu_resource_name.clone()),
        ResourceName::EphemeralStorage => Some("ephemeral-storage".into()),
        // No pod resource: Flyte ignores them too.
        ResourceName::Storage | ResourceName::Unknown => None,
    }
}

/// Requests and limits: the template's, replaced name by name by the node's overrides; then a
/// missing request takes the limit or the platform default, and a missing limit the platform
/// default limit or the request (Flyte sets limits so that pods are not best-effort).
/// Extended resources (GPUs) need request == limit, which the second rule gives.
fn resources(
    attempt: &Attempt,
    container: &TaskContainer,
    config: &PodPluginConfig,
) -> ResourceRequirements {
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    let overrides = attempt
        .overrides
        .as_ref()
        .and_then(|o| o.resources.as_ref());
    for res in container.resources.iter().chain(overrides) {
        for e in &res.requests {
            if let Some(k) = resource_key(e, config) {
                requests.insert(k, e.value.clone());
            }
        }
        for e in &res.limits {
            if let Some(k) = resource_key(e, config) {
                limits.insert(k, e.value.clone());
            }
        }
    }
    for (k, v) in &config.default_requests {
        if !requests.contains_key(k) {
            let value = limits.get(k).unwrap_or(v).clone();
            requests.insert(k.clone(), value);
        }
    }
    for (k, v) in &limits {
        requests.entry(k.clone()).or_insert_with(|| v.clone());
    }
    for (k, v) in &requests {
        if !limits.contains_key(k) {
            let value = config.default_limits.get(k).unwrap_or(v).clone();
            limits.insert(k.clone(), value);
        }
    }
    let q = |m: BTreeMap<String, String>| -> Option<BTreeMap<String, Quantity>> {
        (!m.is_empty()).then(|| m.into_iter().map(|(k, v)| (k, Quantity(v))).collect())
    };
    ResourceRequirements {
        requests: q(requests),
        limits: q(limits),
        ..Default::default()
    }
}

#[cfg(test)]
#[path = "pod_tests.rs"]
mod tests;
