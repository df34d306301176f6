//! (being written)

use axum::Router;

use crate::State;

pub(crate) fn routes() -> Router<State> {
    Router::new()
}
