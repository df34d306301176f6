//! The table of an execution's top-level nodes, each row linking to the node's panel.

use alula_idl::flyteidl::admin::{node_execution_closure::TargetMetadata, NodeExecution};
use alula_idl::flyteidl::core::CatalogCacheStatus;
use maud::{html, Markup};

use super::execution::{is_shown, node_id, ExecutionView};
use crate::{format, urls};

/// `<section id="node-table">` with a `<tr data-node-id data-phase>` per node.
pub fn table(view: &ExecutionView, selected: Option<&str>, live: Option<&str>) -> Markup {
    let infos = view.definition.top_level_nodes();
    let rows: Vec<&NodeExecution> = view.nodes.iter().filter(|n| is_shown(n)).collect();
    html! {
        section #node-table .node-table data-live=[live] aria-labelledby="node-table-title" {
            h2 #node-table-title { "Nodes " span.count { "(" (rows.len()) ")" } }
            @if rows.is_empty() {
                p.muted { "No node has started yet." }
            } @else {
                table {
                    thead {
                        tr {
                            th scope="col" { "Node" }
                            th scope="col" { "Name" }
                            th scope="col" { "Runs" }
                            th scope="col" { "Phase" }
                            th scope="col" { "Started" }
                            th scope="col" { "Duration" }
                            th scope="col" { "Attempts" }
                            th scope="col" { "Cache" }
                        }
                    }
                    tbody {
                        @for node in rows {
                            @let id = node_id(node);
                            @let closure = node.closure.clone().unwrap_or_default();
                            @let phase = format::node_phase(closure.phase);
                            @let info = infos.get(id);
                            @let is_selected = selected == Some(id);
                            tr data-node-id=(id) data-phase=(phase)
                                class=[is_selected.then_some("selected")] {
                                th scope="row" {
                                    a.node-link href=(urls::node(&view.id, id))
                                        data-node=(id)
                                        aria-current=[is_selected.then_some("true")] { (id) }
                                }
                                td { (info.map_or(id, |i| i.name.as_str())) }
                                td.runs { (info.map_or("", |i| i.runs.as_str())) }
                                td { (format::phase_badge(phase)) }
                                td { (format::time(closure.started_at.as_ref())) }
                                td { (format::duration(closure.duration.as_ref())) }
                                td.attempts {
                                    @match view.attempts.get(id) {
                                        Some(n) => (n),
                                        None => span.none { "—" },
                                    }
                                }
                                td { (cache_badge(node)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The node's cache status (`hit`, `populated`, `disabled`...), `—` for nodes without one.
pub fn cache_badge(node: &NodeExecution) -> Markup {
    match cache_status(node) {
        Some(status) => html! { span.cache data-cache=(status) { (status) } },
        None => html! { span.none { "—" } },
    }
}

pub fn cache_status(node: &NodeExecution) -> Option<&'static str> {
    let closure = node.closure.as_ref()?;
    match &closure.target_metadata {
        Some(TargetMetadata::TaskNodeMetadata(task)) => Some(cache_name(task.cache_status)),
        _ => None,
    }
}

/// `CACHE_HIT` → `hit`.
pub fn cache_name(status: i32) -> &'static str {
    match CatalogCacheStatus::try_from(status).unwrap_or(CatalogCacheStatus::CacheDisabled) {
        CatalogCacheStatus::CacheDisabled => "disabled",
        CatalogCacheStatus::CacheMiss => "miss",
        CatalogCacheStatus::CacheHit => "hit",
        CatalogCacheStatus::CachePopulated => "populated",
        CatalogCacheStatus::CacheLookupFailure => "lookup failed",
        CatalogCacheStatus::CachePutFailure => "put failed",
        CatalogCacheStatus::CacheSkipped => "skipped",
        CatalogCacheStatus::CacheEvicted => "evicted",
    }
}
