//! A map node's elements on demand: 100 a page, filterable by phase, each with its attempt
//! and log links. The graph itself only shows counts, so a 100,000-element map stays one box.

use alula_idl::flyteidl::event::ExternalResourceInfo;
use axum::extract::{Path, Query};
use maud::{html, Markup};
use serde::Deserialize;

use super::{fetch, model, svg};
use crate::error::ConsoleResult;
use crate::shell::{self, Crumb, Page};
use crate::{format, urls, Api};

pub const PAGE_SIZE: usize = 100;

#[derive(Deserialize)]
pub(crate) struct ElementsQuery {
    /// A task phase's proto name (`SUCCEEDED`); empty or absent for all.
    phase: Option<String>,
    /// 1-based.
    page: Option<usize>,
}

pub(crate) async fn elements_page(
    api: Api,
    Path((project, domain, name, node_id)): Path<(String, String, String, String)>,
    Query(q): Query<ElementsQuery>,
) -> ConsoleResult<Page> {
    let execution = super::execution(&api, project, domain, name).await?;
    let id = fetch::execution_id(&execution)?;
    let attempts = fetch::task_executions(&api, id, &node_id).await?;
    let counts = model::element_counts(&attempts);
    let latest = attempts
        .iter()
        .max_by_key(|t| t.id.as_ref().map_or(0, |i| i.retry_attempt));
    let resources: &[ExternalResourceInfo] = latest
        .and_then(|t| t.closure.as_ref())
        .and_then(|c| c.metadata.as_ref())
        .map_or(&[], |m| &m.external_resources);
    let phase = q.phase.filter(|p| !p.is_empty());
    let page = q.page.unwrap_or(1).max(1);
    let body = elements_table(
        &svg::elements_url(id, &node_id),
        &counts,
        resources,
        phase.as_deref(),
        page,
    );
    let crumbs = [
        Crumb::link(&id.project, urls::project(&id.project, &id.domain)),
        Crumb::link("Executions", urls::executions(&id.project, &id.domain)),
        Crumb::link(&id.name, urls::execution(id)),
        Crumb::link(&node_id, urls::node(id, &node_id)),
        Crumb::here("Elements"),
    ];
    Ok(shell::page(
        &format!("Elements of {node_id}"),
        &crumbs,
        html! {
            h1 { "Elements of " code { (node_id) } }
            (body)
        },
    ))
}

/// The filter form, the table of one page and the pager.
pub(crate) fn elements_table(
    base: &str,
    counts: &model::ElementCounts,
    resources: &[ExternalResourceInfo],
    phase: Option<&str>,
    page: usize,
) -> Markup {
    let matching: Vec<&ExternalResourceInfo> = resources
        .iter()
        .filter(|r| phase.is_none_or(|p| format::task_phase(r.phase) == p))
        .collect();
    let pages = matching.len().div_ceil(PAGE_SIZE).max(1);
    let page = page.min(pages);
    let shown = matching.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE);
    let link = |p: usize| {
        let mut url = format!("{base}?page={p}");
        if let Some(phase) = phase {
            url.push_str(&format!("&phase={}", urls::escape(phase)));
        }
        url
    };
    html! {
        section #map-elements data-elements=(counts.total) {
            p {
                (counts.total) " elements"
                @for (p, c) in &counts.by_phase {
                    " · " (c) " " (format::phase_badge(p))
                }
            }
            form.toolbar method="get" action=(base) {
                div {
                    label for="element-phase" { "Phase" } " "
                    select #element-phase name="phase" {
                        option value="" selected[phase.is_none()] { "All" }
                        @for (p, _) in &counts.by_phase {
                            option value=(p) selected[phase == Some(p.as_str())] {
                                (format::phase_label(p))
                            }
                        }
                    }
                }
                button type="submit" { "Filter" }
            }
            @if resources.is_empty() && counts.total > 0 {
                p.notice {
                    "This map is too big for per-element records: only the counts above are kept."
                }
            }
            table {
                thead { tr { th { "Index" } th { "Phase" } th { "Attempt" } th { "Logs" } } }
                tbody {
                    @for r in shown {
                        tr data-element=(r.index) data-phase=(format::task_phase(r.phase)) {
                            td { (r.index) }
                            td { (format::phase_badge(format::task_phase(r.phase))) }
                            td { (r.retry_attempt) }
                            td {
                                @for log in &r.logs {
                                    @if is_web_link(&log.uri) {
                                        a href=(log.uri) rel="noopener" { (log.name) } " "
                                    } @else {
                                        span title=(log.uri) { (log.name) } " "
                                    }
                                }
                                @if r.logs.is_empty() { span.none { "—" } }
                            }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages of elements" {
                @if page > 1 { a href=(link(page - 1)) rel="prev" { "‹ Previous" } }
                span { "Page " (page) " of " (pages) " (" (matching.len()) " elements)" }
                @if page < pages { a href=(link(page + 1)) rel="next" { "Next ›" } }
            }
        }
    }
}

/// Only links a browser should follow from a page (never `javascript:` and the like).
fn is_web_link(uri: &str) -> bool {
    uri.starts_with("https://") || uri.starts_with("http://") || uri.starts_with('/')
}
