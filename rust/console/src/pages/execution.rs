//! The execution page: its header (phase, who, what, values, error), graph, timeline, node
//! table and, with `?node=`, the node's panel. Everything is read in a handful of calls (the
//! execution, its data, its top-level node executions in pages of thousands, its definition):
//! a 1,000-node page costs no per-node call.

use std::collections::HashMap;

use alula_admin::authz::Permission;
use alula_idl::flyteidl::admin::{
    Execution, NodeExecution, Signal, SignalListRequest, WorkflowExecutionGetDataRequest,
    WorkflowExecutionGetRequest,
};
use alula_idl::flyteidl::core::{LiteralMap, WorkflowExecutionIdentifier};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_idl::flyteidl::service::signal_service_server::SignalService;
use axum::extract::{Path, Query};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;

use super::execution_header;
use super::node;
use super::node_table;
use super::spec::Definition;
use crate::error::ConsoleResult;
pub(crate) use crate::graph::{is_shown, node_id};
use crate::shell::{self, Crumb, Page};
use crate::{format, graph, timeline, urls, Api, State};

/// Up to this many top-level nodes, the table shows each node's attempt count (one call per
/// node); bigger executions show attempts in the node panel only, so the page stays one-call.
const ATTEMPT_COUNT_LIMIT: usize = 64;

pub(crate) fn routes() -> Router<State> {
    Router::new().route(
        "/console/projects/{project}/domains/{domain}/executions/{name}",
        get(execution_page),
    )
}

#[derive(Deserialize)]
struct PageQuery {
    node: Option<String>,
    attempt: Option<u32>,
    /// Only this part, for a live refresh.
    live: Option<Part>,
}

async fn execution_page(
    api: Api,
    Path((project, domain, name)): Path<(String, String, String)>,
    Query(query): Query<PageQuery>,
) -> ConsoleResult<Page> {
    let id = WorkflowExecutionIdentifier {
        project,
        domain,
        name,
        org: String::new(),
    };
    let selected = query.node.as_deref().filter(|n| !n.is_empty());
    let view = ExecutionView::load(&api, id).await?;
    if let Some(part) = query.live {
        let part = context(&api, &view, selected).part(part).await?;
        return Ok(shell::fragment(part));
    }
    let body = render(&api, &view, selected, query.attempt).await?;
    let crumbs = [
        Crumb::link(
            view.id.project.clone(),
            urls::project(&view.id.project, &view.id.domain),
        ),
        Crumb::link(
            "Executions",
            urls::executions(&view.id.project, &view.id.domain),
        ),
        Crumb::here(view.id.name.clone()),
    ];
    Ok(shell::page(&view.id.name, &crumbs, body))
}

/// Everything the page shows, read from the API.
pub(crate) struct ExecutionView {
    pub id: WorkflowExecutionIdentifier,
    pub execution: Execution,
    /// The inputs and outputs, or why they could not be read (too large, say).
    pub inputs: Values,
    pub outputs: Values,
    /// Top-level node executions, oldest first.
    pub nodes: Vec<NodeExecution>,
    pub definition: Definition,
    /// Attempts per node id, for small executions (see [`ATTEMPT_COUNT_LIMIT`]).
    pub attempts: HashMap<String, usize>,
    /// Signals created and not yet set: gates waiting for someone.
    pub waiting: Vec<Signal>,
    /// Whether the caller may launch in the execution's project and domain: its controls
    /// (terminate, relaunch, recover, gates) are shown only then.
    pub can_launch: bool,
}

impl ExecutionView {
    pub async fn load(api: &Api, id: WorkflowExecutionIdentifier) -> ConsoleResult<Self> {
        let request = api.request(WorkflowExecutionGetRequest {
            id: Some(id.clone()),
        });
        let execution = AdminService::get_execution(&api.admin, request)
            .await?
            .into_inner();
        let data_request = api.request(WorkflowExecutionGetDataRequest {
            id: Some(id.clone()),
        });
        let (data, nodes, definition, waiting, can_launch) = tokio::join!(
            AdminService::get_execution_data(&api.admin, data_request),
            graph::node_executions(api, &id, ""),
            Definition::load(api, &execution),
            waiting_signals(api, &id),
            api.allows(Permission::Launch, &id.project, &id.domain),
        );
        let nodes = nodes?;
        let (inputs, outputs) = values(data.map(|d| {
            let d = d.into_inner();
            (d.full_inputs, d.full_outputs)
        }));
        let attempts = attempt_counts(api, &id, &nodes).await;
        Ok(Self {
            id,
            execution,
            inputs,
            outputs,
            nodes,
            definition,
            attempts,
            waiting,
            can_launch,
        })
    }

    pub fn phase(&self) -> i32 {
        self.execution.closure.as_ref().map_or(0, |c| c.phase)
    }

    pub fn is_terminal(&self) -> bool {
        format::workflow_phase_is_terminal(self.phase())
    }
}

/// Inputs or outputs as a page shows them: the values, or why they could not be read.
pub(crate) type Values = Result<Option<LiteralMap>, String>;

/// A data call's inputs and outputs (an execution's or a node's) as the page shows them: when
/// the call failed, both say why.
pub(crate) fn values(
    data: Result<(Option<LiteralMap>, Option<LiteralMap>), tonic::Status>,
) -> (Values, Values) {
    match data {
        Ok((inputs, outputs)) => (Ok(inputs), Ok(outputs)),
        Err(status) => (
            Err(status.message().to_string()),
            Err(status.message().to_string()),
        ),
    }
}

