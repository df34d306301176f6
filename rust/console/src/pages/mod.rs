//! The pages, one module per area; each owns its routes (the URL shapes are listed in the crate
//! documentation).

mod entities;
mod execution;
mod executions;
mod launch;
mod node;
mod projects;

use axum::Router;

use crate::State;

pub fn routes(router: Router<State>) -> Router<State> {
    router
        .merge(projects::routes())
        .merge(entities::routes())
        .merge(executions::routes())
        .merge(execution::routes())
        .merge(node::routes())
        .merge(launch::routes())
}
