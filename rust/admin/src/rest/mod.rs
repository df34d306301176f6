//! The REST gateway on the HTTP port: every RPC of Flyte's services (`AdminService`,
//! `DataProxyService`, `SignalService`, `IdentityService`, `AuthMetadataService`) with a
//! `google.api.http` option is served under its template (`/api/v1/...`, `/me`,
//! `/.well-known/oauth-authorization-server`, `/config/v1/flyte_client`), taking and returning
//! proto3 JSON or, when the client says `application/octet-stream` (as FlyteConsole does), binary
//! protobuf; mutating calls must say one or the other ([`crate::guard`]). Path variables and
//! query parameters fill request fields; errors are `{code, message}` with the HTTP status
//! matching the gRPC code (UNAUTHENTICATED: 401 with `WWW-Authenticate: Bearer`). Every call
//! goes through the same gate as gRPC ([`GatedHandlers`]) with the caller the authentication
//! layer put in the HTTP request's extensions.

mod dispatch;
mod routes;

use std::sync::Arc;

use alula_idl::registry;
use alula_idl::wkt::field_descriptor_proto::Label;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, Extensions, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde_json::{Map, Value};
use tonic::Code;

pub use dispatch::{GatedHandlers, Handlers};
use routes::{kind_of, Route, Routes, ValueKind};
pub use routes::{snake_case, RouteError, Service};

use crate::dataproxy::DataProxy;
use crate::guard::BodyEncoding;
use crate::service::AdminApi;

const BINARY: &str = "application/octet-stream";
const JSON: &str = "application/json";
/// Registrations of large workflows are big; the same cap as the gRPC side.
const MAX_BODY_BYTES: usize = 64 << 20;

#[derive(Clone)]
struct Gateway {
    handlers: GatedHandlers,
    routes: Arc<Routes>,
}

/// The router of every REST route with authentication off (every call allowed). Fails only if
/// the embedded descriptors are unusable.
pub fn router(api: AdminApi, data_proxy: DataProxy) -> Result<Router<()>, RouteError> {
    gated_router(
        Handlers {
            admin: api,
            data_proxy,
        }
        .gated(),
    )
}

/// The router of every REST route, each call checked by the handlers' gate.
pub fn gated_router(handlers: GatedHandlers) -> Result<Router<()>, RouteError> {
    let routes = Routes::load()?;
    let mut router = Router::new();
    for path in routes.axum_paths()? {
        router = router.route(&path, any(handle));
    }
    let gateway = Gateway {
        handlers,
        routes: Arc::new(routes),
    };
    Ok(crate::guard::require_api_body(router)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(gateway))
}

/// The HTTP status gRPC-gateway uses for each code (the console answers with it too).
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Cancelled | Code::Unknown | Code::Internal | Code::DataLoss => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// A failed call: `{code, message}` with the matching HTTP status.
struct Failure {
    code: Code,
    message: String,
}

impl Failure {
    fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: Code::InvalidArgument,
            message: message.into(),
        }
    }
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        Self {
            code: status.code(),
            message: status.message().to_string(),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut response = error_response(http_status(self.code), self.code, self.message);
        if self.code == Code::Unauthenticated {
            // RFC 6750: a 401 says which scheme to use.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The gateway's error body, `{code, message}`, with `status`; the HTTP guard answers with it
/// too.
pub(crate) fn error_response(status: StatusCode, code: Code, message: String) -> Response {
    let body = serde_json::json!({ "code": code as i32, "message": message });
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(JSON))],
        body.to_string(),
    )
        .into_response()
}

fn wants(headers: &HeaderMap, name: header::HeaderName, mime: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(mime))
}

async fn handle(
    State(gateway): State<Gateway>,
    method: Method,
    uri: Uri,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Bytes,
) -> Response {
    match serve(
        &gateway,
        &method,
        &uri,
        &query,
        &headers,
        &extensions,
        &body,
    )
    .await
    {
        Ok(response) => response,
        Err(failure) => failure.into_response(),
    }
}

