//! Builds the pod that runs one attempt of a container task (flyteplugins' `ToK8sPodSpec` for
//! container tasks): image, templated command, environment, resources, scheduling, and names
//! and labels from which the attempt can be found again.

use std::collections::BTreeMap;

use alula_idl::flyteidl::core::{
    resources::{ResourceEntry, ResourceName},
    task_metadata::InterruptibleValue,
    task_template::Target,
    Resources, SecurityContext, TaskNodeOverrides, TaskTemplate,
};
use alula_propeller::process::pod_task;
use alula_propeller::{Attempt, PluginError};
use k8s_openapi::api::core::v1::{
    Container, EnvFromSource, EnvVar, Pod, PodSpec, PodTemplateSpec, ResourceRequirements,
    SecretEnvSource,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ObjectMeta;
use sha2::{Digest, Sha256};

use crate::config::PodPluginConfig;
use crate::podtemplate;
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

/// Where the pod records its primary container's name (status mapping judges the attempt by it).
pub const PRIMARY_CONTAINER_ANNOTATION: &str = "alula.dev/primary-container";
/// The task config entry (and `K8sPod` field) flytekit names a pod task's primary container in.
pub use alula_propeller::process::pod_task::PRIMARY_CONTAINER_KEY;

/// Whether this plugin runs `task`: a container task, or a pod task (`k8s_pod` target: a
/// flytekit task with a `pod_template`).
pub fn runs(task: &TaskTemplate) -> bool {
    matches!(
        task.target,
        Some(Target::Container(_)) | Some(Target::K8sPod(_))
    )
}

/// The pod template the task names (`TaskMetadata.pod_template_name`), if any.
pub fn pod_template_name(task: &TaskTemplate) -> Option<&str> {
    task.metadata
        .as_ref()
        .map(|m| m.pod_template_name.as_str())
        .filter(|n| !n.is_empty())
}

/// A volume name (a DNS-1123 label) for `raw`, distinct for distinct `raw`.
pub fn volume_name(prefix: &str, raw: &str) -> String {
    let readable = format!("{prefix}-{raw}");
    dns_safe(&readable, &readable, true)
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

/// Whether the attempt runs on interruptible nodes: the execution's override, else the task's.
fn interruptible(attempt: &Attempt) -> bool {
    attempt.settings.interruptible.unwrap_or_else(|| {
        attempt
            .task
            .metadata
            .as_ref()
            .and_then(|m| m.interruptible_value)
            == Some(InterruptibleValue::Interruptible(true))
    })
}

fn run_as_account(s: Option<&SecurityContext>) -> Option<String> {
    s.and_then(|s| s.run_as.as_ref())
        .map(|r| r.k8s_service_account.clone())
        .filter(|a| !a.is_empty())
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

/// The task's own pod before Flyte's settings and the pod template: its containers, the
/// primary one's name, and the `k8s_pod` target's labels and annotations.
struct TaskPod {
    spec: PodSpec,
    primary: String,
    /// The container target's resources (a pod target has them in its containers).
    resources: Option<Resources>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

/// The task's pod; a node's `pod_template` override (`with_overrides(pod_template=...)`, which
/// flytekit serializes with the task's primary container in it) replaces the task's target.
fn task_pod(
    task: &TaskTemplate,
    overrides: Option<&TaskNodeOverrides>,
) -> Result<TaskPod, PluginError> {
    let overridden = overrides
        .and_then(|o| o.pod_template.clone())
        .filter(|k| k.pod_spec.is_some())
        .map(Target::K8sPod);
    match overridden.as_ref().or(task.target.as_ref()) {
        Some(Target::Container(c)) => Ok(TaskPod {
            spec: PodSpec {
                containers: vec![Container {
                    name: PRIMARY_CONTAINER.into(),
                    image: Some(c.image.clone()),
                    command: Some(c.command.clone()),
                    args: Some(c.args.clone()),
                    env: Some(
                        c.env
                            .iter()
                            .map(|kv| plain_env(&kv.key, &kv.value))
                            .collect(),
                    ),
                    ..Default::default()
                }],
                ..Default::default()
            },
            primary: PRIMARY_CONTAINER.into(),
            resources: c.resources.clone(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        }),
        Some(Target::K8sPod(k)) => {
            let spec = k
                .pod_spec
                .as_ref()
                .map(podtemplate::pod_spec_from_struct)
                .transpose()?
                .unwrap_or_default();
            // Found as the process plugin finds it, so a task runs the same command anywhere.
            let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
            let primary = pod_task::primary_container_name(k, task, &names)?;
            let meta = k.metadata.clone().unwrap_or_default();
            Ok(TaskPod {
                spec,
                primary,
                resources: None,
                labels: meta.labels.into_iter().collect(),
                annotations: meta.annotations.into_iter().collect(),
            })
        }
        _ => Err(PluginError::Invalid(
            "the pod plugin runs container and pod tasks; this task has neither".into(),
        )),
    }
}

fn plain_env(k: &str, v: &str) -> EnvVar {
    EnvVar {
        name: k.to_string(),
        value: Some(v.to_string()),
        value_from: None,
    }
}

/// The pod for `attempt`, without a pod template.
pub fn build_pod(attempt: &Attempt, config: &PodPluginConfig) -> Result<Pod, PluginError> {
    build_pod_with(attempt, config, None)
}

/// The pod for `attempt` on the base pod template `base` (the task's named template or the
/// configured default, resolved by the caller).
pub fn build_pod_with(
    attempt: &Attempt,
    config: &PodPluginConfig,
    base: Option<&PodTemplateSpec>,
) -> Result<Pod, PluginError> {
    let task = attempt.task.as_ref();
    let TaskPod {
        mut spec,
        primary,
        resources: task_resources,
        labels: pod_labels,
        annotations: pod_annotations,
    } = task_pod(task, attempt.overrides.as_ref())?;
    let name = pod_name(attempt);

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
    let render = |v: Option<Vec<String>>| -> Result<Option<Vec<String>>, PluginError> {
        let v = v
            .unwrap_or_default()
            .iter()
            .map(|s| vars.render(s).map_err(PluginError::Invalid))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((!v.is_empty()).then_some(v))
    };

    // The platform's defaults, the execution's `envs`, the container's own variables, then
    // Flyte's per-attempt ones: later ones win.
    let env_before: Vec<(&str, &str)> = config
        .default_env_vars
        .iter()
        .chain(&attempt.settings.envs)
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for c in &mut spec.containers {
        c.command = render(c.command.take())?;
        c.args = render(c.args.take())?;
        let own: Vec<EnvVar> = c.env.take().unwrap_or_default();
        let mut env: Vec<EnvVar> = Vec::new();
        let vars = env_before
            .iter()
            .map(|(k, v)| plain_env(k, v))
            .chain(own)
            .chain(attempt.env.iter().map(|(k, v)| plain_env(k, v)));
        for var in vars {
            env.retain(|e| e.name != var.name);
            env.push(var);
        }
        c.env = (!env.is_empty()).then_some(env);
        if c.name != primary {
            continue;
        }
        if let Some(image) = attempt
            .overrides
            .as_ref()
            .map(|o| o.container_image.as_str())
            .filter(|i| !i.is_empty())
        {
            c.image = Some(image.to_string());
        }
        if c.image.as_deref().unwrap_or_default().is_empty() {
            return Err(PluginError::Invalid(
                "the task's container has no image".into(),
            ));
        }
        if c.command.is_none() && c.args.is_none() {
            return Err(PluginError::Invalid(
                "the task's container has no command".into(),
            ));
        }
        c.resources = Some(resources(
            attempt,
            c.resources.take(),
            task_resources.as_ref(),
            config,
        ));
        if c.image_pull_policy.is_none() {
            c.image_pull_policy = config.image_pull_policy.clone();
        }
        // A failed container's message is its log tail when it wrote no termination
        // message: what the user needs to see (as Flyte sets it).
        c.termination_message_policy = Some("FallbackToLogsOnError".into());
        if !config.default_env_from_secrets.is_empty() {
            let from = c.env_from.get_or_insert_with(Vec::new);
            from.extend(
                config
                    .default_env_from_secrets
                    .iter()
                    .map(|name| EnvFromSource {
                        secret_ref: Some(SecretEnvSource {
                            name: name.clone(),
                            optional: None,
                        }),
                        ..Default::default()
                    }),
            );
        }
    }

    let interruptible = interruptible(attempt);
    let mut node_selector = config.node_selector.clone();
    let mut tolerations = config.tolerations.clone();
    if interruptible {
        node_selector.extend(config.interruptible_node_selector.clone());
        tolerations.extend(config.interruptible_tolerations.clone());
    }
    // The task's own pod spec wins over the platform's scheduling.
    node_selector.extend(spec.node_selector.take().unwrap_or_default());
    tolerations.extend(spec.tolerations.take().unwrap_or_default());
    spec.node_selector = (!node_selector.is_empty()).then_some(node_selector);
    spec.tolerations = (!tolerations.is_empty()).then_some(tolerations);
    // Run as: the execution's account, the task's, the pod's (or its template's), the default.
    let account = run_as_account(attempt.settings.security_context.as_ref())
        .or_else(|| run_as_account(task.security_context.as_ref()))
        .or_else(|| spec.service_account_name.take())
        .or_else(|| {
            base.and_then(|b| b.spec.as_ref())
                .and_then(|s| s.service_account_name.clone())
        })
        .or_else(|| config.service_account.clone());

    // Flyte merges its pod onto the base template, then the secrets webhook adds secrets.
    let mut spec = match base {
        Some(b) => podtemplate::apply(b, &spec, &primary)?,
        None => spec,
    };
    // Retries are the engine's business, not the kubelet's.
    spec.restart_policy = Some("Never".into());
    spec.service_account_name = account;
    crate::secrets::inject(&mut spec, &alula_propeller::secrets::of_attempt(attempt))?;
    // Raw containers: the copilot's init container, sidecar and shared folders.
    crate::copilot::add(attempt, config, &mut spec, &primary)?;

    let task_name = task
        .id
        .as_ref()
        .map(|i| i.name.as_str())
        .unwrap_or_default();
    let template_meta = base.and_then(|b| b.metadata.as_ref());
    // The template's, the platform's, the task pod's, the execution's, then ours.
    let mut labels: BTreeMap<String, String> = template_meta
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.extend(config.default_labels.clone());
    labels.extend(pod_labels);
    labels.extend(attempt.settings.labels.clone());
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
    let mut annotations: BTreeMap<String, String> = template_meta
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default();
    annotations.extend(config.default_annotations.clone());
    annotations.extend(pod_annotations);
    annotations.extend(attempt.settings.annotations.clone());
    let a = |k: &str| format!("{ANNOTATION_PREFIX}{k}");
    annotations.extend([
        (a("project"), attempt.execution.project.clone()),
        (a("domain"), attempt.execution.domain.clone()),
        (a("execution"), attempt.execution.name.clone()),
        (a("node-id"), attempt.node_id.clone()),
        (a("retry-attempt"), attempt.retry_attempt.to_string()),
        (PRIMARY_CONTAINER_ANNOTATION.to_string(), primary),
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
        spec: Some(spec),
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

/// Requests and limits: the pod target container's or the template's, replaced name by name by
/// the node's overrides; then a missing request takes the limit or the platform default, and a
/// missing limit the platform default limit or the request (Flyte sets limits so that pods are
/// not best-effort). Extended resources (GPUs) need request == limit, which the second rule
/// gives.
fn resources(
    attempt: &Attempt,
    existing: Option<ResourceRequirements>,
    task: Option<&Resources>,
    config: &PodPluginConfig,
) -> ResourceRequirements {
    let existing = existing.unwrap_or_default();
    let strings = |m: Option<BTreeMap<String, Quantity>>| -> BTreeMap<String, String> {
        m.unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect()
    };
    // flytekit writes a pod task's GPUs as `gpu` (its resource name, lower case).
    let gpu = |mut m: BTreeMap<String, String>| {
        if let Some(v) = m.remove("gpu") {
            m.insert(config.gpu_resource_name.clone(), v);
        }
        m
    };
    let mut requests = gpu(strings(existing.requests));
    let mut limits = gpu(strings(existing.limits));
    let overrides = attempt
        .overrides
        .as_ref()
        .and_then(|o| o.resources.as_ref());
    for res in task.into_iter().chain(overrides) {
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
        claims: existing.claims,
    }
}

#[cfg(test)]
#[path = "pod_tests.rs"]
mod tests;
