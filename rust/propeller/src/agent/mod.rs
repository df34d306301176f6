//! The agent plugin (Flyte's agent-service plugin): task types served by an agent run by calls
//! to it. An async agent gets `CreateTask` once per attempt, then `GetTask` every
//! `poll_interval_ms` until a terminal phase, and `DeleteTask` on abort; a sync agent gets one
//! `ExecuteTaskSync` stream. Outputs the agent returns as a literal map are written to the
//! attempt's `outputs.pb` (an agent may also write it there itself); a failure leaves an
//! `error.pb` carrying the agent's message, which is how it reaches the client.
//!
//! Exactly once: the `resource_meta` `CreateTask` answers is written (one atomic put) to
//! `<output prefix>/agent_task.json` before `start` returns, and that object is the attempt's
//! marker: a second `start` is refused, and a restarted propeller's `check` finds it and
//! resumes polling the same agent task instead of creating another. (A crash between the
//! agent's answer and the put would create a second task, as in Flyte.)

pub mod routes;
pub mod status;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alula_idl::flyteidl::admin::{
    execute_task_sync_request, execute_task_sync_response, CreateRequestHeader, CreateTaskRequest,
    DeleteTaskRequest, ExecuteTaskSyncRequest, GetTaskRequest, Resource, TaskCategory,
    TaskExecutionMetadata,
};
use alula_idl::flyteidl::core::{
    NodeExecutionIdentifier, TaskExecutionIdentifier, TaskLog, TaskTemplate,
};
use alula_idl::flyteidl::service::async_agent_service_client::AsyncAgentServiceClient;
use alula_idl::flyteidl::service::sync_agent_service_client::SyncAgentServiceClient;
use alula_plane::agents::{AgentDirectory, AgentEndpoint, AgentsError};
use alula_storage::Storage;
use async_trait::async_trait;
use prost::Message;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tonic::Code;

use crate::registry::TaskType;
use crate::{Attempt, AttemptStatus, Plugin, PluginError, Waker};
use routes::{Route, Routes};
use status::{error_document, phase_of, AgentPhase};

/// The marker object under the attempt's output prefix.
const MARKER: &str = "agent_task.json";
/// GetTask failures in a row (agent unreachable) after which the attempt counts as lost.
const MAX_POLL_FAILURES: u32 = 30;

fn default_poll_interval_ms() -> u64 {
    1000
}

fn default_discovery_interval_seconds() -> u64 {
    60
}

/// The `[plugins.agent]` table (Flyte's `agent-service`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentPluginConfig {
    /// Agent servers by name.
    #[serde(default)]
    pub agents: BTreeMap<String, AgentEndpoint>,
    /// Task type (`type` or `type:version`) → agent name, besides what `ListAgents` reports
    /// (and winning over it).
    #[serde(default)]
    pub agent_for_task_types: BTreeMap<String, String>,
    /// How often a running async agent task is looked at (`GetTask`).
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// How often the agents are asked again what they run.
    #[serde(default = "default_discovery_interval_seconds")]
    pub discovery_interval_seconds: u64,
}

/// What the marker records: enough to find the agent task again after a restart.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Marker {
    agent: String,
    sync: bool,
    category: String,
    version: i32,
    /// What `CreateTask` answered (empty for a sync call).
    resource_meta: Vec<u8>,
}

impl Marker {
    fn category(&self) -> Option<TaskCategory> {
        Some(TaskCategory {
            name: self.category.clone(),
            version: self.version,
        })
    }
}

/// What the plugin knows of an attempt it started or re-attached to.
struct Tracked {
    status: AttemptStatus,
    log_links: Vec<TaskLog>,
    poller: Option<JoinHandle<()>>,
}

struct Inner {
    directory: AgentDirectory,
    routes: Routes,
    storage: Storage,
    poll_interval: Duration,
    discovery_interval: Duration,
    tracked: Mutex<HashMap<String, Tracked>>,
}

#[derive(Clone)]
pub struct AgentPlugin {
    inner: Arc<Inner>,
}

/// A gRPC failure of a call to an agent, as a plugin error: the agent or the network being
/// down is worth retrying; anything else is the agent refusing the task, with its message.
fn call_error(agent: &str, call: &str, status: &tonic::Status) -> PluginError {
    let message = format!(
        "agent {agent}: {call} failed ({:?}): {}",
        status.code(),
        status.message()
    );
    match status.code() {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::Cancelled
        | Code::Unknown => PluginError::Transient(message),
        _ => PluginError::Invalid(message),
    }
}

