//! [`PodPlugin`]: runs each attempt of a container task as one pod.
//!
//! The pod's name is a function of the attempt (see [`crate::pod::pod_name`]), so the pod itself
//! is the plugin's marker: a second `start` collides with it (409) and the driver re-attaches,
//! and a restarted propeller finds it with `check`. A watcher on our pods wakes the attempt's
//! driver on every change, so nothing needs polling while the watch is healthy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use alula_idl::flyteidl::core::TaskTemplate;
use alula_propeller::{Attempt, AttemptStatus, Plugin, PluginError, Waker};
use async_trait::async_trait;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, PodTemplate, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::ResourceExt;

use crate::config::PodPluginConfig;
use crate::metrics::{PodMetrics, Response, Verb};
use crate::pod::{build_pod_with, pod_name, pod_template_name, runs, MANAGED_BY_SELECTOR};
use crate::ratelimit::RateLimiter;
use crate::status::attempt_status;

/// What this process knows of one attempt's pod (or operator resource).
#[derive(Debug, Default)]
pub(crate) struct Tracked {
    pub(crate) waker: Option<Waker>,
    /// This process saw the pod exist (created it, adopted it, or read it): if it then vanishes
    /// without our abort, someone deleted it and the attempt is lost.
    pub(crate) seen: bool,
    /// We deleted it: its absence is expected. Kept until `finalize` (which drops the entry),
    /// so that a `check` between the two does not report the attempt lost.
    pub(crate) aborted: bool,
    /// Its failure was counted (checks after the end see the same failed pod again).
    failure_counted: bool,
}

pub(crate) type Tracking = Arc<Mutex<HashMap<String, Tracked>>>;

/// Whether `status` is the failure of the tracked object `name` seen for the first time (checks
/// after the end see the same failed object again): what failure counters count.
pub(crate) fn first_failure(tracked: &Tracking, name: &str, status: &AttemptStatus) -> bool {
    let failed = match status {
        AttemptStatus::Exited { exit_code, .. } => *exit_code != Some(0),
        AttemptStatus::Killed { .. } => true,
        AttemptStatus::Failed { .. } | AttemptStatus::Lost { .. } => true,
        AttemptStatus::NotStarted | AttemptStatus::Running => false,
    };
    failed
        && lock(tracked)
            .get_mut(name)
            .is_some_and(|t| !std::mem::replace(&mut t.failure_counted, true))
}

/// `PodTemplate`s read from the cluster, by name, with when they were read (`None`: absent).
type TemplateCache = Mutex<HashMap<String, (Instant, Option<PodTemplateSpec>)>>;

pub(crate) fn lock(t: &Tracking) -> MutexGuard<'_, HashMap<String, Tracked>> {
    // A panic elsewhere while holding the lock leaves a map that is still consistent.
    t.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct PodPlugin {
    client: kube::Client,
    config: Arc<PodPluginConfig>,
    tracked: Tracking,
    /// Paces create, get and delete (the watch is one long call); shared with the operator
    /// plugins, which build their pods through this one.
    pub(crate) limiter: RateLimiter,
    metrics: Arc<PodMetrics>,
    templates: TemplateCache,
    /// What links to pods' logs are made of (see [`crate::logs`]).
    log_links: crate::logs::LogLinks,
}

impl PodPlugin {
    pub fn new(client: kube::Client, config: PodPluginConfig) -> Self {
        Self {
            client,
            limiter: RateLimiter::new(config.api_qps, config.api_burst),
            config: Arc::new(config),
            tracked: Arc::default(),
            metrics: Arc::default(),
            templates: Mutex::default(),
            log_links: Default::default(),
        }
    }

