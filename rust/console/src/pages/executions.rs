//! The executions of a project and domain: a filterable, sortable, paged table whose phases
//! refresh while anything listed still runs. The table itself is shared with the project
//! dashboard and the entity pages ([`list`], [`table`]).
//!
//! Lists stay fast on large projects: admin is asked for one row more than a page holds, which
//! says whether a next page exists without counting anything.

use alula_idl::flyteidl::admin::NamedEntityIdentifier;
use alula_idl::flyteidl::admin::{sort::Direction, Execution, ResourceListRequest, Sort};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_idl::wkt::Timestamp;
use axum::extract::{Path, RawQuery};
use axum::http::Uri;
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use maud::{html, Markup};
use tonic::Code;

use super::execution_filters::{filter_form, Filters};
use super::scope::{token, Params, Scope};
use crate::error::ConsoleResult;
use crate::format;
use crate::shell::{self, Crumb, Page};
use crate::{urls, Api, State};

/// Rows per page unless the query asks otherwise; and the most it may ask.
const PAGE_SIZE: u32 = 25;
const MAX_PAGE_SIZE: u32 = 100;

pub(crate) fn routes() -> Router<State> {
    Router::new()
        .route("/console/projects/{project}/executions", get(by_query))
        .route(
            "/console/projects/{project}/domains/{domain}/executions",
            get(by_path),
        )
}

async fn by_query(
    api: Api,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
    uri: Uri,
) -> ConsoleResult<Page> {
    let params = Params::parse(query.as_deref());
    let scope = Scope::load(&api, &project, params.get("domain")).await?;
    executions_page(&api, &scope, &params, &uri).await
}