impl AgentPlugin {
    /// The plugin for `config`, with execution data in `storage`. No agent is called yet:
    /// [`AgentPlugin::spawn_discovery`] asks them what they run.
    pub fn new(config: &AgentPluginConfig, storage: Storage) -> Result<Self, AgentsError> {
        let directory = AgentDirectory::new(&config.agents)?;
        let mut configured = BTreeMap::new();
        for (key, agent) in &config.agent_for_task_types {
            if directory.get(agent).is_none() {
                return Err(AgentsError::BadEndpoint {
                    name: agent.clone(),
                    endpoint: String::new(),
                    reason: format!(
                        "agent_for_task_types[{key:?}] names it, but [plugins.agent.agents] does not"
                    ),
                });
            }
            let t = match key
                .rsplit_once(':')
                .and_then(|(n, v)| Some((n, v.parse().ok()?)))
            {
                Some((name, version)) => TaskType::versioned(name, version),
                None => TaskType::named(key.clone()),
            };
            configured.insert(t, agent.clone());
        }
        Ok(Self {
            inner: Arc::new(Inner {
                directory,
                routes: Routes::new(configured),
                storage,
                poll_interval: Duration::from_millis(config.poll_interval_ms.max(10)),
                discovery_interval: Duration::from_secs(config.discovery_interval_seconds.max(1)),
                tracked: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The agents, for admin's `AgentMetadataService` proxy.
    pub fn directory(&self) -> AgentDirectory {
        self.inner.directory.clone()
    }

    /// Asks every agent what it runs, once.
    pub async fn discover(&self) {
        self.inner.routes.discover(&self.inner.directory).await;
    }

    /// Asks again every `discovery_interval_seconds`, for as long as the runtime runs.
    pub fn spawn_discovery(&self) -> JoinHandle<()> {
        let plugin = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(plugin.inner.discovery_interval).await;
                plugin.discover().await;
            }
        })
    }

    fn route(&self, task: &TaskTemplate) -> Option<Route> {
        self.inner.routes.get(&task.r#type, task.task_type_version)
    }

    fn prefix_key(&self, attempt: &Attempt) -> Result<String, PluginError> {
        let location = attempt.output_prefix.to_string_lossy();
        self.inner.storage.key_of(&location).ok_or_else(|| {
            PluginError::Invalid(format!(
                "the output prefix {location} is outside the execution storage"
            ))
        })
    }

    async fn read_marker(&self, attempt: &Attempt) -> Result<Option<Marker>, PluginError> {
        let key = format!("{}/{MARKER}", self.prefix_key(attempt)?);
        match self.inner.storage.get(&key).await {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                PluginError::Invalid(format!("{} is damaged: {e}", self.inner.storage.uri(&key)))
            }),
            Err(e) => Err(PluginError::Transient(e.to_string())),
        }
    }

    async fn put(&self, attempt: &Attempt, name: &str, bytes: Vec<u8>) -> Result<(), PluginError> {
        let key = format!("{}/{name}", self.prefix_key(attempt)?);
        self.inner
            .storage
            .put(&key, bytes.into())
            .await
            .map_err(|e| PluginError::Transient(e.to_string()))
    }

    fn track(&self, attempt: &Attempt, status: AttemptStatus, poller: Option<JoinHandle<()>>) {
        let mut tracked = self.inner.tracked.lock().unwrap_or_else(|e| e.into_inner());
        let old = tracked.insert(
            attempt.unique_name(),
            Tracked {
                status,
                log_links: Vec::new(),
                poller,
            },
        );
        if let Some(old) = old.and_then(|t| t.poller) {
            old.abort();
        }
    }

    fn update(&self, attempt: &Attempt, status: Option<AttemptStatus>, links: Vec<TaskLog>) {
        let mut tracked = self.inner.tracked.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = tracked.get_mut(&attempt.unique_name()) {
            if let Some(status) = status {
                t.status = status;
            }
            if !links.is_empty() {
                t.log_links = links;
            }
        }
    }

    /// Ends the attempt as the terminal `resource` says: outputs or an error document first,
    /// then the status. `Err`: the write failed; the poller tries again.
    async fn conclude(
        &self,
        attempt: &Attempt,
        agent: &str,
        resource: &Resource,
        phase: AgentPhase,
    ) -> Result<AttemptStatus, PluginError> {
        match phase {
            AgentPhase::Running => Ok(AttemptStatus::Running),
            AgentPhase::Succeeded => {
                if let Some(outputs) = &resource.outputs {
                    self.put(attempt, "outputs.pb", outputs.encode_to_vec())
                        .await?;
                }
                Ok(AttemptStatus::Exited {
                    exit_code: Some(0),
                    message: resource.message.clone(),
                })
            }
            AgentPhase::Failed { retryable } => {
                let doc = error_document(agent, &attempt.task.r#type, resource, retryable);
                let message = doc
                    .error
                    .as_ref()
                    .map(|e| e.message.clone())
                    .unwrap_or_default();
                self.put(attempt, "error.pb", doc.encode_to_vec()).await?;
                Ok(AttemptStatus::Exited {
                    exit_code: Some(1),
                    message,
                })
            }
        }
    }

    /// Polls `GetTask` until the agent task ends, then records how and wakes the driver.
    async fn poll(self, attempt: Attempt, marker: Marker, waker: Waker) {
        let Some((_, channel)) = self.inner.directory.get(&marker.agent) else {
            let status = AttemptStatus::Lost {
                message: format!("agent {} is no longer configured", marker.agent),
            };
            self.update(&attempt, Some(status), Vec::new());
            return waker.wake();
        };
        let mut client = AsyncAgentServiceClient::new(channel);
        let mut failures = 0u32;
        loop {
            #[allow(deprecated)]
            let request = GetTaskRequest {
                task_type: marker.category.clone(),
                resource_meta: marker.resource_meta.clone(),
                task_category: marker.category(),
                output_prefix: attempt.output_prefix.to_string_lossy().into_owned(),
            };
            match client.get_task(request).await {
                Ok(answer) => {
                    failures = 0;
                    let resource = answer.into_inner().resource.unwrap_or_default();
                    let links = resource.log_links.clone();
                    let phase = phase_of(&resource);
                    match self
                        .conclude(&attempt, &marker.agent, &resource, phase)
                        .await
                    {
                        Ok(AttemptStatus::Running) => self.update(&attempt, None, links),
                        Ok(done) => {
                            self.update(&attempt, Some(done), links);
                            return waker.wake();
                        }
                        Err(e) => {
                            tracing::warn!(attempt = %attempt.unique_name(), error = %e, "writing the agent task's result failed; retrying")
                        }
                    }
                }
                Err(status) => {
                    let lost = |message: String| AttemptStatus::Lost { message };
                    let end = match call_error(&marker.agent, "GetTask", &status) {
                        PluginError::Transient(m) if failures + 1 < MAX_POLL_FAILURES => {
                            failures += 1;
                            tracing::warn!(attempt = %attempt.unique_name(), error = %m, "GetTask failed; retrying");
                            None
                        }
                        PluginError::Transient(m) => Some(lost(m)),
                        // The agent no longer knows the task: a system error, retried.
                        e if status.code() == Code::NotFound => Some(lost(e.to_string())),
                        e => Some(AttemptStatus::Failed {
                            message: e.to_string(),
                        }),
                    };
                    if let Some(end) = end {
                        self.update(&attempt, Some(end), Vec::new());
                        return waker.wake();
                    }
                }
            }
            tokio::time::sleep(self.inner.poll_interval).await;
        }
    }

    fn metadata(attempt: &Attempt) -> TaskExecutionMetadata {
        let settings = &attempt.settings;
        let mut env = settings.envs.clone();
        env.extend(attempt.env.clone());
        let service_account = settings
            .security_context
            .as_ref()
            .and_then(|s| s.run_as.as_ref())
            .map(|r| r.k8s_service_account.clone())
            .unwrap_or_default();
        let retries = attempt
            .task
            .metadata
            .as_ref()
            .and_then(|m| m.retries.as_ref())
            .map_or(0, |r| r.retries);
        TaskExecutionMetadata {
            task_execution_id: Some(TaskExecutionIdentifier {
                task_id: attempt.task.id.clone(),
                node_execution_id: Some(NodeExecutionIdentifier {
                    node_id: attempt.node_id.clone(),
                    execution_id: Some(attempt.execution.clone()),
                }),
                retry_attempt: attempt.retry_attempt,
            }),
            namespace: format!("{}-{}", attempt.execution.project, attempt.execution.domain),
            labels: settings.labels.clone().into_iter().collect(),
            annotations: settings.annotations.clone().into_iter().collect(),
            k8s_service_account: service_account,
            environment_variables: env.into_iter().collect(),
            max_attempts: i32::try_from(retries).unwrap_or(i32::MAX).saturating_add(1),
            interruptible: settings.interruptible.unwrap_or(false),
            overrides: attempt.overrides.clone(),
            ..Default::default()
        }
    }

    /// One `ExecuteTaskSync` call: the header, then the inputs; the answer's header carries
    /// the resource (with outputs, or an outputs message follows).
    async fn execute_sync(
        &self,
        attempt: &Attempt,
        agent: &str,
    ) -> Result<AttemptStatus, PluginError> {
        let (endpoint, channel) = self
            .inner
            .directory
            .get(agent)
            .ok_or_else(|| PluginError::Invalid(format!("agent {agent} is not configured")))?;
        let timeout = Duration::from_secs(endpoint.timeout_seconds.max(1));
        let requests = vec![
            ExecuteTaskSyncRequest {
                part: Some(execute_task_sync_request::Part::Header(
                    CreateRequestHeader {
                        template: Some((*attempt.task).clone()),
                        output_prefix: attempt.output_prefix.to_string_lossy().into_owned(),
                        task_execution_metadata: Some(Self::metadata(attempt)),
                        max_dataset_size_bytes: 0,
                    },
                )),
            },
            ExecuteTaskSyncRequest {
                part: Some(execute_task_sync_request::Part::Inputs(
                    (*attempt.inputs).clone(),
                )),
            },
        ];
        let call = async {
            let mut client = SyncAgentServiceClient::new(channel);
            let mut answers = client
                .execute_task_sync(futures::stream::iter(requests))
                .await?
                .into_inner();
            let mut resource = Resource::default();
            while let Some(answer) = answers.message().await? {
                match answer.res {
                    Some(execute_task_sync_response::Res::Header(h)) => {
                        resource = h.resource.unwrap_or_default();
                    }
                    Some(execute_task_sync_response::Res::Outputs(o)) => {
                        resource.outputs = Some(o);
                    }
                    None => {}
                }
            }
            Ok::<_, tonic::Status>(resource)
        };
        let resource = match tokio::time::timeout(timeout, call).await {
            Ok(Ok(resource)) => resource,
            Ok(Err(status)) => {
                // The sync agent's error is the task's failure (e.g. the API it calls refused).
                return match call_error(agent, "ExecuteTaskSync", &status) {
                    PluginError::Transient(m) => Ok(AttemptStatus::Lost { message: m }),
                    e => Ok(AttemptStatus::Failed {
                        message: e.to_string(),
                    }),
                };
            }
            Err(_) => {
                return Ok(AttemptStatus::Lost {
                    message: format!(
                        "agent {agent}: ExecuteTaskSync took longer than {}s",
                        timeout.as_secs()
                    ),
                })
            }
        };
        let mut phase = phase_of(&resource);
        if phase == AgentPhase::Running {
            // A sync call that ends without a terminal phase but with outputs succeeded.
            phase = match resource.outputs.is_some() {
                true => AgentPhase::Succeeded,
                false => AgentPhase::Failed { retryable: true },
            };
        }
        let links = resource.log_links.clone();
        let status = self.conclude(attempt, agent, &resource, phase).await?;
        self.update(attempt, None, links);
        Ok(status)
    }
}

#[async_trait]
impl Plugin for AgentPlugin {
    fn name(&self) -> &'static str {
        "agent"
    }

    fn can_run(&self, task: &TaskTemplate) -> bool {
        self.route(task).is_some()
    }

    fn task_types(&self) -> Vec<TaskType> {
        self.inner.routes.types()
    }

    async fn start(&self, attempt: &Attempt, waker: Waker) -> Result<(), PluginError> {
        let task = &attempt.task;
        let route = self.route(task).ok_or_else(|| {
            PluginError::Invalid(format!(
                "no agent serves task type {:?} (version {}); the agents serve: {}",
                task.r#type,
                task.task_type_version,
                self.task_types()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        if self.read_marker(attempt).await?.is_some() {
            return Err(PluginError::AlreadyStarted(attempt.unique_name()));
        }
        let mut marker = Marker {
            agent: route.agent.clone(),
            sync: route.sync,
            category: task.r#type.clone(),
            version: task.task_type_version,
            resource_meta: Vec::new(),
        };
        let to_json = |m: &Marker| serde_json::to_vec(m).unwrap_or_default();
        if route.sync {
            self.put(attempt, MARKER, to_json(&marker)).await?;
            self.track(attempt, AttemptStatus::Running, None);
            let (plugin, owned) = (self.clone(), attempt.clone());
            let call = tokio::spawn(async move {
                let status = match plugin.execute_sync(&owned, &route.agent).await {
                    Ok(status) => status,
                    Err(e) => AttemptStatus::Lost {
                        message: e.to_string(),
                    },
                };
                plugin.update(&owned, Some(status), Vec::new());
                waker.wake();
            });
            let mut tracked = self.inner.tracked.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(t) = tracked.get_mut(&attempt.unique_name()) {
                t.poller = Some(call);
            }
            return Ok(());
        }
        let (_, channel) = self.inner.directory.get(&route.agent).ok_or_else(|| {
            PluginError::Invalid(format!("agent {} is not configured", route.agent))
        })?;
        let request = CreateTaskRequest {
            inputs: Some((*attempt.inputs).clone()),
            template: Some((**task).clone()),
            output_prefix: attempt.output_prefix.to_string_lossy().into_owned(),
            task_execution_metadata: Some(Self::metadata(attempt)),
        };
        let created = AsyncAgentServiceClient::new(channel)
            .create_task(request)
            .await
            .map_err(|s| call_error(&route.agent, "CreateTask", &s))?;
        marker.resource_meta = created.into_inner().resource_meta;
        // The marker before the acknowledgement: from here on a restart resumes this task.
        self.put(attempt, MARKER, to_json(&marker)).await?;
        let poller = tokio::spawn(self.clone().poll(attempt.clone(), marker, waker));
        self.track(attempt, AttemptStatus::Running, Some(poller));
        Ok(())
    }

    async fn check(&self, attempt: &Attempt, waker: Waker) -> Result<AttemptStatus, PluginError> {
        {
            let tracked = self.inner.tracked.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(t) = tracked.get(&attempt.unique_name()) {
                return Ok(t.status.clone());
            }
        }
        let Some(marker) = self.read_marker(attempt).await? else {
            return Ok(AttemptStatus::NotStarted);
        };
        if marker.sync {
            return Ok(AttemptStatus::Lost {
                message: format!(
                    "propeller restarted during the call to sync agent {}",
                    marker.agent
                ),
            });
        }
        // After a restart: resume polling the agent task the marker names.
        tracing::info!(attempt = %attempt.unique_name(), agent = %marker.agent, "resuming an agent task");
        self.track(attempt, AttemptStatus::Running, None);
        let poller = tokio::spawn(self.clone().poll(attempt.clone(), marker, waker));
        let mut tracked = self.inner.tracked.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = tracked.get_mut(&attempt.unique_name()) {
            t.poller = Some(poller);
        }
        Ok(AttemptStatus::Running)
    }

    async fn abort(&self, attempt: &Attempt) -> Result<(), PluginError> {
        if let Some(t) = self
            .inner
            .tracked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&attempt.unique_name())
        {
            if let Some(poller) = t.poller.take() {
                poller.abort();
            }
        }
        let Some(marker) = self.read_marker(attempt).await? else {
            return Ok(());
        };
        if marker.sync {
            return Ok(()); // the call was cut with its task
        }
        let Some((_, channel)) = self.inner.directory.get(&marker.agent) else {
            return Ok(());
        };
        #[allow(deprecated)]
        let request = DeleteTaskRequest {
            task_type: marker.category.clone(),
            resource_meta: marker.resource_meta.clone(),
            task_category: marker.category(),
        };
        match AsyncAgentServiceClient::new(channel)
            .delete_task(request)
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::NotFound => Ok(()),
            Err(s) => Err(call_error(&marker.agent, "DeleteTask", &s)),
        }
    }

    fn log_links(&self, attempt: &Attempt) -> Vec<TaskLog> {
        let tracked = self.inner.tracked.lock().unwrap_or_else(|e| e.into_inner());
        tracked
            .get(&attempt.unique_name())
            .map(|t| t.log_links.clone())
            .unwrap_or_default()
    }

    async fn finalize(&self, attempt: &Attempt) -> Result<(), PluginError> {
        let removed = self
            .inner
            .tracked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&attempt.unique_name());
        if let Some(poller) = removed.and_then(|t| t.poller) {
            poller.abort();
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
