//! The execution graph: the compiled workflow laid out and drawn as SVG, each node coloured by
//! its phase; map nodes as element counts by phase, elements on demand.
//!
//! Nested structures (subworkflows, branches, dynamic nodes) are one box with an expand control:
//! a link to the nested graph's own page (`.../executions/{name}/graph?path=a,b`), which
//! graph.js fetches as a fragment and shows below the main graph, so a 1,000-node page stays one
//! drawing and each nested level is laid out on its own, readable at its own size.

mod elements;
mod fetch;
mod layout;
mod model;
mod svg;

pub(crate) use fetch::{node_executions, task_executions, workflow_closure};
pub(crate) use model::case_nodes;

use alula_idl::flyteidl::admin::{Execution, NodeExecution, WorkflowExecutionGetRequest};
use alula_idl::flyteidl::core::{CompiledWorkflowClosure, WorkflowExecutionIdentifier};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use axum::extract::{Path, Query};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;

use crate::error::ConsoleResult;
use crate::shell::{self, Crumb, Page};
use crate::{format, urls, Api, State};

/// Routes of the graph's own pages and fragments: a nested graph, a map node's elements.
pub(crate) fn routes() -> Router<State> {
    Router::new()
        .route(
            "/console/projects/{project}/domains/{domain}/executions/{name}/graph",
            get(nested_page),
        )
        .route(
            "/console/projects/{project}/domains/{domain}/executions/{name}/nodes/{node_id}/elements",
            get(elements::elements_page),
        )
}

/// The graph section of an execution page: `<svg id="graph">` with a `<g class="node"
/// data-node-id=.. data-phase=..>` per node (see the page contract). `workflow` is the compiled
/// workflow the page already read (`None`: nothing to draw) and `nodes` the execution's
/// top-level node executions; nested ones are fetched as needed.
pub async fn graph_section(
    api: &Api,
    execution: &Execution,
    workflow: Option<&CompiledWorkflowClosure>,
    nodes: &[NodeExecution],
    selected: Option<&str>,
) -> ConsoleResult<Markup> {
    let id = fetch::execution_id(execution)?;
    let Some(closure) = workflow else {
        return Ok(html! {
            section #graph-section aria-labelledby="graph-heading" {
                h2 #graph-heading { "Graph" }
                p.muted { "This execution has no workflow graph (a task launched on its own)." }
            }
        });
    };
    let phase = format::workflow_phase(execution.closure.as_ref().map_or(0, |c| c.phase));
    let level = fetch::Level::Workflow {
        workflow: Box::new(closure.primary.clone().unwrap_or_default()),
        executions: nodes.to_vec(),
        parent_phase: phase,
    };
    let mut graph = level.graph();
    fetch::fill_element_counts(api, id, &mut graph).await?;
    let drawing = svg::render(
        &graph,
        &svg::Context {
            execution: id,
            path: &[],
            selected,
            svg_id: Some("graph"),
        },
    );
    Ok(html! {
        section #graph-section aria-labelledby="graph-heading" {
            div.graph-head {
                h2 #graph-heading { "Graph" }
                (zoom_controls())
            }
            div.graph-scroll tabindex="0" aria-label="Execution graph, scrollable" {
                (drawing)
            }
            // graph.js puts the nested graphs the reader expands here.
            div #graph-expanded aria-live="polite" {}
        }
    })
}

fn zoom_controls() -> Markup {
    html! {
        div.graph-zoom role="group" aria-label="Zoom the graph" {
            button type="button" data-zoom="out" aria-label="Zoom out" { "−" }
            button type="button" data-zoom="reset" aria-label="Actual size" { "100%" }
            button type="button" data-zoom="in" aria-label="Zoom in" { "+" }
            button type="button" data-zoom="fit" aria-label="Fit to width" { "Fit" }
        }
    }
}

/// A node execution's id (what the table and timeline label their rows with).
pub(crate) use model::node_execution_id as node_id;

/// Flyte's bookkeeping nodes are not shown as table or timeline rows.
pub(crate) fn is_shown(node: &NodeExecution) -> bool {
    !matches!(node_id(node), "" | "start-node" | "end-node")
}

#[derive(Deserialize)]
struct NestedQuery {
    path: String,
    /// Set by graph.js: answer the section alone.
    fragment: Option<String>,
}

pub(crate) async fn execution(
    api: &Api,
    project: String,
    domain: String,
    name: String,
) -> ConsoleResult<Execution> {
    let id = WorkflowExecutionIdentifier {
        project,
        domain,
        name,
        org: String::new(),
    };
    Ok(AdminService::get_execution(
        &api.admin,
        api.request(WorkflowExecutionGetRequest { id: Some(id) }),
    )
    .await?
    .into_inner())
}

/// The nested graph of the node at the end of `path` (node ids from the top level down).
async fn nested_page(
    api: Api,
    Path((project, domain, name)): Path<(String, String, String)>,
    Query(q): Query<NestedQuery>,
) -> ConsoleResult<Page> {
    let execution = execution(&api, project, domain, name).await?;
    let path: Vec<String> = q
        .path
        .split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let section = nested_section(&api, &execution, &path).await?;
    if q.fragment.is_some() {
        return Ok(shell::fragment(section));
    }
    let id = fetch::execution_id(&execution)?;
    let last = path.last().cloned().unwrap_or_default();
    let crumbs = [
        Crumb::link(&id.project, urls::project(&id.project, &id.domain)),
        Crumb::link("Executions", urls::executions(&id.project, &id.domain)),
        Crumb::link(&id.name, urls::execution(id)),
        Crumb::here(format!("Graph of {last}")),
    ];
    Ok(shell::page(
        &format!("{last} · {}", id.name),
        &crumbs,
        html! {
            h1 { "Nested graph of " code { (last) } }
            (section)
        },
    ))
}

/// One nested level drawn in its own section.
pub(crate) async fn nested_section(
    api: &Api,
    execution: &Execution,
    path: &[String],
) -> ConsoleResult<Markup> {
    let id = fetch::execution_id(execution)?;
    let level = fetch::nested_level(api, execution, path).await?;
    let mut graph = level.graph();
    fetch::fill_element_counts(api, id, &mut graph).await?;
    let last = path.last().map(String::as_str).unwrap_or("");
    let kind = match level {
        fetch::Level::Branch { .. } => "Cases of branch",
        fetch::Level::Workflow { .. } => "Inside",
    };
    let drawing = svg::render(
        &graph,
        &svg::Context {
            execution: id,
            path,
            selected: None,
            svg_id: None,
        },
    );
    Ok(html! {
        section.graph-nested data-path=(path.join(",")) aria-label={ (kind) " " (last) } {
            div.graph-head {
                h3 { (kind) " " code { (last) } }
                button type="button" class="graph-close" data-close-nested=(path.join(","))
                    aria-label={ "Close the graph of " (last) } { "Close" }
            }
            div.graph-scroll tabindex="0" { (drawing) }
        }
    })
}

#[cfg(test)]
mod tests;