    /// The `PodTemplate` named `name` in the tasks' namespace, read at most every
    /// `pod_template_cache` (Flyte watches them; a template changes rarely).
    async fn pod_template(&self, name: &str) -> Result<Option<PodTemplateSpec>, PluginError> {
        if let Some((at, t)) = self
            .templates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            if at.elapsed() < self.config.pod_template_cache {
                return Ok(t.clone());
            }
        }
        self.limiter.acquire().await;
        let api: Api<PodTemplate> = Api::namespaced(self.client.clone(), &self.config.namespace);
        let result = api.get_opt(name).await;
        let template = result
            .map_err(|e| call_error(e, &format!("reading pod template {name}")))?
            .map(|t| t.template.unwrap_or_default());
        self.templates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), (Instant::now(), template.clone()));
        Ok(template)
    }

    /// The base template of `task`: the one it names (which must exist), else the configured
    /// default (inline, else by name if it exists).
    pub(crate) async fn base_template(
        &self,
        task: &TaskTemplate,
    ) -> Result<Option<PodTemplateSpec>, PluginError> {
        if let Some(name) = pod_template_name(task) {
            return match self.pod_template(name).await? {
                Some(t) => Ok(Some(t)),
                None => Err(PluginError::Invalid(format!(
                    "the task's pod template {name:?} does not exist in namespace {:?}",
                    self.config.namespace
                ))),
            };
        }
        if let Some(t) = &self.config.default_pod_template {
            return Ok(Some(t.clone()));
        }
        match &self.config.default_pod_template_name {
            Some(name) => self.pod_template(name).await,
            None => Ok(None),
        }
    }

    /// Where admin's log route reads the logs of pods still running.
    pub fn live_logs(&self) -> Arc<dyn alula_plane::logs::LiveLogs> {
        Arc::new(crate::logs::PodLogs::new(
            self.client.clone(),
            &self.config.namespace,
        ))
    }

    /// The plugin's series for `/metrics`.
    pub fn metrics(&self) -> Arc<PodMetrics> {
        self.metrics.clone()
    }

    /// Counts a failed attempt's pod once, however often it is checked.
    fn count_failure(&self, name: &str, status: &AttemptStatus) {
        if first_failure(&self.tracked, name, status) {
            self.metrics.pod_failed();
        }
    }

    pub fn config(&self) -> &PodPluginConfig {
        &self.config
    }

    fn api(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.config.namespace)
    }

    /// Watches our pods and wakes the driver of an attempt whose pod changed. Runs until the
    /// returned task is aborted; watch errors are retried with backoff. Without it, drivers
    /// must poll `check`.
    pub fn spawn_watcher(&self) -> tokio::task::JoinHandle<()> {
        spawn_wake_watcher(self.api(), self.tracked.clone(), "pod")
    }

    fn track(&self, name: &str, waker: Waker) {
        lock(&self.tracked)
            .entry(name.to_string())
            .or_default()
            .waker = Some(waker);
    }

    fn mark_seen(&self, name: &str) {
        if let Some(t) = lock(&self.tracked).get_mut(name) {
            t.seen = true;
        }
    }

    fn mark_aborted(&self, name: &str) {
        lock(&self.tracked)
            .entry(name.to_string())
            .or_default()
            .aborted = true;
    }

    fn untrack(&self, name: &str) -> Option<Tracked> {
        lock(&self.tracked).remove(name)
    }

    async fn delete(&self, name: &str) -> Result<(), PluginError> {
        self.limiter.acquire().await;
        let result = self.api().delete(name, &DeleteParams::default()).await;
        self.metrics
            .request(Verb::Delete, Response::of(&result, 200));
        match result {
            Ok(_) => {
                self.metrics.pod_deleted();
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
            Err(e) => Err(call_error(e, &format!("deleting pod {name}"))),
        }
    }
}

/// The API server's refusals of what we sent (400 bad request, 422 invalid) are the attempt's
/// fault; anything else (unreachable, 403 quota exceeded, 5xx, timeouts) may pass.
pub(crate) fn call_error(e: kube::Error, what: &str) -> PluginError {
    match &e {
        kube::Error::Api(s) if s.code == 400 || s.code == 422 => {
            PluginError::Invalid(format!("{what}: {}", s.message))
        }
        _ => PluginError::Transient(format!("{what}: {e}")),
    }
}

