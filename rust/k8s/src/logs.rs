//! Pods' logs: links from configured templates (Flyte's `logs.templates`), and the log itself
//! read through the API server (`pods/<name>/log?container=<primary>`, which the API server
//! proxies to the node's kubelet): for admin's log route while the pod runs ([`PodLogs`]) and
//! for the driver to store once it ended ([`read_log`]), so the log outlives the pod.
//!
//! Kubernetes keeps one log per container, stdout and stderr together: it is the attempt's
//! `output` log (admin's route serves it for either stream).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use alula_idl::flyteidl::core::{task_log::MessageFormat, TaskLog};
use alula_plane::logs::{AttemptLogId, LiveLogs, LogStream};
use alula_propeller::Attempt;
use futures::{AsyncReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use kube::ResourceExt;
use serde::Deserialize;

use crate::pod::{label_value, MANAGED_BY_SELECTOR, PRIMARY_CONTAINER_ANNOTATION};

/// One link template, as Flyte's `logs.templates` entries.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LogTemplate {
    /// The link's name in events and the console.
    pub display_name: String,
    /// URIs with `{{ .variable }}` placeholders (each makes a link).
    pub template_uris: Vec<String>,
    /// `json`, `csv` or nothing.
    #[serde(default)]
    pub message_format: Option<String>,
}

/// The `logs` table of the pod plugin's settings.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub templates: Vec<LogTemplate>,
}

/// What links are made of that only the pod knows (its uid, node, container, times).
#[derive(Debug, Clone, Default)]
struct PodFacts {
    uid: String,
    hostname: String,
    container: String,
    container_id: String,
    start: Option<i64>,
    finish: Option<i64>,
}

fn facts(pod: &Pod) -> PodFacts {
    let container = pod
        .annotations()
        .get(PRIMARY_CONTAINER_ANNOTATION)
        .cloned()
        .unwrap_or_default();
    let status = pod.status.as_ref();
    let primary = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == container));
    let finish = primary
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref())
        .map(|t| t.finished_at.as_ref().map(|f| f.0.as_second()));
    PodFacts {
        uid: pod.uid().unwrap_or_default(),
        hostname: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        container_id: primary
            .and_then(|c| c.container_id.clone())
            .unwrap_or_default(),
        start: status
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0.as_second()),
        finish: finish.flatten(),
        container,
    }
}

/// Fills Flyte's `{{ .name }}` placeholders from `vars`; unknown ones are left as written.
pub fn render(template: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = after[..close].trim().trim_start_matches('.');
        match vars.get(name) {
            Some(value) => out.push_str(value),
            None => out.push_str(&rest[open..open + 2 + close + 2]),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

/// The pods this process saw, by name, for their links (kept until the attempt's `finalize`).
#[derive(Default)]
pub struct LogLinks {
    seen: Mutex<HashMap<String, PodFacts>>,
}

impl LogLinks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PodFacts>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn remember(&self, pod: &Pod) {
        self.lock().insert(pod.name_any(), facts(pod));
    }

    pub fn forget(&self, name: &str) {
        self.lock().remove(name);
    }

    /// The primary container of pod `name`, if this process saw the pod.
    pub fn container(&self, name: &str) -> Option<String> {
        self.lock().get(name).map(|p| p.container.clone())
    }

    /// The links of `attempt`'s pod `name` from the templates (Flyte's variables).
    pub fn links(
        &self,
        config: &LogConfig,
        namespace: &str,
        name: &str,
        attempt: &Attempt,
    ) -> Vec<TaskLog> {
        if config.templates.is_empty() {
            return Vec::new();
        }
        let pod = self.lock().get(name).cloned().unwrap_or_default();
        let time = |t: Option<i64>| t.map(|s| s.to_string()).unwrap_or_default();
        let task = attempt.task.id.clone().unwrap_or_default();
        let vars: BTreeMap<&str, String> = [
            ("podName", name.to_string()),
            ("podUID", pod.uid.clone()),
            ("namespace", namespace.to_string()),
            ("containerName", pod.container.clone()),
            ("containerId", pod.container_id.clone()),
            ("logName", pod.container.clone()),
            ("hostname", pod.hostname.clone()),
            ("podUnixStartTime", time(pod.start)),
            ("podUnixFinishTime", time(pod.finish)),
            ("executionName", attempt.execution.name.clone()),
            ("executionProject", attempt.execution.project.clone()),
            ("executionDomain", attempt.execution.domain.clone()),
            ("nodeID", attempt.node_id.clone()),
            ("taskRetryAttempt", attempt.retry_attempt.to_string()),
            ("taskID", task.name.clone()),
            ("taskProject", task.project.clone()),
            ("taskDomain", task.domain.clone()),
            ("taskVersion", task.version.clone()),
        ]
        .into_iter()
        .collect();
        config
            .templates
            .iter()
            .flat_map(|t| {
                let format = match t.message_format.as_deref() {
                    Some("json") => MessageFormat::Json,
                    Some("csv") => MessageFormat::Csv,
                    _ => MessageFormat::Unknown,
                };
                let vars = &vars;
                t.template_uris.iter().map(move |uri| TaskLog {
                    uri: render(uri, vars),
                    name: t.display_name.clone(),
                    message_format: format as i32,
                    ..Default::default()
                })
            })
            .collect()
    }
}

/// The log of `container` of pod `name`, whole (the pod ended: it grows no more).
pub async fn read_log(api: &Api<Pod>, name: &str, container: &str) -> Result<Vec<u8>, String> {
    let params = LogParams {
        container: (!container.is_empty()).then(|| container.to_string()),
        ..Default::default()
    };
    let mut reader = api
        .log_stream(name, &params)
        .await
        .map_err(|e| format!("reading the log of pod {name}: {e}"))?;
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| format!("reading the log of pod {name}: {e}"))?;
    Ok(bytes)
}

