//! Raw containers (flytekit's `ContainerTask`, task type `raw-container`): a task whose
//! `data_config` is enabled gets Flyte's copilot around its container (flyteplugins'
//! `flytek8s/copilot.go`):
//!
//! - an init container `downloader` (`alula-copilot download`) writes the attempt's inputs as
//!   files into an emptyDir mounted at the task's `input_path`;
//! - the task's container runs with that folder and a second emptyDir at its `output_path`;
//! - a sidecar `uploader` (`alula-copilot upload`) waits for the task's container to end (it
//!   watches its own pod: the pod's service account needs `get`, `list` and `watch` on pods),
//!   then turns the files under `output_path` into `outputs.pb` or `error.pb`.
//!
//! The copilot's image and resources are `[kubernetes.pods.copilot]` settings.

use alula_idl::flyteidl::core::{
    data_loading_config::LiteralMapFormat, task_template::Target, DataLoadingConfig, TaskTemplate,
};
use alula_propeller::{Attempt, PluginError};
use base64::Engine;
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec,
    ResourceRequirements, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use prost::Message;
use serde::Deserialize;

use crate::config::PodPluginConfig;

/// The init container's and the sidecar's names (Flyte's).
pub const DOWNLOADER: &str = "downloader";
pub const UPLOADER: &str = "uploader";
const INPUTS_VOLUME: &str = "alula-inputs";
const OUTPUTS_VOLUME: &str = "alula-outputs";
/// Flyte's folders when the task names none.
pub const DEFAULT_INPUT_PATH: &str = "/var/flyte/inputs";
pub const DEFAULT_OUTPUT_PATH: &str = "/var/flyte/outputs";
/// Where Kubernetes mounts the pod's service account (the uploader's API credentials).
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The copilot containers' settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CopilotConfig {
    /// An image with `alula-copilot` on its PATH: Alula's task image has it.
    pub image: String,
    /// How to start it (before `download` / `upload`).
    pub command: Vec<String>,
    /// Requests and limits of each copilot container (`cpu`, `memory`).
    pub resources: std::collections::BTreeMap<String, String>,
}

