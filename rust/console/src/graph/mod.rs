//! (being written) The execution graph: the compiled workflow laid out and drawn as SVG, each
//! node coloured by its phase; map nodes as element counts by phase, elements on demand.

use alula_idl::flyteidl::admin::{Execution, NodeExecution};
use axum::Router;
use maud::{html, Markup};

use crate::error::ConsoleResult;
use crate::{Api, State};

/// Routes of the graph's own fragments (a map node's elements, say).
pub(crate) fn routes() -> Router<State> {
    Router::new()
}

/// The graph section of an execution page: `<svg id="graph">` with a `<g class="node"
/// data-node-id=.. data-phase=..>` per node (see the page contract). `nodes` are the
/// execution's top-level node executions; nested ones are fetched as needed.
pub async fn graph_section(
    _api: &Api,
    _execution: &Execution,
    _nodes: &[NodeExecution],
    _selected: Option<&str>,
) -> ConsoleResult<Markup> {
    Ok(html! { section #graph-section { p.muted { "The graph is being built." } } })
}
