//! Task attempt logs over HTTP: `GET /api/v1/logs/<project>/<domain>/<execution>/<node id>/
//! <retry attempt>/<stream>[?index=<array index>]`, where `<stream>` is `stdout`, `stderr` or
//! `output` (one combined log: a pod's, as Kubernetes keeps it; it also answers for either
//! stream of an attempt that has no separate ones). The links task events carry ([`log_url`])
//! point here.
//!
//! Propeller stores what an attempt printed under its output prefix
//! (`metadata/.../<retry>/logs/<stream>.txt`, [`log_key`]), whatever ran it, so logs outlive the
//! machine and the pod; the route streams that object. An attempt whose logs are not stored yet
//! (a pod still running) is read from where it runs, through a [`LiveLogs`] source the server
//! wires in (the pod plugin: admin itself knows nothing of Kubernetes).
//!
//! Every id component is checked as the RPCs check it (`validate`), the object is read only as
//! a data object (never through a link, `objects`), and the body is streamed, never held whole.
//! Logs are served as `text/plain` with `nosniff`: what a task prints must never run as a page
//! of this origin.
//!
//! Following a running attempt is incremental: `?offset=<n>` answers only the bytes after the
//! first `n` (nothing when there are no more), and [`LOG_LENGTH_HEADER`] says how long the
//! stored log was when read, so a page polling every few seconds moves only what is new.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, Extensions, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;

use crate::authz::{Gate, Permission};
use crate::config::AdminConfig;
use crate::error::{AdminError, AdminResult};
use crate::objects::{check_key, KeyError};
use crate::validate;
pub use alula_plane::logs::{
    log_key, log_url, skip, AttemptLogId, FirstLiveLogs, LiveLogs, LogStream,
};

/// The streams an attempt's logs come in (`output`: both in one).
pub const STREAMS: [&str; 3] = ["stdout", "stderr", "output"];
const COMBINED: &str = "output";
/// The size in bytes of the whole stored log an answer was read from (absent for live sources,
/// whose size is not known before they are read).
pub const LOG_LENGTH_HEADER: &str = "x-log-length";

/// Refuses what no id of ours holds, as the RPCs do, so nothing odd reaches a key or a pod
/// name.
pub fn validate_id(id: &AttemptLogId) -> AdminResult<()> {
    validate::project(&id.project, "project")?;
    validate::domain(&id.domain, "domain")?;
    validate::execution_name(&id.name, "execution name")?;
    validate::name(&id.node_id, "node id")
}

struct Logs {
    config: Arc<AdminConfig>,
    live: Option<Arc<dyn LiveLogs>>,
    /// Who may read: View on the project and domain in the path. `None`: everyone
    /// (authentication off).
    gate: Option<Gate>,
}

/// `GET /api/v1/logs/...` (see the module docs), for everyone: authentication off.
pub fn router(config: Arc<AdminConfig>, live: Option<Arc<dyn LiveLogs>>) -> Router {
    logs_router(Logs {
        config,
        live,
        gate: None,
    })
}

/// `GET /api/v1/logs/...` for callers `gate` lets view the project and domain of the path.
pub fn gated_router(
    config: Arc<AdminConfig>,
    live: Option<Arc<dyn LiveLogs>>,
    gate: Gate,
) -> Router {
    logs_router(Logs {
        config,
        live,
        gate: Some(gate),
    })
}

fn logs_router(logs: Logs) -> Router {
    Router::new()
        .route(
            "/api/v1/logs/{project}/{domain}/{name}/{node_id}/{retry}/{stream}",
            get(serve),
        )
        .with_state(Arc::new(logs))
}

