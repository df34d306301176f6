//! Operator plugins (flyteplugins' `k8s` plugins for Spark, Ray and Kubeflow): each attempt of
//! a `spark`, `ray`, `pytorch`, `tensorflow` or `mpi` task becomes one custom resource that
//! the cluster's operator runs; its status is read back as an [`AttemptStatus`].
//!
//! One [`OperatorPlugin`] serves any [`Operator`]; the operator modules only say how the
//! resource is built from the task's plugin message (its `custom` field) and how its status
//! reads. Like the pod plugin, the resource's name is a function of the attempt, so the
//! resource is the marker: a second `start` collides with it (409) and the driver re-attaches;
//! a watcher on resources carrying our label wakes the attempt's driver.

pub mod kubeflow;
pub mod ray;
pub mod replica;
pub mod spark;
mod status;

use std::sync::Arc;

use alula_idl::flyteidl::core::TaskTemplate;
use alula_propeller::registry::TaskType;
use alula_propeller::{Attempt, AttemptStatus, Plugin, PluginError, Waker};
use async_trait::async_trait;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
use serde_json::Value as Json;

use crate::config::PodPluginConfig;
use crate::metrics::{Response, Verb};
use crate::plugin::{call_error, first_failure, lock, spawn_wake_watcher, Tracking};
use crate::pod::pod_name;
use crate::podtemplate::struct_to_json;
use crate::PodPlugin;

pub use replica::{Replica, ReplicaPod};

/// Every operator plugin Alula has, by its `name()`: what `[kubernetes] operators` may list.
pub const OPERATORS: &[&str] = &["spark", "ray", "pytorch", "tensorflow", "mpi"];

/// One kind of operator: its resource, how an attempt becomes one, how its status reads.
pub trait Operator: Send + Sync + 'static {
    /// The plugin's stable name, which is also the task type it serves (`spark`, `pytorch`).
    fn name(&self) -> &'static str;
    /// The custom resource: group, version, kind, plural.
    fn resource(&self) -> (&'static str, &'static str, &'static str, &'static str);
    /// The resource's `spec` for the attempt.
    fn spec(&self, job: &Job<'_>) -> Result<Json, PluginError>;
    /// Where the attempt stands, from the whole object's JSON (its `status` and `metadata`).
    fn status(&self, object: &Json) -> AttemptStatus;

    fn api_resource(&self) -> ApiResource {
        let (group, version, kind, plural) = self.resource();
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
    }
}

/// What an operator builds its resource from: the attempt, the pod settings, the base pod
/// template the attempt's pods start from.
pub struct Job<'a> {
    pub attempt: &'a Attempt,
    pub config: &'a PodPluginConfig,
    pub base: Option<&'a PodTemplateSpec>,
}

impl Job<'_> {
    /// The task's plugin message, decoded from its `custom` Struct (proto3 JSON, as flytekit
    /// writes it).
    pub fn custom<T: serde::de::DeserializeOwned + Default>(
        &self,
        what: &str,
    ) -> Result<T, PluginError> {
        let Some(custom) = &self.attempt.task.custom else {
            return Ok(T::default());
        };
        serde_json::from_value(struct_to_json(custom)).map_err(|e| {
            PluginError::Invalid(format!(
                "the task's custom field is not a valid {what}: {e}"
            ))
        })
    }

    pub fn replica(&self, replica: &Replica<'_>) -> Result<ReplicaPod, PluginError> {
        replica::build(self.attempt, self.config, self.base, replica)
    }
}

/// The whole custom resource for `attempt`: the deterministic name, the labels and
/// annotations the attempt's pods carry (so ours are found by the same selector), the spec.
pub fn build_resource(
    operator: &dyn Operator,
    attempt: &Attempt,
    config: &PodPluginConfig,
    base: Option<&PodTemplateSpec>,
) -> Result<DynamicObject, PluginError> {
    let job = Job {
        attempt,
        config,
        base,
    };
    let spec = operator.spec(&job)?;
    let owner = job.replica(&Replica::default())?;
    let meta = owner.metadata();
    let mut object = DynamicObject::new(&pod_name(attempt), &operator.api_resource())
        .within(&config.namespace)
        .data(serde_json::json!({ "spec": spec }));
    object.metadata.labels = meta.labels.clone();
    object.metadata.annotations = meta.annotations.clone();
    Ok(object)
}

/// Runs attempts of one operator's task type as its custom resource.
pub struct OperatorPlugin {
    operator: Box<dyn Operator>,
    /// Pod templates, the rate limiter and the settings are the pod plugin's: an operator's
    /// pods are made like any other pod, and all calls share one budget.
    pods: Arc<PodPlugin>,
    client: kube::Client,
    resource: ApiResource,
    tracked: Tracking,
}

impl OperatorPlugin {
    pub fn new(operator: Box<dyn Operator>, client: kube::Client, pods: Arc<PodPlugin>) -> Self {
        Self {
            resource: operator.api_resource(),
            operator,
            pods,
            client,
            tracked: Arc::default(),
        }
    }

    /// The operator plugin named `name` (one of [`OPERATORS`]).
    pub fn named(
        name: &str,
        client: kube::Client,
        pods: Arc<PodPlugin>,
    ) -> Result<Self, PluginError> {
        Ok(Self::new(operator(name)?, client, pods))
    }

    fn config(&self) -> &PodPluginConfig {
        self.pods.config()
    }

