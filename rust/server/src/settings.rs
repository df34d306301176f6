//! The server's settings: the TOML file (every key optional; the table in the crate docs) and
//! the `ALULA_*` environment variables over it.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::{plugins, security, Role};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub host: Option<String>,
    pub grpc_port: Option<u16>,
    pub http_port: Option<u16>,
    pub storage_root: Option<PathBuf>,
    pub storage_url: Option<String>,
    pub database_url: Option<String>,
    pub public_http_url: Option<String>,
    pub allowed_hosts: Option<Vec<String>>,
    pub allowed_origins: Option<Vec<String>>,
    pub signing_key: Option<String>,
    pub domains: Option<Vec<String>>,
    pub default_projects: Option<Vec<String>>,
    pub role: Option<Role>,
    pub propeller: Option<bool>,
    /// Launch scheduled launch plans' executions (where the API is served).
    pub scheduler: Option<bool>,
    pub instance_id: Option<String>,
    pub task_path: Option<Vec<PathBuf>>,
    pub warm_workers: Option<usize>,
    pub warm_idle_seconds: Option<u64>,
    pub max_parallelism: Option<u32>,
    pub kubernetes: Option<KubernetesConfig>,
    pub execution_defaults: Option<alula_admin::config::WorkflowExecutionConfig>,
    pub task_resources: Option<alula_admin::config::TaskResourceAttributes>,
    /// Who callers are: see [`security::AuthTable`].
    pub auth: Option<security::AuthTable>,
    /// Serve the API without authentication on a non-loopback address anyway.
    pub insecure_no_auth: Option<bool>,
    /// PEM certificate chain and private key: both ports speak TLS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Earlier data-proxy signing keys whose URLs are still accepted (a rotation).
    pub previous_signing_keys: Option<Vec<String>>,
    /// The unprivileged user local task processes run as when the server runs as root.
    pub task_user: Option<String>,
    /// Names of the server's environment variables local tasks get besides the usual ones
    /// (`alula_propeller::process::task_env`).
    pub task_env: Option<Vec<String>>,
    /// Email, Slack and PagerDuty notifications (`alula_admin::notify`).
    pub notifications: Option<alula_admin::notify::NotificationsConfig>,
    /// Which plugins run which task types, and the agents (see [`plugins`]).
    pub plugins: Option<plugins::PluginsTable>,
    /// `[control_plane]`: for role `propeller`, the admin to work for over gRPC instead of a
    /// shared database (see `remote`).
    pub control_plane: Option<crate::remote::ControlPlaneConfig>,
}

/// The `kubernetes` table: where the API server is and how pods are made.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// A kubeconfig file; `None` infers the configuration (`$KUBECONFIG`, `~/.kube/config`, or
    /// the in-cluster service account).
    pub kubeconfig: Option<PathBuf>,
    /// What pods see in place of the storage root: `None` for the same path (the kubelet runs
    /// on this machine or mounts the root at the same place), else e.g. `s3://bucket/prefix`.
    pub pod_storage_prefix: Option<String>,
    /// The pod plugin's settings. Its `storage_root` and `pod_storage_prefix` are replaced by the
    /// server's storage root and the prefix above.
    #[serde(default)]
    pub pods: alula_k8s::PodPluginConfig,
    /// Operator plugins to run (`alula_k8s::operators::OPERATORS`: `spark`, `ray`, `pytorch`,
    /// `tensorflow`, `mpi`); their pods are made with `pods`' settings.
    #[serde(default)]
    pub operators: Vec<String>,
}