/// A task's logs are the project's data: reading them needs View, as GetExecutionData does.
async fn refusal(
    gate: &Gate,
    extensions: &Extensions,
    project: &str,
    domain: &str,
) -> Option<Response> {
    let caller = gate.caller_in(extensions);
    let role = gate.role(&caller, Some(project), Some(domain)).await;
    if role.is_some_and(|r| r.grants(Permission::View)) {
        return None;
    }
    if caller.principal().is_none() {
        let mut response = refuse(
            StatusCode::UNAUTHORIZED,
            "reading logs needs credentials: send a bearer token",
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return Some(response);
    }
    Some(refuse(
        StatusCode::FORBIDDEN,
        format!(
            "permission denied: reading logs needs the viewer role on project {project:?}, \
             domain {domain:?}; {} has {}",
            crate::authz::who(&caller),
            role.map_or("no role there", |r| r.as_str())
        ),
    ))
}

#[derive(Deserialize)]
struct Element {
    index: Option<u32>,
    /// Bytes of the log the caller has already (see the module docs).
    #[serde(default)]
    offset: u64,
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, message.into()).into_response()
}

fn failed(e: AdminError) -> Response {
    let message = e.to_string();
    let status = match tonic::Status::from(e).code() {
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    refuse(status, message)
}

async fn serve(
    State(logs): State<Arc<Logs>>,
    UrlPath((project, domain, name, node_id, retry, stream)): UrlPath<(
        String,
        String,
        String,
        String,
        String,
        String,
    )>,
    extensions: Extensions,
    query: Result<Query<Element>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Some(gate) = &logs.gate {
        if let Some(refused) = refusal(gate, &extensions, &project, &domain).await {
            return refused;
        }
    }
    let Ok(Query(element)) = query else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "index and offset must be non-negative numbers",
        );
    };
    let Ok(retry_attempt) = retry.parse::<u32>() else {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "retry attempt {} is not a number",
                crate::error::quote(&retry)
            ),
        );
    };
    if !STREAMS.contains(&stream.as_str()) {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "log stream {} is not one of {}",
                crate::error::quote(&stream),
                STREAMS.join(", ")
            ),
        );
    }
    let id = AttemptLogId {
        project,
        domain,
        name,
        node_id,
        retry_attempt,
        array_index: element.index,
    };
    if let Err(e) = validate_id(&id) {
        return failed(e);
    }
    for candidate in [stream.as_str(), COMBINED] {
        match stored(&logs.config, &id, candidate, element.offset).await {
            Ok(Some((size, body))) => return text(body, Some(size)),
            Ok(None) => {}
            Err(e) => return failed(e),
        }
    }
    if let Some(live) = &logs.live {
        match live.logs_from(&id, &stream, element.offset).await {
            Ok(Some(body)) => return text(body, None),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, node = %id.node_id, "live logs unavailable");
                return refuse(StatusCode::BAD_GATEWAY, e);
            }
        }
    }
    refuse(
        StatusCode::NOT_FOUND,
        format!(
            "no {stream} log for attempt {} of node {} of execution {}",
            id.retry_attempt, id.node_id, id.name
        ),
    )
}

/// The stored log from `offset` on, streamed, and the whole log's size.
async fn stored(
    config: &AdminConfig,
    id: &AttemptLogId,
    stream: &str,
    offset: u64,
) -> AdminResult<Option<(u64, LogStream)>> {
    let key = log_key(id, stream);
    match check_key(&config.storage, &key) {
        Ok(()) => {}
        Err(KeyError::Link(e @ alula_storage::StorageError::InvalidKey { .. })) => {
            return Err(AdminError::invalid(format!("log {key} is refused: {e}")))
        }
        Err(KeyError::Link(e)) => return Err(AdminError::Internal(e.to_string())),
        // Validated ids always make a plain key under `metadata/`.
        Err(KeyError::NotPlain | KeyError::NotData) => {
            return Err(AdminError::invalid(format!("{key} is not a log object")))
        }
    }
    let Some((size, body)) = config
        .storage
        .get_stream_from(&key, offset)
        .await
        .map_err(|e| AdminError::Internal(e.to_string()))?
    else {
        return Ok(None);
    };
    Ok(Some((size, body.map_err(std::io::Error::other).boxed())))
}

/// A live log without its first `offset` bytes (see [`LiveLogs::logs_from`]).
fn text(body: LogStream, size: Option<u64>) -> Response {
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    if let Some(size) = size {
        headers.insert(LOG_LENGTH_HEADER, HeaderValue::from(size));
    }
    // A log read while it grows must not be answered from a cache.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