/// The primary container of a pod we made.
pub fn primary_container(pod: &Pod) -> String {
    pod.annotations()
        .get(PRIMARY_CONTAINER_ANNOTATION)
        .cloned()
        .unwrap_or_default()
}

/// Admin's live source of pod logs: finds the attempt's pod by its labels and annotations and
/// streams its primary container's log from the API server.
pub struct PodLogs {
    api: Api<Pod>,
}

impl PodLogs {
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
        }
    }

    async fn find(&self, id: &AttemptLogId) -> Result<Option<Pod>, String> {
        let selector = format!(
            "{MANAGED_BY_SELECTOR},execution-id={},node-id={},attempt={}",
            label_value(&id.name),
            label_value(&id.node_id),
            id.retry_attempt
        );
        let pods = self
            .api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| format!("listing pods: {e}"))?;
        // Labels may be cut or hashed: the annotations hold the ids whole.
        let a = |pod: &Pod, k: &str| {
            pod.annotations()
                .get(&format!("{}{k}", crate::pod::ANNOTATION_PREFIX))
                .cloned()
        };
        Ok(pods.items.into_iter().find(|p| {
            a(p, "project").as_deref() == Some(id.project.as_str())
                && a(p, "domain").as_deref() == Some(id.domain.as_str())
                && a(p, "execution").as_deref() == Some(id.name.as_str())
                && a(p, "node-id").as_deref() == Some(id.node_id.as_str())
                && a(p, "array-index") == id.array_index.map(|i| i.to_string())
        }))
    }
}

impl LiveLogs for PodLogs {
    fn logs<'a>(
        &'a self,
        id: &'a AttemptLogId,
        _stream: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Option<LogStream>, String>> + Send + 'a>> {
        Box::pin(async move {
            let Some(pod) = self.find(id).await? else {
                return Ok(None);
            };
            let name = pod.name_any();
            let params = LogParams {
                container: Some(primary_container(&pod)).filter(|c| !c.is_empty()),
                ..Default::default()
            };
            let reader = match self.api.log_stream(&name, &params).await {
                Ok(reader) => reader,
                // Not started yet (no log), or gone since the list.
                Err(kube::Error::Api(s)) if s.code == 400 || s.code == 404 => return Ok(None),
                Err(e) => return Err(format!("reading the log of pod {name}: {e}")),
            };
            let chunks = futures::stream::unfold(Some(Box::pin(reader)), |reader| async move {
                let mut reader = reader?;
                let mut buf = vec![0u8; 64 << 10];
                match reader.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok(bytes::Bytes::from(buf)), Some(reader)))
                    }
                    Err(e) => Some((Err(e), None)),
                }
            });
            Ok(Some(chunks.boxed()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flyte_placeholders_are_filled() {
        let vars: BTreeMap<&str, String> = [("podName", "p-1".into()), ("namespace", "ns".into())]
            .into_iter()
            .collect();
        assert_eq!(
            render(
                "https://logs/{{ .namespace }}/{{.podName}}?q={{ .unknown }}&x={{",
                &vars
            ),
            "https://logs/ns/p-1?q={{ .unknown }}&x={{"
        );
    }
}
