//! The workflows, tasks and launch plans of a project and domain: the list pages, and what the
//! dashboard and the entity pages share (each name's latest version, launch plans' active
//! version and schedule). One entity with its versions is [`super::entity`].

use alula_idl::flyteidl::admin::{
    schedule::ScheduleExpression, ActiveLaunchPlanRequest, FixedRateUnit, LaunchPlan,
    LaunchPlanState, NamedEntity, NamedEntityIdentifier, NamedEntityListRequest,
    ResourceListRequest,
};
use alula_idl::flyteidl::core::{Identifier, ResourceType};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_idl::wkt::Timestamp;
use axum::extract::{Path, RawQuery};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use tonic::Code;

use super::entity;
use super::executions::{self, query};
use super::scope::{token, Params, Scope};
use crate::error::ConsoleResult;
use crate::format;
use crate::shell::{self, Crumb, Page};
use crate::{urls, Api, State};

/// Names per page of a list.
const PAGE_SIZE: u32 = 50;

/// `NamedEntityState` ACTIVE (not archived, not system generated).
const ACTIVE_ONLY: &str = "eq(state,0)";

const KINDS: [ResourceType; 3] = [
    ResourceType::Workflow,
    ResourceType::Task,
    ResourceType::LaunchPlan,
];

pub(crate) fn routes() -> Router<State> {
    let mut router = Router::new();
    for kind in KINDS {
        let segment = urls::kind_segment(kind);
        router = router
            .route(
                &format!("/console/projects/{{project}}/{segment}"),
                get(
                    move |api: Api, Path(project): Path<String>, q: RawQuery| async move {
                        let params = Params::parse(q.0.as_deref());
                        let scope = Scope::load(&api, &project, params.get("domain")).await?;
                        list_page(&api, &scope, kind, &params).await
                    },
                ),
            )
            .route(
                &format!("/console/projects/{{project}}/domains/{{domain}}/{segment}"),
                get(
                    move |api: Api,
                          Path((project, domain)): Path<(String, String)>,
                          q: RawQuery| async move {
                        let params = Params::parse(q.0.as_deref());
                        let scope = Scope::load(&api, &project, Some(&domain)).await?;
                        list_page(&api, &scope, kind, &params).await
                    },
                ),
            )
            .route(
                &format!("/console/projects/{{project}}/{segment}/{{name}}"),
                get(
                    move |api: Api,
                          Path((project, name)): Path<(String, String)>,
                          q: RawQuery| async move {
                        let params = Params::parse(q.0.as_deref());
                        let scope = Scope::load(&api, &project, params.get("domain")).await?;
                        entity::page(&api, &scope, kind, &name, None, &params).await
                    },
                ),
            )
            .route(
                &format!("/console/projects/{{project}}/domains/{{domain}}/{segment}/{{name}}"),
                get(
                    move |api: Api,
                          Path((project, domain, name)): Path<(String, String, String)>,
                          q: RawQuery| async move {
                        let params = Params::parse(q.0.as_deref());
                        let scope = Scope::load(&api, &project, Some(&domain)).await?;
                        entity::page(&api, &scope, kind, &name, None, &params).await
                    },
                ),
            )
            .route(
                &format!(
                    "/console/projects/{{project}}/domains/{{domain}}/{segment}/{{name}}/version/{{version}}"
                ),
                get(
                    move |api: Api,
                          Path((project, domain, name, version)): Path<(
                        String,
                        String,
                        String,
                        String,
                    )>,
                          q: RawQuery| async move {
                        let params = Params::parse(q.0.as_deref());
                        let scope = Scope::load(&api, &project, Some(&domain)).await?;
                        entity::page(&api, &scope, kind, &name, Some(&version), &params).await
                    },
                ),
            );
    }
    router
}

/// A registered name and what the lists show about it.
pub(crate) struct Row {
    pub name: String,
    pub description: String,
    /// The most recently registered version.
    pub latest: Option<Version>,
    /// Launch plans only: the active version, if any.
    pub active: Option<LaunchPlan>,
}

/// One page of names.
pub(crate) struct Listed {
    pub rows: Vec<Row>,
    pub more: bool,
}

