//! The launch form: a launch plan's inputs as typed fields with their defaults, then
//! `POST /console/actions/launch` (JSON, converted with the declared types and handed to
//! CreateExecution), and the browser lands on the new execution. A workflow's launch page lists
//! its launch plans, the default one (same name) first.

mod action;
mod fields;
#[cfg(test)]
mod tests;

use alula_admin::authz::Permission;
use alula_auth::Role;
use alula_idl::flyteidl::admin::{
    sort, LaunchPlan, NamedEntityIdentifier, ObjectGetRequest, ResourceListRequest, Sort,
};
use alula_idl::flyteidl::core::{Identifier, ResourceType};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use axum::extract::{Path, Query};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;

use crate::error::{ConsoleError, ConsoleResult};
use crate::shell::{self, Crumb, Page};
use crate::{format, urls, Api, State};

/// Versions offered in the form's version picker, newest first.
const VERSIONS_SHOWN: u32 = 50;
/// Launch plans scanned for a workflow's launch page (all versions of all its plans).
const WORKFLOW_PLANS_SCANNED: u32 = 500;

pub(crate) fn routes() -> Router<State> {
    let action = alula_admin::guard::require_api_body(
        Router::new().route("/console/actions/launch", post(action::launch)),
    );
    Router::new()
        .route(
            "/console/projects/{project}/domains/{domain}/launchPlans/{name}/launch",
            get(launch_page),
        )
        .route(
            "/console/projects/{project}/domains/{domain}/workflows/{name}/launch",
            get(workflow_launch_page),
        )
        .merge(action)
}

/// The launch page of a workflow's launch plans.
pub(crate) fn workflow_launch_url(project: &str, domain: &str, workflow: &str) -> String {
    format!(
        "{}/workflows/{}/launch",
        urls::project(project, domain),
        urls::escape(workflow)
    )
}

#[derive(Deserialize)]
struct VersionQuery {
    version: Option<String>,
}

fn launch_plan_id(project: &str, domain: &str, name: &str, version: &str) -> Identifier {
    Identifier {
        resource_type: ResourceType::LaunchPlan as i32,
        project: project.to_string(),
        domain: domain.to_string(),
        name: name.to_string(),
        version: version.to_string(),
        org: String::new(),
    }
}

/// Versions of a launch plan, newest first (at most `limit`).
pub(super) async fn launch_plan_versions(
    api: &Api,
    project: &str,
    domain: &str,
    name: &str,
    limit: u32,
) -> ConsoleResult<Vec<LaunchPlan>> {
    let request = ResourceListRequest {
        id: Some(NamedEntityIdentifier {
            project: project.to_string(),
            domain: domain.to_string(),
            name: name.to_string(),
            org: String::new(),
        }),
        limit,
        sort_by: Some(Sort {
            key: "created_at".into(),
            direction: sort::Direction::Descending as i32,
        }),
        ..Default::default()
    };
    let list = AdminService::list_launch_plans(&api.admin, api.request(request)).await?;
    Ok(list.into_inner().launch_plans)
}

/// The launch plan `version` of `name`, or its newest version when none is given.
pub(super) async fn resolve_launch_plan(api: &Api, id: &Identifier) -> ConsoleResult<LaunchPlan> {
    if !id.version.is_empty() {
        let request = ObjectGetRequest {
            id: Some(id.clone()),
        };
        return Ok(
            AdminService::get_launch_plan(&api.admin, api.request(request))
                .await?
                .into_inner(),
        );
    }
    launch_plan_versions(api, &id.project, &id.domain, &id.name, 1)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            ConsoleError::not_found(format!(
                "launch plan {} is not registered in {}/{}",
                id.name, id.project, id.domain
            ))
        })
}

/// The launch forms are for callers who may launch (the services refuse the others anyway,
/// but a form nobody can submit is no use).
async fn require_launch(api: &Api, project: &str, domain: &str) -> ConsoleResult<()> {
    if api.allows(Permission::Launch, project, domain).await {
        Ok(())
    } else {
        Err(ConsoleError::forbidden(format!(
            "launching in {project}/{domain} needs the {} role or above",
            Role::Runner.as_str()
        )))
    }
}

async fn launch_page(
    api: Api,
    Path((project, domain, name)): Path<(String, String, String)>,
    Query(query): Query<VersionQuery>,
) -> ConsoleResult<Page> {
    require_launch(&api, &project, &domain).await?;
    let version = query.version.unwrap_or_default();
    let wanted = launch_plan_id(&project, &domain, &name, &version);
    let plan = resolve_launch_plan(&api, &wanted).await?;
    let versions = launch_plan_versions(&api, &project, &domain, &name, VERSIONS_SHOWN).await?;
    let id = plan.id.clone().unwrap_or(wanted);
    let crumbs = launch_crumbs(ResourceType::LaunchPlan, "Launch plans", &id);
    let body = html! {
        h1 { "Launch " (name) }
        (version_picker(&id, &versions))
        (fields::launch_form(&id, &plan))
    };
    Ok(shell::page(&format!("Launch {name}"), &crumbs, body))
}

