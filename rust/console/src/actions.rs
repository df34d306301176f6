//! (being written) The console's actions: terminate, relaunch, recover, signals.

use axum::Router;

use crate::State;

pub(crate) fn routes() -> Router<State> {
    Router::new()
}