impl Default for CopilotConfig {
    fn default() -> Self {
        Self {
            image: format!("ghcr.io/alula-dev/alula-task:{}", env!("CARGO_PKG_VERSION")),
            command: vec!["alula-copilot".into()],
            resources: [("cpu", "100m"), ("memory", "128Mi")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

/// The task's data loading config, when enabled.
pub fn data_config(task: &TaskTemplate) -> Option<&DataLoadingConfig> {
    let config = match &task.target {
        Some(Target::Container(c)) => c.data_config.as_ref(),
        Some(Target::K8sPod(p)) => p.data_config.as_ref(),
        _ => None,
    };
    config.filter(|c| c.enabled)
}

fn path_or(path: &str, default: &str) -> String {
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        default.into()
    } else {
        path.into()
    }
}

fn mount(volume: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: volume.into(),
        mount_path: path.into(),
        ..Default::default()
    }
}

fn field_env(name: &str, field: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// Adds the copilot to `spec` (the primary container `primary`) when the attempt's task loads
/// its data through it; leaves other pods alone.
pub fn add(
    attempt: &Attempt,
    config: &PodPluginConfig,
    spec: &mut PodSpec,
    primary: &str,
) -> Result<(), PluginError> {
    let task = attempt.task.as_ref();
    let Some(data) = data_config(task) else {
        return Ok(());
    };
    let copilot = &config.copilot;
    if copilot.image.is_empty() || copilot.command.is_empty() {
        return Err(PluginError::Invalid(
            "raw-container tasks need the copilot: set [kubernetes.pods.copilot] image".into(),
        ));
    }
    let pod_path = |p: &std::path::Path, what: &str| {
        config.pod_path(p).ok_or_else(|| {
            PluginError::Invalid(format!(
                "{what} {} is outside the storage root the pod can see",
                p.display()
            ))
        })
    };
    let inputs = pod_path(&attempt.inputs_path, "inputs")?;
    let output_prefix = pod_path(&attempt.output_prefix, "output prefix")?;
    let raw_prefix = pod_path(&attempt.raw_output_prefix, "raw output prefix")?;
    let input_path = path_or(&data.input_path, DEFAULT_INPUT_PATH);
    let output_path = path_or(&data.output_path, DEFAULT_OUTPUT_PATH);
    let format = match LiteralMapFormat::try_from(data.format) {
        Ok(LiteralMapFormat::Yaml) => "yaml",
        Ok(LiteralMapFormat::Proto) => "proto",
        _ => "json",
    };
    let interface = base64::engine::general_purpose::STANDARD
        .encode(task.interface.clone().unwrap_or_default().encode_to_vec());

    let main = spec
        .containers
        .iter_mut()
        .find(|c| c.name == primary)
        .ok_or_else(|| PluginError::Invalid(format!("the pod has no container {primary}")))?;
    // One folder serves both when the task names the same path twice.
    let shared = input_path == output_path;
    let mounts = main.volume_mounts.get_or_insert_with(Vec::new);
    mounts.push(mount(INPUTS_VOLUME, &input_path));
    if !shared {
        mounts.push(mount(OUTPUTS_VOLUME, &output_path));
    }
    // The copilot reaches storage with the task's settings (AWS_* variables, secrets).
    let env = main.env.clone().unwrap_or_default();
    let env_from = main.env_from.clone();
    let outputs_volume = if shared {
        INPUTS_VOLUME
    } else {
        OUTPUTS_VOLUME
    };

    let quantities = (!copilot.resources.is_empty()).then(|| {
        copilot
            .resources
            .iter()
            .map(|(k, v)| (k.clone(), Quantity(v.clone())))
            .collect::<std::collections::BTreeMap<_, _>>()
    });
    let resources = ResourceRequirements {
        requests: quantities.clone(),
        limits: quantities,
        ..Default::default()
    };
    let container = |name: &str, args: Vec<String>, env: Vec<EnvVar>, volume_mount| Container {
        name: name.into(),
        image: Some(copilot.image.clone()),
        image_pull_policy: config.image_pull_policy.clone(),
        command: Some(copilot.command.clone()),
        args: Some(args),
        env: Some(env),
        env_from: env_from.clone(),
        volume_mounts: Some(vec![volume_mount]),
        resources: Some(resources.clone()),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Default::default()
    };
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let downloader = container(
        DOWNLOADER,
        s(&[
            "download",
            "--inputs",
            &inputs,
            "--to",
            &input_path,
            "--format",
            format,
        ]),
        env.clone(),
        mount(INPUTS_VOLUME, &input_path),
    );
    let mut uploader_env = env;
    uploader_env.push(field_env("POD_NAME", "metadata.name"));
    uploader_env.push(field_env("POD_NAMESPACE", "metadata.namespace"));
    let wait_for = format!("pod:{primary}");
    let uploader = container(
        UPLOADER,
        s(&[
            "upload",
            "--from",
            &output_path,
            "--output-prefix",
            &output_prefix,
            "--raw-output-prefix",
            &raw_prefix,
            "--interface",
            &interface,
            "--wait-for",
            &wait_for,
            // Explicit, though it is the default: a kubelet that maps mounts by rewriting
            // arguments (tests/k8s/local_kubelet.py) then finds the token.
            "--service-account-dir",
            SERVICE_ACCOUNT_DIR,
        ]),
        uploader_env,
        mount(outputs_volume, &output_path),
    );
    spec.init_containers
        .get_or_insert_with(Vec::new)
        .push(downloader);
    spec.containers.push(uploader);
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    volumes.push(Volume {
        name: INPUTS_VOLUME.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    });
    if !shared {
        volumes.push(Volume {
            name: OUTPUTS_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        });
    }
    Ok(())
}

/// Whether `pod` has the copilot's uploader and it has not ended: the attempt is not over
/// before it has written `outputs.pb` (or `error.pb`), even when the task's container has.
pub fn uploading(pod: &k8s_openapi::api::core::v1::Pod) -> bool {
    let ours = pod.spec.as_ref().is_some_and(|s| {
        s.containers.iter().any(|c| {
            c.name == UPLOADER
                && c.args.as_ref().and_then(|a| a.first()).map(String::as_str) == Some("upload")
        })
    });
    if !ours {
        return false;
    }
    let ended = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == UPLOADER))
        .and_then(|c| c.state.as_ref())
        .is_some_and(|s| s.terminated.is_some());
    !ended
}

#[cfg(test)]
#[path = "copilot_tests.rs"]
mod tests;