impl FileConfig {
    /// Reads `path` (none: all defaults) and applies the environment.
    pub fn load(path: Option<&str>) -> Result<Self> {
        let mut config: Self = match path {
            None => Self::default(),
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
                toml::from_str(&text).with_context(|| format!("parsing {path}"))?
            }
        };
        config.apply_env()?;
        Ok(config)
    }

    fn apply_env(&mut self) -> Result<()> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let parse = |name: &str, what: &str| -> Result<Option<u64>> {
            var(name)
                .map(|v| {
                    v.parse()
                        .with_context(|| format!("{name}={v:?} is not {what}"))
                })
                .transpose()
        };
        let port = |name: &str| -> Result<Option<u16>> {
            parse(name, "a port")?
                .map(|p| u16::try_from(p).with_context(|| format!("{name}: {p} is not a port")))
                .transpose()
        };
        if let Some(v) = var("ALULA_HOST") {
            self.host = Some(v);
        }
        if let Some(p) = port("ALULA_GRPC_PORT")? {
            self.grpc_port = Some(p);
        }
        if let Some(p) = port("ALULA_HTTP_PORT")? {
            self.http_port = Some(p);
        }
        if let Some(v) = var("ALULA_STORAGE_ROOT") {
            self.storage_root = Some(v.into());
        }
        if let Some(v) = var("ALULA_STORAGE_URL") {
            self.storage_url = Some(v);
        }
        if let Some(v) = var("ALULA_DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = var("ALULA_PUBLIC_HTTP_URL") {
            self.public_http_url = Some(v);
        }
        if let Some(v) = var("ALULA_ALLOWED_HOSTS") {
            self.allowed_hosts = Some(comma_list(&v));
        }
        if let Some(v) = var("ALULA_ALLOWED_ORIGINS") {
            self.allowed_origins = Some(comma_list(&v));
        }
        if let Some(v) = var("ALULA_SIGNING_KEY") {
            self.signing_key = Some(v);
        }
        if let Some(v) = var("ALULA_ROLE") {
            self.role = Some(Role::parse(&v).context("ALULA_ROLE")?);
        }
        if let Some(v) = var("ALULA_PROPELLER") {
            self.propeller = Some(!matches!(v.as_str(), "0" | "false" | "no" | "off"));
        }
        if let Some(v) = var("ALULA_SCHEDULER") {
            self.scheduler = Some(!matches!(v.as_str(), "0" | "false" | "no" | "off"));
        }
        if let Some(v) = var("ALULA_INSTANCE_ID") {
            self.instance_id = Some(v);
        }
        if let Some(v) = var("ALULA_TASK_PATH") {
            self.task_path = Some(std::env::split_paths(&v).collect());
        }
        if let Some(v) = var("ALULA_TASK_ENV") {
            self.task_env = Some(comma_list(&v));
        }
        if let Some(n) = parse("ALULA_WARM_WORKERS", "a number")? {
            self.warm_workers = Some(n as usize);
        }
        if let Some(n) = parse("ALULA_WARM_IDLE_SECONDS", "a number of seconds")? {
            self.warm_idle_seconds = Some(n);
        }
        if let Some(n) = parse("ALULA_MAX_PARALLELISM", "a number")? {
            self.max_parallelism = Some(n as u32);
        }
        if let Some(v) = var("ALULA_KUBECONFIG") {
            self.kubernetes
                .get_or_insert_with(Default::default)
                .kubeconfig = Some(v.into());
        }
        if let Some(v) = var("ALULA_CONTROL_PLANE_ENDPOINT") {
            self.control_plane
                .get_or_insert_with(Default::default)
                .endpoint = v;
        }
        if let Some(v) = var("ALULA_CONTROL_PLANE_CLIENT_ID") {
            self.control_plane
                .get_or_insert_with(Default::default)
                .client_id = Some(v);
        }
        // A secret: the environment (a Kubernetes Secret) rather than the file.
        if let Some(v) = var("ALULA_CONTROL_PLANE_CLIENT_SECRET") {
            self.control_plane
                .get_or_insert_with(Default::default)
                .client_secret = Some(v);
        }
        if let Some(v) = var("ALULA_CONTROL_PLANE_CA_FILE") {
            self.control_plane
                .get_or_insert_with(Default::default)
                .ca_file = Some(v.into());
        }
        if let Some(v) = var("ALULA_CONTROL_PLANE_INSECURE_PLAINTEXT") {
            self.control_plane
                .get_or_insert_with(Default::default)
                .insecure_plaintext = matches!(v.as_str(), "1" | "true" | "yes" | "on");
        }
        if let Some(plane) = &self.control_plane {
            if plane.endpoint.is_empty() {
                bail!("[control_plane] needs an endpoint (or ALULA_CONTROL_PLANE_ENDPOINT)");
            }
        }
        self.apply_notification_env();
        security::apply_env(self)
    }

    /// The notifiers' secrets, which belong in the environment rather than a file.
    fn apply_notification_env(&mut self) {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if let Some(v) = var("ALULA_SMTP_PASSWORD") {
            if let Some(smtp) = self.notifications.as_mut().and_then(|n| n.smtp.as_mut()) {
                smtp.password = Some(v);
            }
        }
        if let Some(v) = var("ALULA_SLACK_WEBHOOK_URL") {
            self.notifications
                .get_or_insert_with(Default::default)
                .slack = Some(alula_admin::notify::SlackConfig { webhook_url: v });
        }
        if let Some(v) = var("ALULA_PAGERDUTY_ROUTING_KEY") {
            let n = self.notifications.get_or_insert_with(Default::default);
            match n.pagerduty.as_mut() {
                Some(pd) => pd.routing_key = v,
                None => {
                    n.pagerduty = Some(alula_admin::notify::PagerDutyConfig {
                        events_url: alula_admin::notify::DEFAULT_PAGERDUTY_EVENTS_URL.into(),
                        routing_key: v,
                        severity: "error".into(),
                        source: "alula".into(),
                    })
                }
            }
        }
    }
}

/// `a, b,,c` as `[a, b, c]`: the form of the list-valued variables.
pub(crate) fn comma_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// The arguments of `alula-server` / `alula start`: `[--config FILE]`.
pub fn config_path(args: &[String]) -> Result<Option<String>> {
    match args {
        [] => Ok(None),
        [flag, path] if flag == "--config" => Ok(Some(path.clone())),
        _ => bail!("usage: alula-server [--config FILE]"),
    }
}
