//! The propeller half of a server: its plugins (pods and operators on Kubernetes, warm workers,
//! local processes, agents) in the order tasks are offered to them, and the loop over a
//! control plane — admin in the same process (roles `all`) or across the network (role
//! `propeller` with a `[control_plane]`, see `remote`).

use std::path::PathBuf;
use std::sync::Arc;

use alula_admin::app::Instrumentation;
use alula_plane::ControlPlane;
use alula_propeller::process::{ProcessConfig, ProcessPlugin};
use alula_propeller::{Plugin, PluginRegistry, Propeller, PropellerConfig};
use anyhow::{Context, Result};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{plugins, pod_plugin, FileConfig, KubernetesConfig};

/// The settings only the propeller reads, taken out of the file's.
#[derive(Default)]
pub(crate) struct Settings {
    pub task_path: Option<Vec<PathBuf>>,
    pub warm_workers: Option<usize>,
    pub warm_idle_seconds: Option<u64>,
    pub task_user: Option<String>,
    pub task_env: Option<Vec<String>>,
    pub kubernetes: Option<KubernetesConfig>,
    pub plugins: Option<plugins::PluginsTable>,
    pub max_parallelism: Option<u32>,
}

impl Settings {
    pub fn take(file: &mut FileConfig) -> Self {
        Self {
            task_path: file.task_path.take(),
            warm_workers: file.warm_workers.take(),
            warm_idle_seconds: file.warm_idle_seconds.take(),
            task_user: file.task_user.take(),
            task_env: file.task_env.take(),
            kubernetes: file.kubernetes.take(),
            plugins: file.plugins.take(),
            max_parallelism: file.max_parallelism.take(),
        }
    }
}

/// Where this propeller is and what it calls itself.
pub(crate) struct Parts {
    pub instance_id: String,
    pub storage_root: PathBuf,
    pub storage: alula_storage::Storage,
    /// Admin's public HTTP URL, to which task events link attempts' logs.
    pub log_base_url: Option<String>,
}

/// The propeller with its plugins, and the registry that says which task types they run.
pub(crate) async fn build(
    settings: Settings,
    parts: Parts,
    plane: Arc<dyn ControlPlane>,
    instrumentation: &mut Instrumentation,
) -> Result<(Propeller, Arc<PluginRegistry>)> {
    let storage_root = &parts.storage_root;
    let storage = &parts.storage;
    let work_root = storage_root.join("work");
    let mut plugins: Vec<Arc<dyn Plugin>> = Vec::new();
    let task_path = settings.task_path.unwrap_or_default();
    let warm = settings.warm_workers.unwrap_or(2);
    // Local tasks run as this unprivileged user when the server runs as root (a warning at
    // start when none is set; an error when another user is named without root).
    let task_user =
        alula_propeller::process::TaskUser::from_setting(settings.task_user.as_deref())?;
    let task_env = settings.task_env.unwrap_or_default();
    if let Some(k8s) = settings.kubernetes {
        // First: every container task (Alula's `alula-execute` ones included) runs as a
        // pod; the warm and process plugins only get what it cannot run.
        let operators = k8s.operators.clone();
        let (pods, client) = pod_plugin(k8s, storage_root).await?;
        // Before the pod plugin: each serves its own task type (spark, ray, ...).
        for name in &operators {
            let plugin =
                alula_k8s::operators::OperatorPlugin::named(name, client.clone(), pods.clone())
                    .with_context(|| format!("[kubernetes] operators: {name:?}"))?;
            drop(plugin.spawn_watcher());
            tracing::info!(operator = %name, "tasks of this type run on its Kubernetes operator");
            plugins.push(Arc::new(plugin));
        }
        instrumentation.metrics.push(pods.metrics());
        // Admin's log route reads running pods' logs through the API server.
        instrumentation.live_logs = Some(pods.live_logs());
        plugins.push(pods);
    }
    // Warm workers read and write local files only; with a bucket, Alula's tasks go to the
    // process plugin (whose `alula-execute` reads the bucket through fsspec).
    if warm > 0 && storage.local_root().is_some() {
        plugins.push(Arc::new(
            alula_propeller::warm::WarmPlugin::new(alula_propeller::warm::WarmConfig {
                work_root: work_root.join("warm"),
                path_prefix: task_path.clone(),
                workers: warm,
                idle_timeout: settings
                    .warm_idle_seconds
                    .map(std::time::Duration::from_secs)
                    .unwrap_or(alula_propeller::warm::DEFAULT_IDLE_TIMEOUT),
                inherit_env: task_env.clone(),
            })
            .with_task_user(task_user.clone()),
        ));
    }
    let processes = Arc::new(
        ProcessPlugin::new(ProcessConfig {
            work_root: work_root.join("process"),
            path_prefix: task_path,
            env: Default::default(),
            inherit_env: task_env,
        })
        .with_task_user(task_user),
    );
    // Local processes' logs are stored when they end (with a bucket); until then admin's
    // log route reads them from their working folders, after the pods' source if any.
    instrumentation.live_logs = Some(Arc::new(alula_plane::logs::FirstLiveLogs(
        instrumentation
            .live_logs
            .take()
            .into_iter()
            .chain([processes.live_logs()])
            .collect(),
    )));
    plugins.push(processes);
    // Agent task types (named by the agents' ListAgents) go to the agent plugin.
    if let Some(agents) = plugins::agent_plugin(settings.plugins.as_ref(), storage).await? {
        plugins.push(Arc::new(agents));
    }
    let registry = plugins::registry(plugins, settings.plugins.as_ref())?;
    let mut config = PropellerConfig::new(parts.instance_id, storage_root.clone());
    config.storage = storage.clone();
    // flyteadmin's default: attempts in flight per execution (map elements included) when
    // the execution asks for nothing else; it bounds memory and keeps one huge map from
    // starving other executions.
    config.max_parallelism = settings.max_parallelism.unwrap_or(25);
    config.log_base_url = parts.log_base_url;
    tracing::info!(instance = %config.instance_id, "propeller starting");
    let propeller = Propeller::with_registry(plane, registry.clone(), config);
    instrumentation.metrics.push(propeller.metrics());
    instrumentation
        .readiness
        .push(Arc::new(propeller.heartbeat()));
    Ok((propeller, registry))
}

/// Runs the propeller until `stopping`; its end (an error included) sets `stop`, so that a
/// replica whose loop died exits and is restarted rather than lingering half-alive.
pub(crate) fn spawn(
    propeller: Propeller,
    stopping: impl std::future::Future<Output = ()> + Send + 'static,
    stop: Arc<watch::Sender<bool>>,
) -> JoinHandle<Result<(), alula_propeller::DriveError>> {
    tokio::spawn(async move {
        let result = propeller.run(stopping).await;
        stop.send_replace(true);
        result
    })
}

/// Waits for a spawned propeller to end and logs how it ended.
pub(crate) async fn join(handle: JoinHandle<Result<(), alula_propeller::DriveError>>) {
    match handle.await {
        Ok(Err(e)) => tracing::error!(error = %e, "propeller stopped with an error"),
        Err(e) => tracing::error!(error = %e, "propeller panicked"),
        Ok(Ok(())) => {}
    }
}