#[async_trait]
impl Plugin for PodPlugin {
    fn name(&self) -> &'static str {
        "k8s"
    }

    fn can_run(&self, task: &TaskTemplate) -> bool {
        runs(task)
    }

    async fn start(&self, attempt: &Attempt, waker: Waker) -> Result<(), PluginError> {
        let base = self.base_template(&attempt.task).await?;
        let pod = build_pod_with(attempt, &self.config, base.as_ref())?;
        let name = pod_name(attempt);
        // Tracked before creating, so that the watcher's first event for it is not missed.
        self.track(&name, waker);
        self.limiter.acquire().await;
        let result = self.api().create(&PostParams::default(), &pod).await;
        self.metrics
            .request(Verb::Create, Response::of(&result, 201));
        match result {
            Ok(created) => {
                self.metrics.pod_created();
                self.mark_seen(&name);
                self.log_links.remember(&created);
                Ok(())
            }
            // Ours from before a crash (the name is the attempt's): adopt it, never run twice.
            Err(kube::Error::Api(s)) if s.code == 409 || s.is_already_exists() => {
                self.mark_seen(&name);
                Err(PluginError::AlreadyStarted(name))
            }
            Err(e) => {
                self.untrack(&name);
                Err(call_error(e, &format!("creating pod {name}")))
            }
        }
    }

    /// A missing pod is `NotStarted` unless this process saw it exist and did not abort it: then
    /// someone else deleted it (a drained node, a `kubectl delete`) and the attempt is `Lost`. After a propeller
    /// restart the plugin cannot tell the two apart; the driver, which recorded the start,
    /// treats `NotStarted` after a start as lost (the pod may also have been deleted by
    /// `finalize` of a previous life if completion was not recorded).
    async fn check(&self, attempt: &Attempt, waker: Waker) -> Result<AttemptStatus, PluginError> {
        let name = pod_name(attempt);
        self.track(&name, waker);
        self.limiter.acquire().await;
        let result = self.api().get_opt(&name).await;
        self.metrics
            .request(Verb::Get, Response::of_lookup(&result));
        match result {
            Ok(Some(pod)) => {
                self.mark_seen(&name);
                self.log_links.remember(&pod);
                let status = attempt_status(&pod, &self.config, Timestamp::now());
                self.count_failure(&name, &status);
                Ok(status)
            }
            Ok(None) => {
                let lost = lock(&self.tracked)
                    .get(&name)
                    .is_some_and(|t| t.seen && !t.aborted);
                let status = if lost {
                    AttemptStatus::Lost {
                        message: format!("pod {name} was deleted"),
                    }
                } else {
                    AttemptStatus::NotStarted
                };
                self.count_failure(&name, &status);
                Ok(status)
            }
            Err(e) => Err(call_error(e, &format!("reading pod {name}"))),
        }
    }

    async fn abort(&self, attempt: &Attempt) -> Result<(), PluginError> {
        let name = pod_name(attempt);
        self.mark_aborted(&name);
        self.delete(&name).await
    }

    fn log_streams(&self) -> &'static [&'static str] {
        // Kubernetes keeps one log per container, both streams together.
        &["output"]
    }

    fn log_links(&self, attempt: &Attempt) -> Vec<alula_idl::flyteidl::core::TaskLog> {
        let name = pod_name(attempt);
        self.log_links
            .links(&self.config.logs, &self.config.namespace, &name, attempt)
    }

    async fn logs(&self, attempt: &Attempt) -> Vec<(&'static str, alula_propeller::LogData)> {
        // Read before `finalize` may delete the pod, and stored by the driver: the log outlives
        // the pod. A pod never seen (lost before this process knew it) has nothing to read.
        let name = pod_name(attempt);
        let Some(container) = self.log_links.container(&name) else {
            return Vec::new();
        };
        self.limiter.acquire().await;
        match crate::logs::read_log(&self.api(), &name, &container).await {
            Ok(bytes) => vec![("output", alula_propeller::LogData::Bytes(bytes))],
            Err(e) => {
                tracing::warn!(pod = %name, error = %e, "cannot read the pod's log");
                Vec::new()
            }
        }
    }

    async fn finalize(&self, attempt: &Attempt) -> Result<(), PluginError> {
        let name = pod_name(attempt);
        self.untrack(&name);
        self.log_links.forget(&name);
        if self.config.delete_on_completion {
            self.delete(&name).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "plugin_tests.rs"]
mod tests;

/// Watches our resources of one kind (pods, an operator's custom resources) and wakes the
/// driver of an attempt whose resource changed. Runs until the returned task is aborted; watch
/// errors are retried with backoff.
pub(crate) fn spawn_wake_watcher<K>(
    api: Api<K>,
    tracked: Tracking,
    kind: impl std::fmt::Display + Send + 'static,
) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    tokio::spawn(async move {
        let config = watcher::Config::default().labels(MANAGED_BY_SELECTOR);
        let mut events = watcher(api, config).default_backoff().boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Apply(o) | Event::Delete(o) | Event::InitApply(o)) => {
                    if let Some(w) = lock(&tracked)
                        .get(&o.name_any())
                        .and_then(|t| t.waker.as_ref())
                    {
                        w.wake();
                    }
                }
                Ok(Event::Init) => {}
                // A (re-)list replaces the watch: deletions in the gap produce no event, so
                // every tracked attempt is worth a check.
                Ok(Event::InitDone) => {
                    for w in lock(&tracked).values().filter_map(|t| t.waker.as_ref()) {
                        w.wake();
                    }
                }
                Err(e) => tracing::warn!(%kind, error = %e, "watch failed; retrying"),
            }
        }
    })
}