/// One registered version of an entity.
pub(crate) struct Version {
    pub id: Identifier,
    pub created_at: Option<Timestamp>,
    /// Launch plans only: `LaunchPlanState`.
    pub state: Option<i32>,
}

fn named(project: &str, domain: &str, name: &str) -> NamedEntityIdentifier {
    NamedEntityIdentifier {
        project: project.to_string(),
        domain: domain.to_string(),
        name: name.to_string(),
        org: String::new(),
    }
}

/// Names of `kind` (ListNamedEntities) with each one's latest version and, for launch plans,
/// the active one. A page holds at most [`PAGE_SIZE`] names, so the per-name reads are bounded.
pub(crate) async fn list(
    api: &Api,
    kind: ResourceType,
    project: &str,
    domain: &str,
    filters: &str,
    limit: u32,
    offset: u64,
) -> ConsoleResult<Listed> {
    // Archived and system-generated names stay reachable by URL but out of the lists, as in
    // Flyte's console.
    let filters = if filters.is_empty() {
        ACTIVE_ONLY.to_string()
    } else {
        format!("{ACTIVE_ONLY}+{filters}")
    };
    let mut entities = AdminService::list_named_entities(
        &api.admin,
        api.request(NamedEntityListRequest {
            resource_type: kind as i32,
            project: project.to_string(),
            domain: domain.to_string(),
            limit: limit + 1,
            token: token(offset),
            sort_by: None,
            filters,
            org: String::new(),
        }),
    )
    .await?
    .into_inner()
    .entities;
    let more = entities.len() > limit as usize;
    entities.truncate(limit as usize);
    // The per-name reads are independent: run them together (as the execution page's attempt
    // counts do) and put the rows back in admin's order.
    let mut reads = tokio::task::JoinSet::new();
    for (at, e) in entities.into_iter().enumerate() {
        let (api, project, domain) = (api.clone(), project.to_string(), domain.to_string());
        reads.spawn(async move {
            let row = row(&api, kind, &project, &domain, e).await;
            (at, row)
        });
    }
    let mut rows: Vec<(usize, Row)> = Vec::with_capacity(reads.len());
    while let Some(done) = reads.join_next().await {
        let (at, row) = done.map_err(|e| tonic::Status::internal(format!("listing names: {e}")))?;
        rows.push((at, row?));
    }
    rows.sort_by_key(|(at, _)| *at);
    Ok(Listed {
        rows: rows.into_iter().map(|(_, row)| row).collect(),
        more,
    })
}

/// A listed name with its latest version and, for launch plans, the active one.
async fn row(
    api: &Api,
    kind: ResourceType,
    project: &str,
    domain: &str,
    e: NamedEntity,
) -> ConsoleResult<Row> {
    let name = e.id.map(|id| id.name).unwrap_or_default();
    let latest = versions(api, kind, project, domain, &name, 1, 0)
        .await?
        .0
        .into_iter()
        .next();
    let active = match kind {
        ResourceType::LaunchPlan => active_launch_plan(api, project, domain, &name).await?,
        _ => None,
    };
    Ok(Row {
        description: e.metadata.map(|m| m.description).unwrap_or_default(),
        name,
        latest,
        active,
    })
}

/// The versions of one name, newest first: `limit` from `offset`, and whether more follow.
pub(crate) async fn versions(
    api: &Api,
    kind: ResourceType,
    project: &str,
    domain: &str,
    name: &str,
    limit: u32,
    offset: u64,
) -> Result<(Vec<Version>, bool), tonic::Status> {
    versions_matching(api, kind, project, domain, name, "", limit, offset).await
}