/// {project} / {kind list} / {entity} / Launch, for the launch pages of `entity` (a `kind`).
fn launch_crumbs(kind: ResourceType, kind_label: &str, entity: &Identifier) -> [Crumb; 4] {
    let entity = Identifier {
        resource_type: kind as i32,
        version: String::new(),
        ..entity.clone()
    };
    [
        Crumb::link(
            entity.project.clone(),
            urls::project(&entity.project, &entity.domain),
        ),
        Crumb::link(
            kind_label,
            urls::entities(kind, &entity.project, &entity.domain),
        ),
        Crumb::link(entity.name.clone(), urls::entity(&entity)),
        Crumb::here("Launch"),
    ]
}

/// A GET form choosing the version whose form is shown (works without script).
fn version_picker(id: &Identifier, versions: &[LaunchPlan]) -> Markup {
    let workflow = versions
        .iter()
        .find(|lp| lp.id.as_ref().is_some_and(|v| v.version == id.version))
        .and_then(|lp| lp.spec.as_ref())
        .and_then(|s| s.workflow_id.clone());
    html! {
        form.toolbar.launch-version method="get" action=(urls::launch(&Identifier {
            version: String::new(),
            ..id.clone()
        })) {
            div {
                label for="launch-version" { "Version" }
                " "
                select #launch-version name="version" {
                    @for lp in versions {
                        @if let Some(v) = &lp.id {
                            option value=(v.version) selected[v.version == id.version] {
                                (v.version)
                                @if is_active(lp) { " (active)" }
                            }
                        }
                    }
                }
            }
            button type="submit" { "Show this version" }
            @if let Some(workflow) = &workflow {
                span.muted {
                    "Runs workflow "
                    a href=(urls::entity(workflow)) { (workflow.name) }
                    " " code { (workflow.version) }
                    " · "
                    a href=(workflow_launch_url(&id.project, &id.domain, &workflow.name)) {
                        "its other launch plans"
                    }
                }
            }
        }
    }
}

fn is_active(lp: &LaunchPlan) -> bool {
    use alula_idl::flyteidl::admin::LaunchPlanState;
    lp.closure
        .as_ref()
        .is_some_and(|c| c.state == LaunchPlanState::Active as i32)
}

/// A workflow's launch plans (one row per name, newest version), the one named after the
/// workflow (its default launch plan) first, each linking to its form.
async fn workflow_launch_page(
    api: Api,
    Path((project, domain, workflow)): Path<(String, String, String)>,
) -> ConsoleResult<Page> {
    require_launch(&api, &project, &domain).await?;
    let request = ResourceListRequest {
        id: Some(NamedEntityIdentifier {
            project: project.clone(),
            domain: domain.clone(),
            name: String::new(),
            org: String::new(),
        }),
        limit: WORKFLOW_PLANS_SCANNED,
        filters: format!("eq(workflow.name,{workflow})"),
        sort_by: Some(Sort {
            key: "created_at".into(),
            direction: sort::Direction::Descending as i32,
        }),
        ..Default::default()
    };
    let plans = AdminService::list_launch_plans(&api.admin, api.request(request))
        .await?
        .into_inner()
        .launch_plans;
    let mut newest: Vec<LaunchPlan> = Vec::new();
    for lp in plans {
        let name = lp.id.as_ref().map(|i| i.name.clone()).unwrap_or_default();
        if !newest
            .iter()
            .any(|seen| seen.id.as_ref().is_some_and(|i| i.name == name))
        {
            newest.push(lp);
        }
    }
    // The default launch plan first, then by name.
    newest.sort_by_key(|lp| {
        let name = lp.id.as_ref().map(|i| i.name.clone()).unwrap_or_default();
        (name != workflow, name)
    });
    let crumbs = launch_crumbs(
        ResourceType::Workflow,
        "Workflows",
        &Identifier {
            project: project.clone(),
            domain: domain.clone(),
            name: workflow.clone(),
            ..Default::default()
        },
    );
    let body = html! {
        h1 { "Launch " (workflow) }
        @if newest.is_empty() {
            p.notice {
                "No launch plan runs this workflow yet. Registering it (pyflyte register) creates \
                 its default launch plan."
            }
        } @else {
            p { "Choose the launch plan to launch with:" }
            table.launch-plans {
                thead { tr { th { "Launch plan" } th { "Latest version" } th { "Registered" } th { "" } } }
                tbody {
                    @for lp in &newest {
                        @if let Some(id) = &lp.id {
                            tr data-launch-plan=(id.name) {
                                td {
                                    (id.name)
                                    @if id.name == workflow { " " span.muted { "(default)" } }
                                    @if is_active(lp) { " " span.muted { "(active)" } }
                                }
                                td { code { (id.version) } }
                                td { (format::time(lp.closure.as_ref().and_then(|c| c.created_at.as_ref()))) }
                                td {
                                    a.button.primary href=(urls::launch(&Identifier {
                                        version: String::new(),
                                        ..id.clone()
                                    })) { "Launch form" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(shell::page(&format!("Launch {workflow}"), &crumbs, body))
}
