//! The console's actions: terminate, relaunch, recover, and answering gates (approve, reject,
//! set a typed signal). JSON POSTs under `/console/actions/...`, behind the REST gateway's body
//! rule ([`alula_admin::guard::require_api_body`]): JSON is not a CORS-safelisted type, so a page
//! of another origin cannot send one without a preflight this server never grants, and a form
//! or `text/plain` POST is refused with 415 before anything runs.
//!
//! Each answers `{"url": "<the page to show next>"}`, or the gateway's `{code, message}` error.

use alula_idl::flyteidl::admin::{
    ExecutionRecoverRequest, ExecutionRelaunchRequest, ExecutionTerminateRequest,
    SignalListRequest, SignalSetRequest,
};
use alula_idl::flyteidl::core::{
    literal, primitive, scalar, Literal, LiteralType, Primitive, Scalar, SignalIdentifier,
    WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_idl::flyteidl::service::signal_service_server::SignalService;
use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::ConsoleError;
use crate::{urls, Api, State};

pub(crate) fn routes() -> Router<State> {
    let actions = Router::new()
        .route("/console/actions/terminate", post(terminate))
        .route("/console/actions/relaunch", post(relaunch))
        .route("/console/actions/recover", post(recover))
        .route("/console/actions/approve", post(approve))
        .route("/console/actions/reject", post(reject))
        .route("/console/actions/signal", post(signal));
    alula_admin::guard::require_api_body(actions)
}

/// The execution an action is about.
#[derive(Deserialize)]
struct ExecutionRef {
    project: String,
    domain: String,
    name: String,
}

impl ExecutionRef {
    fn id(&self) -> WorkflowExecutionIdentifier {
        WorkflowExecutionIdentifier {
            project: self.project.clone(),
            domain: self.domain.clone(),
            name: self.name.clone(),
            org: String::new(),
        }
    }
}

#[derive(Deserialize)]
struct TerminateBody {
    #[serde(flatten)]
    execution: ExecutionRef,
    #[serde(default)]
    cause: String,
}

#[derive(Deserialize)]
struct SignalBody {
    #[serde(flatten)]
    execution: ExecutionRef,
    signal_id: String,
    /// The gate's node, so the answer lands on its panel.
    #[serde(default)]
    node: Option<String>,
    /// The value of a typed signal (ignored by approve and reject).
    #[serde(default)]
    value: Option<serde_json::Value>,
}

/// An action's failure, answered as the gateway's `{code, message}`.
struct Failure(ConsoleError);

impl<E: Into<ConsoleError>> From<E> for Failure {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let code = self.0.code();
        let status = alula_admin::rest::http_status(code);
        if status.is_server_error() {
            tracing::warn!(error = %self.0, "console action failed");
        }
        json_response(
            status,
            serde_json::json!({ "code": code as i32, "message": self.0.to_string() }),
        )
    }
}

type ActionResult = Result<Response, Failure>;

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `{"url": url}`: where the browser goes next.
fn go_to(url: String) -> ActionResult {
    Ok(json_response(
        StatusCode::OK,
        serde_json::json!({ "url": url }),
    ))
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|e| {
        Failure(ConsoleError::bad_request(format!(
            "invalid request body: {e}"
        )))
    })
}

async fn terminate(api: Api, body: Bytes) -> ActionResult {
    let body: TerminateBody = parse(&body)?;
    let cause = match body.cause.trim() {
        "" => "terminated from the console".to_string(),
        cause => cause.to_string(),
    };
    let id = body.execution.id();
    let request = api.request(ExecutionTerminateRequest {
        id: Some(id.clone()),
        cause,
    });
    AdminService::terminate_execution(&api.admin, request).await?;
    go_to(urls::execution(&id))
}

async fn relaunch(api: Api, body: Bytes) -> ActionResult {
    let body: ExecutionRef = parse(&body)?;
    let request = api.request(ExecutionRelaunchRequest {
        id: Some(body.id()),
        name: String::new(),
        overwrite_cache: false,
    });
    let created = AdminService::relaunch_execution(&api.admin, request)
        .await?
        .into_inner();
    go_to(created_url(created.id)?)
}

async fn recover(api: Api, body: Bytes) -> ActionResult {
    let body: ExecutionRef = parse(&body)?;
    let request = api.request(ExecutionRecoverRequest {
        id: Some(body.id()),
        name: String::new(),
        metadata: None,
    });
    let created = AdminService::recover_execution(&api.admin, request)
        .await?
        .into_inner();
    go_to(created_url(created.id)?)
}

fn created_url(id: Option<WorkflowExecutionIdentifier>) -> Result<String, Failure> {
    let id = id.ok_or_else(|| {
        Failure(ConsoleError::Api(tonic::Status::internal(
            "the new execution has no id",
        )))
    })?;
    Ok(urls::execution(&id))
}

async fn approve(api: Api, body: Bytes) -> ActionResult {
    let body: SignalBody = parse(&body)?;
    set_signal(&api, &body, boolean(true)).await
}

async fn reject(api: Api, body: Bytes) -> ActionResult {
    let body: SignalBody = parse(&body)?;
    set_signal(&api, &body, boolean(false)).await
}

async fn signal(api: Api, body: Bytes) -> ActionResult {
    let body: SignalBody = parse(&body)?;
    let value = body
        .value
        .as_ref()
        .ok_or_else(|| Failure(ConsoleError::bad_request("missing value")))?;
    let ty = signal_type(&api, &body).await?;
    let literal = crate::forms::literal_from_json(value, &ty).map_err(|message| {
        Failure(ConsoleError::bad_request(format!(
            "signal {:?}: {message}",
            body.signal_id
        )))
    })?;
    set_signal(&api, &body, literal).await
}

/// The type the gate declared for its signal.
async fn signal_type(api: &Api, body: &SignalBody) -> Result<LiteralType, Failure> {
    let request = api.request(SignalListRequest {
        workflow_execution_id: Some(body.execution.id()),
        limit: 1_000,
        ..Default::default()
    });
    let signals = SignalService::list_signals(&api.admin, request)
        .await?
        .into_inner()
        .signals;
    signals
        .into_iter()
        .find(|s| {
            s.id.as_ref()
                .is_some_and(|id| id.signal_id == body.signal_id)
        })
        .and_then(|s| s.r#type)
        .ok_or_else(|| {
            Failure(ConsoleError::not_found(format!(
                "execution {:?} has no signal {:?}",
                body.execution.name, body.signal_id
            )))
        })
}

async fn set_signal(api: &Api, body: &SignalBody, value: Literal) -> ActionResult {
    let id = body.execution.id();
    let request = api.request(SignalSetRequest {
        id: Some(SignalIdentifier {
            signal_id: body.signal_id.clone(),
            execution_id: Some(id.clone()),
        }),
        value: Some(value),
    });
    SignalService::set_signal(&api.admin, request).await?;
    go_to(match &body.node {
        Some(node) if !node.is_empty() => urls::node(&id, node),
        _ => urls::execution(&id),
    })
}

fn primitive_literal(value: primitive::Value) -> Literal {
    Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::Primitive(Primitive { value: Some(value) })),
        }))),
        ..Default::default()
    }
}

fn boolean(value: bool) -> Literal {
    primitive_literal(primitive::Value::Boolean(value))
}