/// Like [`versions`], with admin filters; an empty `name` lists every name's versions.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn versions_matching(
    api: &Api,
    kind: ResourceType,
    project: &str,
    domain: &str,
    name: &str,
    filters: &str,
    limit: u32,
    offset: u64,
) -> Result<(Vec<Version>, bool), tonic::Status> {
    let request = ResourceListRequest {
        id: Some(named(project, domain, name)),
        limit: limit + 1,
        token: token(offset),
        filters: filters.to_string(),
        sort_by: Some(executions::newest_first()),
    };
    let mut found: Vec<Version> = match kind {
        ResourceType::Task => AdminService::list_tasks(&api.admin, api.request(request))
            .await?
            .into_inner()
            .tasks
            .into_iter()
            .map(|t| Version {
                id: t.id.unwrap_or_default(),
                created_at: t.closure.and_then(|c| c.created_at),
                state: None,
            })
            .collect(),
        ResourceType::LaunchPlan => {
            AdminService::list_launch_plans(&api.admin, api.request(request))
                .await?
                .into_inner()
                .launch_plans
                .into_iter()
                .map(|lp| Version {
                    id: lp.id.unwrap_or_default(),
                    state: lp.closure.as_ref().map(|c| c.state),
                    created_at: lp.closure.and_then(|c| c.created_at),
                })
                .collect()
        }
        _ => AdminService::list_workflows(&api.admin, api.request(request))
            .await?
            .into_inner()
            .workflows
            .into_iter()
            .map(|w| Version {
                id: w.id.unwrap_or_default(),
                created_at: w.closure.and_then(|c| c.created_at),
                state: None,
            })
            .collect(),
    };
    let more = found.len() > limit as usize;
    found.truncate(limit as usize);
    Ok((found, more))
}

/// The active version of a launch plan; `None` when no version is active.
pub(crate) async fn active_launch_plan(
    api: &Api,
    project: &str,
    domain: &str,
    name: &str,
) -> ConsoleResult<Option<LaunchPlan>> {
    let answer = AdminService::get_active_launch_plan(
        &api.admin,
        api.request(ActiveLaunchPlanRequest {
            id: Some(named(project, domain, name)),
        }),
    )
    .await;
    match answer {
        Ok(lp) => Ok(Some(lp.into_inner())),
        Err(status) if status.code() == Code::NotFound => Ok(None),
        Err(status) => Err(status.into()),
    }
}

/// A launch plan's schedule in words: `cron 0 * * * *`, `every 5 minutes`; `None` unscheduled.
pub(crate) fn schedule_text(lp: &LaunchPlan) -> Option<String> {
    let schedule = lp
        .spec
        .as_ref()?
        .entity_metadata
        .as_ref()?
        .schedule
        .as_ref()?;
    #[allow(deprecated, reason = "flytekit still registers plain cron expressions")]
    let text = match schedule.schedule_expression.as_ref()? {
        ScheduleExpression::CronExpression(cron) => format!("cron {cron}"),
        ScheduleExpression::CronSchedule(cron) if cron.offset.is_empty() => {
            format!("cron {}", cron.schedule)
        }
        ScheduleExpression::CronSchedule(cron) => {
            format!("cron {} (offset {})", cron.schedule, cron.offset)
        }
        ScheduleExpression::Rate(rate) => {
            let unit = match FixedRateUnit::try_from(rate.unit) {
                Ok(FixedRateUnit::Hour) => "hour",
                Ok(FixedRateUnit::Day) => "day",
                _ => "minute",
            };
            let plural = if rate.value == 1 { "" } else { "s" };
            format!("every {} {unit}{plural}", rate.value)
        }
    };
    Some(text)
}

/// `ACTIVE` / `INACTIVE` as a badge (text, not only colour).
pub(crate) fn state_badge(state: i32) -> Markup {
    let name = LaunchPlanState::try_from(state)
        .unwrap_or(LaunchPlanState::Inactive)
        .as_str_name();
    html! { span.lp-state data-state=(name) { (format::phase_label(name)) } }
}

