//! The stylesheet and script, compiled into the binary (no build step, works offline). Browsers
//! revalidate them on each page load and get `304 Not Modified` while the binary is the same.

use std::hash::{DefaultHasher, Hash, Hasher};

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::State;

/// One stylesheet, concatenated from a part per area of the console.
const CSS: &str = concat!(
    include_str!("../assets/base.css"),
    include_str!("../assets/lists.css"),
    include_str!("../assets/execution.css"),
    include_str!("../assets/graph.css"),
    include_str!("../assets/values.css"),
    include_str!("../assets/launch.css"),
);

/// One script, the same way.
const JS: &str = concat!(
    include_str!("../assets/live.js"),
    include_str!("../assets/actions.js"),
    include_str!("../assets/graph.js"),
    include_str!("../assets/logs.js"),
    include_str!("../assets/launch.js"),
);

pub const STYLESHEET: &str = "/console/assets/console.css";
pub const SCRIPT: &str = "/console/assets/console.js";

pub fn routes() -> Router<State> {
    Router::new()
        .route(
            "/console/assets/console.css",
            get(
                |headers: HeaderMap| async move { asset(&headers, "text/css; charset=utf-8", CSS) },
            ),
        )
        .route(
            "/console/assets/console.js",
            get(|headers: HeaderMap| async move {
                asset(&headers, "text/javascript; charset=utf-8", JS)
            }),
        )
}

fn asset(headers: &HeaderMap, content_type: &'static str, body: &'static str) -> Response {
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    let etag = format!("\"{:016x}\"", hasher.finish());
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|seen| seen.as_bytes() == etag.as_bytes());
    let common = [
        (header::CACHE_CONTROL, "no-cache".to_string()),
        (header::ETAG, etag),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}
