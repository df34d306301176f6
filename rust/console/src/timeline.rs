//! (being written) The timeline (Gantt) of node and attempt durations, queueing vs running.

use alula_idl::flyteidl::admin::{Execution, NodeExecution};
use maud::{html, Markup};

use crate::error::ConsoleResult;
use crate::Api;

/// The timeline section of an execution page.
pub async fn timeline_section(
    _api: &Api,
    _execution: &Execution,
    _nodes: &[NodeExecution],
) -> ConsoleResult<Markup> {
    Ok(html! { section #timeline-section { p.muted { "The timeline is being built." } } })
}
