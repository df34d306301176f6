//! The projects page and a project's dashboard: its domains, recent executions, and the
//! workflows, tasks and launch plans registered in the chosen domain.

use alula_idl::flyteidl::admin::ProjectListRequest;
use alula_idl::flyteidl::core::ResourceType;
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use axum::extract::{Path, RawQuery};
use axum::http::Uri;
use axum::routing::get;
use axum::Router;
use maud::html;

use super::entities;
use super::executions;
use super::scope::{project_name, Params, Scope};
use crate::error::{ConsoleError, ConsoleResult};
use crate::shell::{self, Crumb, Page};
use crate::{urls, Api, State};

/// Rows of each section of the dashboard; each links to the whole list.
const DASHBOARD_ROWS: u32 = 10;

pub(crate) fn routes() -> Router<State> {
    Router::new()
        .route("/console", get(projects))
        .route("/console/select-project", get(projects))
        .route("/console/projects", get(projects))
        .route("/console/projects/{project}", get(dashboard_by_query))
        .route(
            "/console/projects/{project}/dashboard",
            get(dashboard_by_query),
        )
        .route(
            "/console/projects/{project}/domains/{domain}",
            get(dashboard_by_path),
        )
}

async fn projects(api: Api) -> ConsoleResult<Page> {
    // limit 0 is "all" for ListProjects; a deployment has tens of projects, not thousands.
    let projects =
        AdminService::list_projects(&api.admin, api.request(ProjectListRequest::default()))
            .await?
            .into_inner()
            .projects;
    let body = html! {
        h1 { "Projects" }
        @if projects.is_empty() {
            p.none { "No projects are registered." }
        } @else {
            table.projects {
                thead {
                    tr {
                        th scope="col" { "Project" }
                        th scope="col" { "Description" }
                        th scope="col" { "Domains" }
                    }
                }
                tbody {
                    @for p in &projects {
                        tr data-project=(p.id) {
                            td {
                                @if let Some(first) = p.domains.first() {
                                    a href=(urls::project(&p.id, &first.id)) { (project_name(p)) }
                                } @else {
                                    (project_name(p))
                                }
                                @if !p.name.is_empty() && p.name != p.id {
                                    " " span.muted.mono { (p.id) }
                                }
                            }
                            td { (p.description) }
                            td {
                                ul.inline {
                                    @for d in &p.domains {
                                        li { a href=(urls::project(&p.id, &d.id)) data-domain=(d.id) { (d.name) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(shell::page("Projects", &[Crumb::here("Projects")], body))
}

async fn dashboard_by_query(
    api: Api,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
    uri: Uri,
) -> ConsoleResult<Page> {
    let params = Params::parse(query.as_deref());
    let scope = Scope::load(&api, &project, params.get("domain")).await?;
    dashboard(&api, &scope, &uri).await
}

async fn dashboard_by_path(
    api: Api,
    Path((project, domain)): Path<(String, String)>,
    uri: Uri,
) -> ConsoleResult<Page> {
    let scope = Scope::load(&api, &project, Some(&domain)).await?;
    dashboard(&api, &scope, &uri).await
}

async fn dashboard(api: &Api, scope: &Scope, uri: &Uri) -> ConsoleResult<Page> {
    let (project, domain) = (scope.id(), scope.domain.as_str());
    // The four sections are independent reads: ask for them together, not one after another.
    let section =
        |kind: ResourceType| entities::list(api, kind, project, domain, "", DASHBOARD_ROWS, 0);
    let (recent, workflows, tasks, launch_plans) = tokio::try_join!(
        async {
            let recent = executions::list(
                api,
                project,
                domain,
                "",
                executions::newest_first(),
                DASHBOARD_ROWS,
                0,
            );
            Ok::<_, ConsoleError>(recent.await?)
        },
        section(ResourceType::Workflow),
        section(ResourceType::Task),
        section(ResourceType::LaunchPlan),
    )?;
    let live_url = uri.path_and_query().map_or_else(
        || urls::project(project, domain),
        |pq| pq.as_str().to_string(),
    );
    let sections = [
        (ResourceType::Workflow, "Workflows", workflows),
        (ResourceType::Task, "Tasks", tasks),
        (ResourceType::LaunchPlan, "Launch plans", launch_plans),
    ];
    let body = html! {
        h1 { (scope.name()) }
        @if !scope.project.description.is_empty() {
            p.description { (scope.project.description) }
        }
        (scope.domain_switcher(|d| urls::project(project, d)))
        section.recent aria-labelledby="recent-title" {
            h2 #recent-title { "Recent executions" }
            (executions::table("recent-executions", &live_url, &recent.executions))
            p { a href=(urls::executions(project, domain)) { "All executions" } }
        }
        @for (kind, title, listed) in &sections {
            @let heading = format!("{}-title", urls::kind_segment(*kind));
            section.entities data-kind=(urls::kind_segment(*kind)) aria-labelledby=(heading) {
                h2 id=(heading) { (title) }
                (entities::table(*kind, &listed.rows, scope.can_launch))
                @if listed.more || !listed.rows.is_empty() {
                    p { a href=(urls::entities(*kind, project, domain)) { "All " (title.to_lowercase()) } }
                }
            }
        }
    };
    let crumbs = [
        Crumb::link("Projects", urls::projects()),
        Crumb::here(format!("{} ({domain})", scope.name())),
    ];
    Ok(shell::page(scope.name(), &crumbs, body))
}
