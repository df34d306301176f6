//! The node panel: one node execution's attempts (phase, duration, error, log links, logs),
//! inputs and outputs, cache status, children and gate controls. Rendered into the execution
//! page with `?node=`, and alone at `.../executions/{name}/nodes/{node_id}` so the page's script
//! swaps it in when a node is clicked.

use alula_idl::flyteidl::admin::{
    node_execution_closure, task_execution_closure, Execution, NodeExecution,
    NodeExecutionGetDataRequest, NodeExecutionGetRequest, TaskExecution,
};
use alula_idl::flyteidl::core::{
    task_execution, NodeExecutionIdentifier, TaskLog, TypedInterface, WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use axum::extract::{Path, Query};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;

use super::execution::{node_id, values, Values};
use super::execution_header::{error_block, value_list};
use super::gate;
use super::node_table::cache_badge;
use super::spec::{task_interface, Definition, NodeInfo};
use crate::error::ConsoleResult;
use crate::{format, graph, logs, shell, urls, Api, State};

pub(crate) fn routes() -> Router<State> {
    Router::new().route(
        "/console/projects/{project}/domains/{domain}/executions/{name}/nodes/{node_id}",
        get(panel_fragment),
    )
}

#[derive(Deserialize)]
struct PanelQuery {
    attempt: Option<u32>,
}

/// Where the panel of each node is served alone: `{base}{escaped node id}`.
pub fn fragment_base(id: &WorkflowExecutionIdentifier) -> String {
    format!("{}/nodes/", urls::execution(id))
}

fn fragment_url(id: &WorkflowExecutionIdentifier, node: &str, attempt: Option<u32>) -> String {
    let base = format!("{}{}", fragment_base(id), urls::escape(node));
    match attempt {
        Some(a) => format!("{base}?attempt={a}"),
        None => base,
    }
}

async fn panel_fragment(
    api: Api,
    Path((project, domain, name, node)): Path<(String, String, String, String)>,
    Query(query): Query<PanelQuery>,
    headers: HeaderMap,
) -> ConsoleResult<Response> {
    let id = WorkflowExecutionIdentifier {
        project,
        domain,
        name,
        org: String::new(),
    };
    // A browser opening this URL (a copied link) gets the whole page with the panel open.
    let navigating = headers
        .get("sec-fetch-mode")
        .is_some_and(|mode| mode.as_bytes() == b"navigate");
    if navigating {
        let mut url = urls::node(&id, &node);
        if let Some(attempt) = query.attempt {
            url.push_str(&format!("&attempt={attempt}"));
        }
        return Ok(Redirect::to(&url).into_response());
    }
    let execution = graph::execution(&api, id.project, id.domain, id.name).await?;
    let definition = Definition::load(&api, &execution).await;
    let panel = panel(&api, &execution, &definition, &node, query.attempt).await?;
    Ok(shell::fragment(panel).into_response())
}

/// The panel of node `node` of `execution`, showing attempt `attempt` (the latest by default).
/// `definition` is the execution's, which the caller has read already (the execution page
/// shares its own), so the panel reads no workflow again.
pub async fn panel(
    api: &Api,
    execution: &Execution,
    definition: &Definition,
    node: &str,
    attempt: Option<u32>,
) -> ConsoleResult<Markup> {
    let exec_id = execution.id.clone().unwrap_or_default();
    let node_exec_id = NodeExecutionIdentifier {
        node_id: node.to_string(),
        execution_id: Some(exec_id.clone()),
    };
    let request = api.request(NodeExecutionGetRequest {
        id: Some(node_exec_id.clone()),
    });
    let node_execution = AdminService::get_node_execution(&api.admin, request)
        .await?
        .into_inner();
    let data_request = api.request(NodeExecutionGetDataRequest {
        id: Some(node_exec_id.clone()),
    });
    let is_parent = node_execution
        .metadata
        .as_ref()
        .is_some_and(|m| m.is_parent_node || m.is_dynamic);
    let (data, attempts, children) = tokio::join!(
        AdminService::get_node_execution_data(&api.admin, data_request),
        graph::task_executions(api, &exec_id, node),
        async {
            if is_parent {
                graph::node_executions(api, &exec_id, node)
                    .await
                    .unwrap_or_default()
            } else {
                Vec::new()
            }
        },
    );
    let attempts = attempts?;
    let (inputs, outputs) = values(data.map(|d| {
        let d = d.into_inner();
        (d.full_inputs, d.full_outputs)
    }));
    // The task's interface types the values; the latest attempt names the task.
    let interface = match attempts
        .last()
        .and_then(|a| a.id.as_ref())
        .and_then(|id| id.task_id.as_ref())
    {
        Some(task) => task_interface(api, task).await,
        None => None,
    };
    let spec_node_id = node_execution
        .metadata
        .as_ref()
        .map(|m| m.spec_node_id.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or(node);
    let spec = definition.find_node(spec_node_id);
    let node_terminal = format::node_phase_is_terminal(phase_of(&node_execution));
    let execution_terminal =
        format::workflow_phase_is_terminal(execution.closure.as_ref().map_or(0, |c| c.phase));
    let gate = match spec {
        Some(spec) if !node_terminal && !execution_terminal => {
            gate::controls(api, &exec_id, node, spec).await
        }
        _ => html! {},
    };
    let selected = attempt
        .and_then(|a| attempts.iter().find(|t| retry_of(t) == a))
        .or(attempts.last());
    let content = PanelContent {
        exec_id: &exec_id,
        node: &node_execution,
        info: spec.map(NodeInfo::of),
        attempts: &attempts,
        selected_attempt: selected.map(retry_of),
        children: &children,
        gate,
        interface: interface.as_ref(),
        inputs: &inputs,
        outputs: &outputs,
    };
    let live = (!execution_terminal).then(|| fragment_url(&exec_id, node, attempt));
    let logs = match selected {
        Some(a) => logs::logs_panel(
            &exec_id,
            node,
            retry_of(a),
            None,
            !task_phase_is_terminal(a.closure.as_ref().map_or(0, |c| c.phase)),
        ),
        None => html! {},
    };
    let body = content.render(api, live.as_deref()).await;
    Ok(html! {
        section #node-detail .node-detail data-node-id=(node)
            data-phase=(format::node_phase(phase_of(&node_execution)))
            aria-labelledby="node-detail-title" tabindex="-1" {
            (body)
            (logs)
        }
    })
}

fn retry_of(attempt: &TaskExecution) -> u32 {
    attempt.id.as_ref().map_or(0, |id| id.retry_attempt)
}

fn phase_of(node: &NodeExecution) -> i32 {
    node.closure.as_ref().map_or(0, |c| c.phase)
}

fn task_phase_is_terminal(phase: i32) -> bool {
    use task_execution::Phase;
    matches!(
        Phase::try_from(phase),
        Ok(Phase::Succeeded | Phase::Failed | Phase::Aborted | Phase::RetryableFailed)
    )
}

/// What the panel shows, read.
struct PanelContent<'a> {
    exec_id: &'a WorkflowExecutionIdentifier,
    node: &'a NodeExecution,
    info: Option<NodeInfo>,
    attempts: &'a [TaskExecution],
    selected_attempt: Option<u32>,
    children: &'a [NodeExecution],
    gate: Markup,
    interface: Option<&'a TypedInterface>,
    inputs: &'a Values,
    outputs: &'a Values,
}

impl PanelContent<'_> {
    /// The refreshed part of the panel (everything but the logs, which follow on their own).
    async fn render(&self, api: &Api, live: Option<&str>) -> Markup {
        let id = node_id(self.node);
        let closure = self.node.closure.clone().unwrap_or_default();
        let phase = format::node_phase(closure.phase);
        let inputs = value_list(
            api,
            self.inputs,
            self.interface.and_then(|i| i.inputs.as_ref()),
            "inputs",
        )
        .await;
        let outputs = value_list(
            api,
            self.outputs,
            self.interface.and_then(|i| i.outputs.as_ref()),
            "outputs",
        )
        .await;
        html! {
            div #node-detail-live data-live=[live] {
                header.panel-header {
                    h2 #node-detail-title { (format::phase_badge(phase)) " " (id) }
                    @if let Some(info) = &self.info {
                        p.muted { (info.name) @if !info.runs.is_empty() { " · " (info.runs) } }
                    }
                    a.close-panel href=(urls::execution(self.exec_id)) data-close-panel="" {
                        "Close" span.visually-hidden { " the panel of " (id) }
                    }
                }
                dl.facts {
                    dt { "Started" } dd { (format::time(closure.started_at.as_ref())) }
                    dt { "Duration" } dd { (format::duration(closure.duration.as_ref())) }
                    dt { "Cache" } dd { (cache_badge(self.node)) }
                    @if let Some(node_execution_closure::TargetMetadata::WorkflowNodeMetadata(w)) =
                        &closure.target_metadata {
                        @if let Some(child) = &w.execution_id {
                            dt { "Child execution" }
                            dd { a.child-execution href=(urls::execution(child)) { (child.name) } }
                        }
                    }
                }
                @if let Some(node_execution_closure::OutputResult::Error(error)) =
                    &closure.output_result {
                    (error_block(error))
                }
                (self.gate)
                (self.children_list())
                (self.attempt_list())
                section.io aria-label="Node inputs and outputs" {
                    div.values-column { h3 { "Inputs" } (inputs) }
                    div.values-column { h3 { "Outputs" } (outputs) }
                }
            }
        }
    }

    fn children_list(&self) -> Markup {
        html! {
            @if !self.children.is_empty() {
                section.children aria-label="Child nodes" {
                    h3 { "Child nodes" }
                    ul {
                        @for child in self.children {
                            @let child_id = node_id(child);
                            @let phase = format::node_phase(phase_of(child));
                            li data-node-id=(child_id) data-phase=(phase) {
                                a.node-link href=(urls::node(self.exec_id, child_id))
                                    data-node=(child_id) { (child_id) }
                                " " (format::phase_badge(phase))
                            }
                        }
                    }
                }
            }
        }
    }

    fn attempt_list(&self) -> Markup {
        let node = node_id(self.node);
        html! {
            @if !self.attempts.is_empty() {
                section.attempts aria-label="Attempts" {
                    h3 { "Attempts" }
                    ol.attempts {
                        @for attempt in self.attempts {
                            @let retry = retry_of(attempt);
                            @let closure = attempt.closure.clone().unwrap_or_default();
                            @let phase = format::task_phase(closure.phase);
                            @let selected = self.selected_attempt == Some(retry);
                            li data-attempt=(retry) data-phase=(phase)
                                class=[selected.then_some("selected")] {
                                a.attempt-link href={(urls::node(self.exec_id, node)) "&attempt=" (retry)}
                                    data-node=(node) data-attempt=(retry)
                                    aria-current=[selected.then_some("true")] {
                                    "Attempt " (retry + 1)
                                }
                                " " (format::phase_badge(phase))
                                " " span.duration { (format::duration(closure.duration.as_ref())) }
                                @if !closure.reason.is_empty() {
                                    p.reason { (closure.reason) }
                                }
                                @if let Some(task_execution_closure::OutputResult::Error(error)) =
                                    &closure.output_result {
                                    pre.traceback { (error.message) }
                                }
                                (log_links(&closure.logs))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The attempt's log links; only web links are clickable (a `javascript:` URI stays text).
fn log_links(logs: &[TaskLog]) -> Markup {
    html! {
        @if !logs.is_empty() {
            ul.log-links {
                @for log in logs {
                    @let name = if log.name.is_empty() { "Logs" } else { log.name.as_str() };
                    li {
                        @if is_web_link(&log.uri) {
                            a href=(log.uri) target="_blank" rel="noopener noreferrer" { (name) }
                        } @else {
                            (name) ": " code { (log.uri) }
                        }
                    }
                }
            }
        }
    }
}

fn is_web_link(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    lower.starts_with("https://")
        || lower.starts_with("http://")
        || (uri.starts_with('/') && !uri.starts_with("//"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_links_are_links() {
        assert!(is_web_link("https://logs.example/x"));
        assert!(is_web_link("/console/logs/x"));
        assert!(!is_web_link("javascript:alert(1)"));
        assert!(!is_web_link("//evil.example/x"));
        assert!(!is_web_link("file:///etc/passwd"));
    }
}