/// The table of names the dashboard and the list pages show.
/// The rows of a list; launch plans get a launch link when `can_launch`.
pub(crate) fn table(kind: ResourceType, rows: &[Row], can_launch: bool) -> Markup {
    let is_lp = kind == ResourceType::LaunchPlan;
    html! {
        @if rows.is_empty() {
            p.none { "None registered." }
        } @else {
            table.entities {
                thead {
                    tr {
                        th scope="col" { "Name" }
                        th scope="col" { "Description" }
                        th scope="col" { "Latest version" }
                        th scope="col" { "Registered" }
                        @if is_lp {
                            th scope="col" { "Active version" }
                            th scope="col" { "Schedule" }
                            th scope="col" { span.visually-hidden { "Launch" } }
                        }
                    }
                }
                tbody {
                    @for row in rows {
                        @let latest = row.latest.as_ref();
                        tr data-entity=(row.name) {
                            td {
                                @if let Some(v) = latest {
                                    a href=(urls::entity(&Identifier { version: String::new(), ..v.id.clone() })) { (row.name) }
                                } @else {
                                    (row.name)
                                }
                            }
                            td { (row.description) }
                            td.mono { @if let Some(v) = latest { (v.id.version) } }
                            td { (format::time(latest.and_then(|v| v.created_at.as_ref()))) }
                            @if is_lp {
                                td {
                                    @if let Some(active) = &row.active {
                                        @let id = active.id.clone().unwrap_or_default();
                                        (state_badge(LaunchPlanState::Active as i32)) " "
                                        a.mono href=(urls::entity(&id)) { (id.version) }
                                    } @else {
                                        span.none { "none" }
                                    }
                                }
                                td {
                                    @match row.active.as_ref().and_then(schedule_text) {
                                        Some(text) => span.schedule { (text) },
                                        None => span.none { "—" },
                                    }
                                }
                                td {
                                    @if let (Some(v), true) = (latest, can_launch) {
                                        a.button data-action="launch" href=(urls::launch(&Identifier { version: String::new(), ..v.id.clone() })) { "Launch" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The kind's name in headings.
pub(crate) fn title(kind: ResourceType) -> &'static str {
    match kind {
        ResourceType::Task => "Tasks",
        ResourceType::LaunchPlan => "Launch plans",
        _ => "Workflows",
    }
}

async fn list_page(
    api: &Api,
    scope: &Scope,
    kind: ResourceType,
    params: &Params,
) -> ConsoleResult<Page> {
    let search = params.get("name").unwrap_or_default();
    let filters = if search.is_empty() {
        String::new()
    } else {
        format!("contains(name,{search})")
    };
    let offset = params.offset("token");
    let (project, domain) = (scope.id(), scope.domain.as_str());
    let listed = list(api, kind, project, domain, &filters, PAGE_SIZE, offset).await;
    let (listed, notice) = match listed {
        Ok(listed) => (listed, None),
        Err(crate::ConsoleError::Api(status)) if status.code() == Code::InvalidArgument => (
            Listed {
                rows: Vec::new(),
                more: false,
            },
            Some(status.message().to_string()),
        ),
        Err(e) => return Err(e),
    };
    let base = urls::entities(kind, project, domain);
    let page_link = |to: u64| {
        let mut pairs = Vec::new();
        if !search.is_empty() {
            pairs.push(("name", search.to_string()));
        }
        if to > 0 {
            pairs.push(("token", to.to_string()));
        }
        format!("{base}{}", query(&pairs))
    };
    let body = html! {
        h1 { (title(kind)) }
        (scope.domain_switcher(|d| urls::entities(kind, project, d)))
        form.filters method="get" action=(base) role="search" {
            div.toolbar {
                div.field {
                    label for="f-name" { "Name contains" }
                    input #f-name name="name" type="search" value=(search);
                }
                div.field.actions { button.primary type="submit" { "Search" } }
            }
        }
        @if let Some(message) = &notice {
            p.notice.error role="alert" { "The search was refused: " (message) }
        }
        section.entities data-kind=(urls::kind_segment(kind)) {
            (table(kind, &listed.rows, scope.can_launch))
        }
        nav.pager aria-label="Pages" {
            @if offset > 0 {
                a rel="prev" href=(page_link(offset.saturating_sub(u64::from(PAGE_SIZE)))) { "← Previous" }
            }
            @if listed.more {
                a rel="next" href=(page_link(offset + u64::from(PAGE_SIZE))) { "Next →" }
            }
        }
    };
    let mut crumbs = scope.crumbs();
    crumbs.push(Crumb::here(title(kind)));
    Ok(shell::page(
        &format!("{} · {}", title(kind), scope.name()),
        &crumbs,
        body,
    ))
}

/// Used by the entity page to list a workflow's launch plans.
pub(crate) fn launch_plans_of_workflow(workflow: &str) -> String {
    format!("eq(workflow.name,{workflow})")
}
