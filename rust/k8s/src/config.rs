//! The pod plugin's configuration (flyteplugins' `k8s` plugin config, the parts Alula uses).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{PodTemplateSpec, Toleration};
use serde::Deserialize;

/// How pods are made and read. Every field has a default so that a TOML section can name only
/// what differs.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PodPluginConfig {
    /// Where attempts' pods are created.
    pub namespace: String,
    /// The pods' service account; `None` leaves the namespace's default.
    pub service_account: Option<String>,
    /// The local storage root the driver's paths live under (`Attempt::inputs_path` ...).
    pub storage_root: PathBuf,
    /// What a pod sees in place of `storage_root`: the same path when the "kubelet" runs on this
    /// machine, `s3://bucket/prefix` when the root is a mounted bucket. A plain prefix rewrite.
    pub pod_storage_prefix: String,
    /// Requests for resources the task does not name (`cpu`, `memory`, ...).
    pub default_requests: BTreeMap<String, String>,
    /// Limits for resources the task does not name; absent ones default to the request.
    pub default_limits: BTreeMap<String, String>,
    /// The extended resource a `GPU` request becomes.
    pub gpu_resource_name: String,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    /// Added for interruptible tasks (spot / preemptible nodes), as in Flyte.
    pub interruptible_node_selector: BTreeMap<String, String>,
    pub interruptible_tolerations: Vec<Toleration>,
    /// Put on every pod (Flyte's `default-labels` / `default-annotations`).
    pub default_labels: BTreeMap<String, String>,
    pub default_annotations: BTreeMap<String, String>,
    pub image_pull_policy: Option<String>,
    /// How long `ErrImagePull` / `ImagePullBackOff` may last before the attempt fails: a registry
    /// hiccup heals, a wrong image name does not.
    #[serde(with = "secs")]
    pub image_pull_grace: Duration,
    /// Same for `CreateContainerError` (a missing secret or config map may still appear).
    #[serde(with = "secs")]
    pub create_container_error_grace: Duration,
    /// How long a pod may stay unschedulable before the attempt is given up as lost (a system
    /// error: the cluster lacks room, not the task).
    #[serde(with = "secs")]
    pub unschedulable_timeout: Duration,
    /// Whether `finalize` deletes the pod (keep it to debug, as Flyte's `delete-resource-on-finalize`).
    pub delete_on_completion: bool,
    /// Set on every task container before the task's own variables (Flyte's
    /// `default-env-vars`): e.g. `AWS_ENDPOINT_URL` / `FLYTE_AWS_ENDPOINT` for a MinIO bucket.
    pub default_env_vars: BTreeMap<String, String>,
    /// Secrets whose keys become every task container's environment (Flyte's
    /// `default-env-from-secrets`): how static S3 credentials reach task pods.
    pub default_env_from_secrets: Vec<String>,
    /// Calls per second to the API server once the burst is spent (client-go's `QPS`; 0 or
    /// less: no limit).
    pub api_qps: f32,
    /// Calls let through at once before `api_qps` paces them (client-go's `Burst`).
    pub api_burst: u32,
    /// The base pod template of tasks that name none (Flyte's default pod template), inline.
    pub default_pod_template: Option<PodTemplateSpec>,
    /// The same by name: a `PodTemplate` in `namespace` (Flyte's `default-pod-template-name`);
    /// used when no inline one is given, and ignored while it does not exist.
    pub default_pod_template_name: Option<String>,
    /// How long a `PodTemplate` read from the cluster is reused before it is read again.
    #[serde(with = "secs")]
    pub pod_template_cache: Duration,
    /// The copilot of raw-container tasks (`[kubernetes.pods.copilot]`).
    pub copilot: crate::copilot::CopilotConfig,
    /// Links of pods' logs in task events (Flyte's `logs.templates`).
    pub logs: crate::logs::LogConfig,
}

impl Default for PodPluginConfig {
    fn default() -> Self {
        Self {
            namespace: "default".into(),
            service_account: None,
            storage_root: PathBuf::from("/tmp/alula"),
            pod_storage_prefix: "/tmp/alula".into(),
            default_requests: BTreeMap::from([
                ("cpu".into(), "500m".into()),
                ("memory".into(), "512Mi".into()),
            ]),
            default_limits: BTreeMap::new(),
            gpu_resource_name: "nvidia.com/gpu".into(),
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            interruptible_node_selector: BTreeMap::new(),
            interruptible_tolerations: Vec::new(),
            default_labels: BTreeMap::new(),
            default_annotations: BTreeMap::new(),
            image_pull_policy: None,
            image_pull_grace: Duration::from_secs(180),
            create_container_error_grace: Duration::from_secs(180),
            unschedulable_timeout: Duration::from_secs(600),
            delete_on_completion: true,
            default_env_vars: BTreeMap::new(),
            default_env_from_secrets: Vec::new(),
            api_qps: 100.0,
            api_burst: 200,
            default_pod_template: None,
            default_pod_template_name: None,
            pod_template_cache: Duration::from_secs(30),
            copilot: Default::default(),
            logs: Default::default(),
        }
    }
}

impl PodPluginConfig {
    /// What the pod sees for a local path under `storage_root`; `None` for a path outside it
    /// (the pod could not reach it). An object storage URI (`s3://...`, when execution data
    /// lives in a bucket) is the same for the pod and passes unchanged.
    pub fn pod_path(&self, local: &Path) -> Option<String> {
        if let Some(uri) = local.to_str().filter(|p| p.contains("://")) {
            return Some(uri.to_string());
        }
        let rest = local.strip_prefix(&self.storage_root).ok()?;
        let rest = rest.to_str()?;
        let prefix = self.pod_storage_prefix.trim_end_matches('/');
        Some(if rest.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}/{rest}")
        })
    }
}

/// Durations in configuration files are whole seconds.
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_path_rewrites_the_prefix() {
        let config = PodPluginConfig {
            storage_root: "/data/root".into(),
            pod_storage_prefix: "s3://bucket/alula/".into(),
            ..Default::default()
        };
        assert_eq!(
            config.pod_path(Path::new("/data/root/p/d/e/n0/inputs.pb")),
            Some("s3://bucket/alula/p/d/e/n0/inputs.pb".into())
        );
        assert_eq!(
            config.pod_path(Path::new("/data/root")),
            Some("s3://bucket/alula".into())
        );
        // `/data/rootx` shares the string prefix but not the path prefix.
        assert_eq!(config.pod_path(Path::new("/data/rootx/a")), None);
        assert_eq!(
            config.pod_path(Path::new("s3://other/x/inputs.pb")),
            Some("s3://other/x/inputs.pb".into())
        );
    }

    #[test]
    fn deserializes_seconds_and_defaults() {
        let config: PodPluginConfig =
            serde_json::from_str(r#"{"namespace":"flyte","image_pull_grace":5,"api_qps":5}"#)
                .expect("config");
        assert_eq!(config.namespace, "flyte");
        assert_eq!(config.image_pull_grace, Duration::from_secs(5));
        assert!(config.delete_on_completion);
        assert_eq!(config.api_qps, 5.0);
        assert_eq!(config.api_burst, 200);
    }
}
