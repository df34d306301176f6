//! The pages, one module per area; each owns its routes (the URL shapes are listed in the crate
//! documentation).

mod entities;
mod entity;
mod execution;
mod execution_filters;
mod execution_header;
#[cfg(test)]
mod execution_tests;
mod executions;
mod gate;
mod launch;
mod node;
mod node_table;
mod projects;
mod scope;
mod spec;

use alula_idl::flyteidl::core::{Identifier, ResourceType};
use axum::extract::Path;
use axum::response::Redirect;
use axum::routing::get;
use axum::Router;

use crate::{urls, State};

pub fn routes(router: Router<State>) -> Router<State> {
    router
        .merge(projects::routes())
        .merge(entities::routes())
        .merge(executions::routes())
        .merge(execution::routes())
        .merge(node::routes())
        .merge(launch::routes())
        .route(
            "/console/projects/{project}/domains/{domain}/workflow/{name}/version/{version}",
            get(|path| flytekit_entity(ResourceType::Workflow, path)),
        )
        .route(
            "/console/projects/{project}/domains/{domain}/task/{name}/version/{version}",
            get(|path| flytekit_entity(ResourceType::Task, path)),
        )
        .route(
            "/console/projects/{project}/domains/{domain}/launch_plan/{name}/version/{version}",
            get(|path| flytekit_entity(ResourceType::LaunchPlan, path)),
        )
}

/// flytekit's `generate_console_url` names entities in the singular (`.../task/{name}/version/
/// {version}`); the console's own pages use Flyte console's plural shapes.
async fn flytekit_entity(
    kind: ResourceType,
    Path((project, domain, name, version)): Path<(String, String, String, String)>,
) -> Redirect {
    Redirect::permanent(&urls::entity(&Identifier {
        resource_type: kind as i32,
        project,
        domain,
        name,
        version,
        org: String::new(),
    }))
}