/// Signals of the execution without a value yet; none when they cannot be listed.
async fn waiting_signals(api: &Api, id: &WorkflowExecutionIdentifier) -> Vec<Signal> {
    let request = api.request(SignalListRequest {
        workflow_execution_id: Some(id.clone()),
        limit: 1_000,
        ..Default::default()
    });
    match SignalService::list_signals(&api.admin, request).await {
        Ok(list) => list
            .into_inner()
            .signals
            .into_iter()
            .filter(|s| s.value.is_none())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Attempts per node for small executions, read concurrently.
async fn attempt_counts(
    api: &Api,
    id: &WorkflowExecutionIdentifier,
    nodes: &[NodeExecution],
) -> HashMap<String, usize> {
    let shown: Vec<&NodeExecution> = nodes.iter().filter(|n| is_shown(n)).collect();
    if shown.len() > ATTEMPT_COUNT_LIMIT {
        return HashMap::new();
    }
    let mut calls = tokio::task::JoinSet::new();
    for node in shown {
        let (api, id, node_id) = (api.clone(), id.clone(), node_id(node).to_string());
        calls.spawn(async move {
            let count = graph::task_executions(&api, &id, &node_id)
                .await
                .map_or(0, |attempts| attempts.len());
            (node_id, count)
        });
    }
    let mut counts = HashMap::new();
    while let Some(done) = calls.join_next().await {
        if let Ok((node_id, count)) = done {
            if count > 0 {
                counts.insert(node_id, count);
            }
        }
    }
    counts
}

/// The parts of the page that refresh on their own while the execution runs. Each carries
/// `data-live="{the page's URL}&live={part}"`: the page answers such a request with that part
/// alone, so a refresh renders one part, not the whole page once per part.
#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Part {
    Header,
    Values,
    Graph,
    Timeline,
    Nodes,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Self::Header => "header",
            Self::Values => "values",
            Self::Graph => "graph",
            Self::Timeline => "timeline",
            Self::Nodes => "nodes",
        }
    }
}

/// What a part needs to render itself.
struct Context<'a> {
    api: &'a Api,
    view: &'a ExecutionView,
    selected: Option<&'a str>,
    /// The page's own URL while the execution can change; `None` once it ended.
    live_base: Option<String>,
}

impl Context<'_> {
    fn live_url(&self, part: Part) -> Option<String> {
        let base = self.live_base.as_deref()?;
        let separator = if base.contains('?') { '&' } else { '?' };
        Some(format!("{base}{separator}live={}", part.name()))
    }

    async fn part(&self, part: Part) -> ConsoleResult<Markup> {
        let (api, view) = (self.api, self.view);
        let live = self.live_url(part);
        let live = live.as_deref();
        Ok(match part {
            Part::Header => execution_header::header(view, live),
            Part::Values => {
                let io = execution_header::values(api, view).await;
                html! {
                    section #execution-io .io aria-label="Inputs and outputs" data-live=[live] {
                        (io)
                    }
                }
            }
            Part::Graph => {
                let graph = graph::graph_section(
                    api,
                    &view.execution,
                    view.definition.workflow.as_ref(),
                    &view.nodes,
                    self.selected,
                )
                .await?;
                html! { div #graph-live .live-part data-live=[live] { (graph) } }
            }
            Part::Timeline => {
                let timeline = timeline::timeline_section(&view.execution, &view.nodes);
                html! { div #timeline-live .live-part data-live=[live] { (timeline) } }
            }
            Part::Nodes => node_table::table(view, self.selected, live),
        })
    }

    /// The node panel, or a notice when the linked node is not there (a stale link still shows
    /// the execution).
    async fn panel(&self, attempt: Option<u32>) -> ConsoleResult<Option<Markup>> {
        let Some(node_id) = self.selected else {
            return Ok(None);
        };
        match node::panel(
            self.api,
            &self.view.execution,
            &self.view.definition,
            node_id,
            attempt,
        )
        .await
        {
            Err(e) if e.status() == axum::http::StatusCode::NOT_FOUND => Ok(Some(html! {
                p.notice.error role="alert" {
                    "No node " code { (node_id) } " in this execution: " (e.to_string())
                }
            })),
            other => other.map(Some),
        }
    }
}

fn context<'a>(api: &'a Api, view: &'a ExecutionView, selected: Option<&'a str>) -> Context<'a> {
    let own_url = match selected {
        Some(node) => urls::node(&view.id, node),
        None => urls::execution(&view.id),
    };
    Context {
        api,
        view,
        selected,
        live_base: (!view.is_terminal()).then_some(own_url),
    }
}

/// The page's body.
async fn render(
    api: &Api,
    view: &ExecutionView,
    selected: Option<&str>,
    attempt: Option<u32>,
) -> ConsoleResult<Markup> {
    let cx = context(api, view, selected);
    let (values, graph, timeline, panel) = tokio::join!(
        cx.part(Part::Values),
        cx.part(Part::Graph),
        cx.part(Part::Timeline),
        cx.panel(attempt),
    );
    Ok(html! {
        (cx.part(Part::Header).await?)
        @if view.can_launch { (execution_header::terminate_dialog(&view.id)) }
        p #action-status .action-status role="status" aria-live="polite" {}
        (values?)
        (graph?)
        div #node-detail-slot data-fragment-base=(node::fragment_base(&view.id))
            data-execution-url=(urls::execution(&view.id)) {
            @if let Some(panel) = panel? { (panel) }
        }
        (timeline?)
        (cx.part(Part::Nodes).await?)
    })
}