    fn api(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            &self.config().namespace,
            &self.resource,
        )
    }

    fn what(&self, name: &str) -> String {
        format!("{} {name}", self.resource.kind)
    }

    /// Watches our resources of this kind and wakes the driver of an attempt whose resource
    /// changed (as [`PodPlugin::spawn_watcher`]).
    pub fn spawn_watcher(&self) -> tokio::task::JoinHandle<()> {
        spawn_wake_watcher(self.api(), self.tracked.clone(), self.resource.kind.clone())
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

    async fn delete(&self, name: &str) -> Result<(), PluginError> {
        self.pods.limiter.acquire().await;
        // In the background: the operator's pods carry owner references to the resource, and the
        // garbage collector removes them; a foreground deletion would hold the resource (and
        // the abort) until every pod is gone.
        let result = self.api().delete(name, &DeleteParams::background()).await;
        let metrics = self.pods.metrics();
        metrics.request(Verb::Delete, Response::of(&result, 200));
        match result {
            Ok(_) => {
                metrics.resource_deleted(&self.resource.kind);
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
            Err(e) => Err(call_error(e, &format!("deleting {}", self.what(name)))),
        }
    }
}

/// The operator named `name`.
pub fn operator(name: &str) -> Result<Box<dyn Operator>, PluginError> {
    Ok(match name {
        "spark" => Box::new(spark::Spark),
        "ray" => Box::new(ray::Ray),
        "pytorch" => Box::new(kubeflow::PyTorch),
        "tensorflow" => Box::new(kubeflow::TensorFlow),
        "mpi" => Box::new(kubeflow::Mpi),
        other => {
            return Err(PluginError::Invalid(format!(
                "no operator plugin {other:?}; Alula has {}",
                OPERATORS.join(", ")
            )))
        }
    })
}

#[async_trait]
impl Plugin for OperatorPlugin {
    fn name(&self) -> &'static str {
        self.operator.name()
    }

    fn can_run(&self, task: &TaskTemplate) -> bool {
        task.r#type == self.operator.name()
    }

    fn task_types(&self) -> Vec<TaskType> {
        vec![TaskType::named(self.operator.name())]
    }

    async fn start(&self, attempt: &Attempt, waker: Waker) -> Result<(), PluginError> {
        let base = self.pods.base_template(&attempt.task).await?;
        let object = build_resource(
            self.operator.as_ref(),
            attempt,
            self.config(),
            base.as_ref(),
        )?;
        let name = pod_name(attempt);
        self.track(&name, waker);
        self.pods.limiter.acquire().await;
        let result = self.api().create(&PostParams::default(), &object).await;
        let metrics = self.pods.metrics();
        metrics.request(Verb::Create, Response::of(&result, 201));
        match result {
            Ok(_) => {
                metrics.resource_created(&self.resource.kind);
                self.mark_seen(&name);
                Ok(())
            }
            // Ours from before a crash (the name is the attempt's): adopt it.
            Err(kube::Error::Api(s)) if s.code == 409 || s.is_already_exists() => {
                self.mark_seen(&name);
                Err(PluginError::AlreadyStarted(name))
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {
                lock(&self.tracked).remove(&name);
                Err(PluginError::Invalid(format!(
                    "creating {}: the cluster does not serve {}/{} (is the {} operator installed?)",
                    self.what(&name),
                    self.resource.api_version,
                    self.resource.plural,
                    self.operator.name()
                )))
            }
            Err(e) => {
                lock(&self.tracked).remove(&name);
                Err(call_error(e, &format!("creating {}", self.what(&name))))
            }
        }
    }

    /// A missing resource is `NotStarted`, or `Lost` when this process saw it and did not
    /// abort it (as the pod plugin's `check`).
    async fn check(&self, attempt: &Attempt, waker: Waker) -> Result<AttemptStatus, PluginError> {
        let name = pod_name(attempt);
        self.track(&name, waker);
        self.pods.limiter.acquire().await;
        let result = self.api().get_opt(&name).await;
        let metrics = self.pods.metrics();
        metrics.request(Verb::Get, Response::of_lookup(&result));
        let status = match result {
            Ok(Some(object)) => {
                self.mark_seen(&name);
                let json = serde_json::to_value(&object).unwrap_or_default();
                self.operator.status(&json)
            }
            Ok(None) => {
                let lost = lock(&self.tracked)
                    .get(&name)
                    .is_some_and(|t| t.seen && !t.aborted);
                if lost {
                    AttemptStatus::Lost {
                        message: format!("{} was deleted", self.what(&name)),
                    }
                } else {
                    AttemptStatus::NotStarted
                }
            }
            Err(e) => return Err(call_error(e, &format!("reading {}", self.what(&name)))),
        };
        if first_failure(&self.tracked, &name, &status) {
            metrics.resource_failed(&self.resource.kind);
        }
        Ok(status)
    }

    async fn abort(&self, attempt: &Attempt) -> Result<(), PluginError> {
        let name = pod_name(attempt);
        lock(&self.tracked).entry(name.clone()).or_default().aborted = true;
        self.delete(&name).await
    }

    async fn finalize(&self, attempt: &Attempt) -> Result<(), PluginError> {
        let name = pod_name(attempt);
        lock(&self.tracked).remove(&name);
        if self.config().delete_on_completion {
            self.delete(&name).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
