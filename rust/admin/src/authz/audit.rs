//! The audit log of mutating calls: the gate writes an entry for every call whose table entry
//! is Launch, Register or Administer, allowed or refused ([`super::Gate::finish`]), and
//! `GET /api/v1/audit?project=P&limit=N[&before=ID]` reads them back, newest first, for a
//! project's admins (without `project`: every project's, for admins of all projects).

use axum::extract::{Query, State};
use axum::http::{header, Extensions, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tonic::Code;

use super::{Gate, Permission};
use crate::rest::error_response;

/// The most entries one answer holds.
pub const MAX_LIMIT: u32 = 1000;
const DEFAULT_LIMIT: u32 = 100;

#[derive(Deserialize)]
struct AuditQuery {
    project: Option<String>,
    limit: Option<u32>,
    /// Entries older than this id (the last id of the previous page).
    before: Option<i64>,
}

/// `GET /api/v1/audit`.
pub fn router(gate: Gate) -> Router {
    Router::new()
        .route("/api/v1/audit", get(entries))
        .with_state(gate)
}

async fn entries(
    State(gate): State<Gate>,
    extensions: Extensions,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return error_response(
            StatusCode::BAD_REQUEST,
            Code::InvalidArgument,
            "project must be text, limit and before numbers".to_string(),
        );
    };
    let caller = gate.caller_in(&extensions);
    let project = query.project.as_deref().filter(|p| !p.is_empty());
    if caller.principal().is_none() && gate.auth().enabled() {
        return unauthenticated();
    }
    let role = gate.role(&caller, project, None).await;
    if !role.is_some_and(|r| r.grants(Permission::Administer)) {
        let place = project.map_or("all projects".to_string(), |p| format!("project {p:?}"));
        return error_response(
            StatusCode::FORBIDDEN,
            Code::PermissionDenied,
            format!(
                "permission denied: reading the audit log needs the admin role on {place}; {} has {}",
                super::who(&caller),
                role.map_or("no role there", |r| r.as_str())
            ),
        );
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    match gate.store.audit_entries(project, limit, query.before).await {
        Ok(rows) => match serde_json::to_string(&rows) {
            Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
            Err(e) => error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::Internal,
                format!("audit entries cannot be written as JSON: {e}"),
            ),
        },
        Err(e) => {
            tracing::warn!(error = %e, "audit log cannot be read");
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                Code::Unavailable,
                "the audit log cannot be read now".to_string(),
            )
        }
    }
}

/// 401 with `WWW-Authenticate: Bearer`, as every REST route answers a call without valid
/// credentials.
pub(crate) fn unauthenticated() -> Response {
    let mut response = error_response(
        StatusCode::UNAUTHORIZED,
        Code::Unauthenticated,
        "reading the audit log needs credentials: send a bearer token".to_string(),
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}