async fn by_path(
    api: Api,
    Path((project, domain)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    uri: Uri,
) -> ConsoleResult<Page> {
    let params = Params::parse(query.as_deref());
    let scope = Scope::load(&api, &project, Some(&domain)).await?;
    executions_page(&api, &scope, &params, &uri).await
}

/// One page of executions.
pub(crate) struct Listed {
    pub executions: Vec<Execution>,
    /// Whether rows exist after this page.
    pub more: bool,
}

/// Executions of `project`/`domain` matching admin's `filters`, `limit` from `offset`.
pub(crate) async fn list(
    api: &Api,
    project: &str,
    domain: &str,
    filters: &str,
    sort_by: Sort,
    limit: u32,
    offset: u64,
) -> Result<Listed, tonic::Status> {
    let mut executions = AdminService::list_executions(
        &api.admin,
        api.request(ResourceListRequest {
            id: Some(NamedEntityIdentifier {
                project: project.to_string(),
                domain: domain.to_string(),
                name: String::new(),
                org: String::new(),
            }),
            limit: limit + 1,
            token: token(offset),
            filters: filters.to_string(),
            sort_by: Some(sort_by),
        }),
    )
    .await?
    .into_inner()
    .executions;
    let more = executions.len() > limit as usize;
    executions.truncate(limit as usize);
    Ok(Listed { executions, more })
}

/// Newest first, admin's default.
pub(crate) fn newest_first() -> Sort {
    Sort {
        key: "created_at".to_string(),
        direction: Direction::Descending as i32,
    }
}

/// The executions table inside `<div id="{id}">`, which refreshes from `live_url` (a URL whose
/// answer holds the same element) while any row has not reached a terminal phase.
pub(crate) fn table(id: &str, live_url: &str, executions: &[Execution]) -> Markup {
    let live = executions
        .iter()
        .any(|e| !format::workflow_phase_is_terminal(phase_of(e)));
    html! {
        div.executions id=(id) data-live=[live.then_some(live_url)] {
            @if executions.is_empty() {
                p.none { "No executions." }
            } @else {
                table.executions {
                    thead {
                        tr {
                            th scope="col" { "Name" }
                            th scope="col" { "Phase" }
                            th scope="col" { "Launch plan / workflow" }
                            th scope="col" { "Launched by" }
                            th scope="col" { "Started" }
                            th scope="col" { "Duration" }
                        }
                    }
                    tbody {
                        @for e in executions { (row(e)) }
                    }
                }
            }
        }
    }
}

fn phase_of(e: &Execution) -> i32 {
    e.closure.as_ref().map_or(0, |c| c.phase)
}

fn row(e: &Execution) -> Markup {
    let id = e.id.clone().unwrap_or_default();
    let phase = format::workflow_phase(phase_of(e));
    let spec = e.spec.as_ref();
    let closure = e.closure.as_ref();
    let launched = spec.and_then(|s| s.launch_plan.as_ref());
    let workflow = closure.and_then(|c| c.workflow_id.as_ref());
    let principal = spec
        .and_then(|s| s.metadata.as_ref())
        .map(|m| m.principal.as_str())
        .unwrap_or_default();
    let started = closure.and_then(|c| c.started_at.as_ref());
    html! {
        tr data-execution=(id.name) data-phase=(phase) {
            td { a.mono href=(urls::execution(&id)) { (id.name) } }
            td { (format::phase_badge(phase)) }
            td.entities {
                @if let Some(lp) = launched {
                    a href=(urls::entity(lp)) { (lp.name) }
                    " " span.version.mono { (lp.version) }
                }
                @if let Some(wf) = workflow.filter(|wf| Some(&wf.name) != launched.map(|l| &l.name)) {
                    br;
                    a href=(urls::entity(wf)) { (wf.name) }
                    " " span.version.mono { (wf.version) }
                }
            }
            td { @if principal.is_empty() { span.none { "—" } } @else { (principal) } }
            td { (format::time(started)) }
            td { (duration(e, started)) }
        }
    }
}

/// The recorded duration once done; while running, the time since it started.
fn duration(e: &Execution, started: Option<&Timestamp>) -> String {
    let closure = e.closure.as_ref();
    if format::workflow_phase_is_terminal(phase_of(e)) {
        return format::duration(closure.and_then(|c| c.duration.as_ref()));
    }
    match started.and_then(format::datetime) {
        Some(at) if at.timestamp() > 0 => (Utc::now() - at)
            .to_std()
            .map_or_else(|_| "—".to_string(), format::duration_text),
        _ => "—".to_string(),
    }
}

/// `?a=1&b=2` from pairs (empty when there are none).
pub(crate) fn query(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let joined: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", urls::escape(v)))
        .collect();
    format!("?{}", joined.join("&"))
}

async fn executions_page(
    api: &Api,
    scope: &Scope,
    params: &Params,
    uri: &Uri,
) -> ConsoleResult<Page> {
    let filters = Filters::from_params(params);
    let limit = params
        .get("limit")
        .and_then(|l| l.parse::<u32>().ok())
        .map_or(PAGE_SIZE, |l| l.clamp(1, MAX_PAGE_SIZE));
    let offset = params.offset("token");
    let listed = list(
        api,
        scope.id(),
        &scope.domain,
        &filters.admin_filters(),
        filters.sort_by(),
        limit,
        offset,
    )
    .await;
    // A filter admin refuses (a bad time, a name with separators) is the reader's to fix: say
    // so above the form instead of failing the page.
    let (listed, notice) = match listed {
        Ok(listed) => (listed, None),
        Err(status) if status.code() == Code::InvalidArgument => (
            Listed {
                executions: Vec::new(),
                more: false,
            },
            Some(status.message().to_string()),
        ),
        Err(status) => return Err(status.into()),
    };
    let base = urls::executions(scope.id(), &scope.domain);
    let page_link = |to: u64| {
        let mut pairs = filters.query_pairs();
        if limit != PAGE_SIZE {
            pairs.push(("limit", limit.to_string()));
        }
        if to > 0 {
            pairs.push(("token", to.to_string()));
        }
        format!("{base}{}", query(&pairs))
    };
    let live_url = uri
        .path_and_query()
        .map_or_else(|| base.clone(), |pq| pq.as_str().to_string());
    let shown = listed.executions.len() as u64;
    let body = html! {
        h1 { "Executions" }
        (scope.domain_switcher(|d| format!("{}{}", urls::executions(scope.id(), d), query(&filters.query_pairs()))))
        (filter_form(&base, &filters))
        @if let Some(message) = &notice {
            p.notice.error role="alert" { "The filters were refused: " (message) }
        }
        (table("executions", &live_url, &listed.executions))
        nav.pager aria-label="Pages" {
            @if offset > 0 {
                a rel="prev" href=(page_link(offset.saturating_sub(u64::from(limit)))) { "← Newer" }
            }
            @if shown > 0 {
                span.muted { "Rows " (offset + 1) "–" (offset + shown) }
            }
            @if listed.more {
                a rel="next" href=(page_link(offset + u64::from(limit))) { "Older →" }
            }
        }
    };
    let mut crumbs = scope.crumbs();
    crumbs.push(Crumb::here("Executions"));
    Ok(shell::page(
        &format!("Executions · {}", scope.name()),
        &crumbs,
        body,
    ))
}