async fn serve(
    gateway: &Gateway,
    method: &Method,
    uri: &Uri,
    query: &[(String, String)],
    headers: &HeaderMap,
    extensions: &Extensions,
    body: &[u8],
) -> Result<Response, Failure> {
    let path = uri.path();
    let Some((route, path_values)) = gateway.routes.find(method, path) else {
        let (code, what) = if gateway.routes.has_path(path) {
            (Code::Unimplemented, "is routed for other HTTP methods only")
        } else {
            (Code::NotFound, "matches no REST route")
        };
        return Err(Failure {
            code,
            message: format!("{method} {path} {what}"),
        });
    };
    let binary_in = BodyEncoding::of(headers) == Some(BodyEncoding::Protobuf);
    let mut request = request_body(&gateway.routes, route, body, binary_in)?;
    if route.body != "*" {
        for (name, value) in query {
            let field: Vec<String> = name.split('.').map(String::from).collect();
            set_field(&gateway.routes, &mut request, &route.input, &field, value)?;
        }
    }
    for (field, value) in &path_values {
        set_field(&gateway.routes, &mut request, &route.input, field, value)?;
    }
    let encoded = registry::from_json(&route.input, &request.to_string())
        .map_err(|e| Failure::invalid(e.to_string()))?;
    let output = gateway
        .handlers
        .call(route.service, &route.rpc, &encoded, extensions)
        .await
        .ok_or_else(|| Failure {
            code: Code::Unimplemented,
            message: format!(
                "{}.{} has no handler in Alula's REST gateway",
                route.service.full_name(),
                route.rpc
            ),
        })??;
    if wants(headers, header::ACCEPT, BINARY) {
        return Ok(([(header::CONTENT_TYPE, BINARY)], output).into_response());
    }
    let json = registry::to_json(&route.output, &output).map_err(|e| Failure {
        code: Code::Internal,
        message: e.to_string(),
    })?;
    Ok(([(header::CONTENT_TYPE, JSON)], json).into_response())
}

/// The request as a JSON object, starting from the body when the route takes one.
fn request_body(
    routes: &Routes,
    route: &Route,
    body: &[u8],
    binary: bool,
) -> Result<Value, Failure> {
    if route.body.is_empty() || body.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let body_type = if route.body == "*" {
        route.input.clone()
    } else {
        routes
            .field(&route.input, &route.body)
            .and_then(|f| f.type_name.as_deref())
            .map(|t| t.trim_start_matches('.').to_string())
            .ok_or_else(|| Failure {
                code: Code::Internal,
                message: format!(
                    "body field {} of {} is not a message",
                    route.body, route.input
                ),
            })?
    };
    let value: Value = if binary {
        let json =
            registry::to_json(&body_type, body).map_err(|e| Failure::invalid(e.to_string()))?;
        serde_json::from_str(&json).map_err(|e| Failure::invalid(e.to_string()))?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| Failure::invalid(format!("request body is not JSON: {e}")))?
    };
    if route.body == "*" {
        Ok(value)
    } else {
        let mut object = Map::new();
        object.insert(route.body.clone(), value);
        Ok(Value::Object(object))
    }
}

/// Sets the (nested) field `path` of a request of type `message` from a path or query value,
/// typed by the field's descriptor; repeated fields collect every value given.
fn set_field(
    routes: &Routes,
    request: &mut Value,
    message: &str,
    path: &[String],
    raw: &str,
) -> Result<(), Failure> {
    let mut message = message.to_string();
    let mut current = request;
    for (i, name) in path.iter().enumerate() {
        let field = routes
            .field(&message, name)
            .ok_or_else(|| Failure::invalid(format!("{message} has no field {name:?}")))?;
        let proto_name = field.name.clone().unwrap_or_default();
        let object = current
            .as_object_mut()
            .ok_or_else(|| Failure::invalid(format!("{message} must be a JSON object")))?;
        // The body may spell the field by its JSON name; keep one spelling so the decoder
        // does not see the field twice.
        if let Some(json_name) = field.json_name.as_deref().filter(|j| *j != proto_name) {
            if let Some(v) = object.remove(json_name) {
                object.insert(proto_name.clone(), v);
            }
        }
        if i + 1 < path.len() {
            message = field
                .type_name
                .as_deref()
                .map(|t| t.trim_start_matches('.').to_string())
                .ok_or_else(|| Failure::invalid(format!("{message}.{name} is not a message")))?;
            current = object
                .entry(proto_name)
                .or_insert_with(|| Value::Object(Map::new()));
            continue;
        }
        let value = match kind_of(field) {
            ValueKind::Bool => Value::Bool(raw.parse().map_err(|_| {
                Failure::invalid(format!("{name} must be true or false, not {raw:?}"))
            })?),
            ValueKind::Enum => raw
                .parse::<i64>()
                .map_or_else(|_| Value::String(raw.to_string()), Value::from),
            ValueKind::Text => Value::String(raw.to_string()),
        };
        if field.label == Some(Label::Repeated as i32) {
            let list = object
                .entry(proto_name)
                .or_insert_with(|| Value::Array(Vec::new()));
            match list {
                Value::Array(items) => items.push(value),
                other => *other = Value::Array(vec![value]),
            }
        } else {
            object.insert(proto_name, value);
        }
        return Ok(());
    }
    Ok(())
}
