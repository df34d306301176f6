//! `POST /console/actions/launch`: the form's JSON converted with the launch plan's declared
//! types, then CreateExecution. Every problem with the values is reported at once, each naming
//! its input, and nothing is created unless all convert.
//!
//! Body: `{"launch_plan": {"project", "domain", "name", "version"?}, "inputs": {name: json},
//! "name"?: "...", "labels"?: {k: v}, "annotations"?: {k: v}}`. Answers `{"url": execution
//! page}`, or the gateway's `{code, message}` with, for bad values, `errors: [{input,
//! message}]` that `launch.js` shows beside each field.

use std::collections::BTreeMap;

use alula_idl::flyteidl::admin::{
    execution_metadata::ExecutionMode, Annotations, ExecutionCreateRequest, ExecutionMetadata,
    ExecutionSpec, Labels,
};
use alula_idl::flyteidl::core::{Identifier, LiteralMap, ResourceType};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use tonic::Code;

use super::fields::{expected_inputs, is_required};
use super::resolve_launch_plan;
use crate::error::ConsoleError;
use crate::forms::literal_from_json_at;
use crate::{urls, Api};

#[derive(Deserialize)]
struct LaunchBody {
    #[serde(alias = "launchPlan")]
    launch_plan: LaunchPlanRef,
    #[serde(default)]
    inputs: serde_json::Map<String, Value>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct LaunchPlanRef {
    project: String,
    domain: String,
    name: String,
    /// The newest version when empty.
    #[serde(default)]
    version: String,
}

/// One input's problem, for the field it belongs to.
struct InputError {
    input: String,
    message: String,
}

pub(super) async fn launch(api: Api, body: Bytes) -> Response {
    match launch_inner(&api, &body).await {
        Ok(url) => json_response(StatusCode::OK, &json!({ "url": url })),
        Err(Refusal::Inputs(errors)) => {
            let message = errors
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            let errors: Vec<Value> = errors
                .iter()
                .map(|e| json!({ "input": e.input, "message": e.message }))
                .collect();
            json_response(
                StatusCode::BAD_REQUEST,
                &json!({
                    "code": Code::InvalidArgument as i32,
                    "message": message,
                    "errors": errors,
                }),
            )
        }
        Err(Refusal::Other(error)) => {
            let code = error.code();
            let status = alula_admin::rest::http_status(code);
            if status.is_server_error() {
                tracing::warn!(%error, "console launch failed");
            }
            json_response(
                status,
                &json!({ "code": code as i32, "message": error.to_string() }),
            )
        }
    }
}

enum Refusal {
    Inputs(Vec<InputError>),
    Other(ConsoleError),
}

impl<E: Into<ConsoleError>> From<E> for Refusal {
    fn from(e: E) -> Self {
        Self::Other(e.into())
    }
}

async fn launch_inner(api: &Api, body: &[u8]) -> Result<String, Refusal> {
    let body: LaunchBody = serde_json::from_slice(body)
        .map_err(|e| ConsoleError::bad_request(format!("the launch request is not valid: {e}")))?;
    let lp = &body.launch_plan;
    let wanted = Identifier {
        resource_type: ResourceType::LaunchPlan as i32,
        project: lp.project.clone(),
        domain: lp.domain.clone(),
        name: lp.name.clone(),
        version: lp.version.clone(),
        org: String::new(),
    };
    let plan = resolve_launch_plan(api, &wanted).await?;
    let id = plan.id.clone().unwrap_or(wanted);
    let inputs = convert_inputs(&plan, &body.inputs).map_err(Refusal::Inputs)?;
    for (what, map) in [("label", &body.labels), ("annotation", &body.annotations)] {
        if map.keys().any(|k| k.trim().is_empty()) {
            return Err(ConsoleError::bad_request(format!("a {what} needs a key")).into());
        }
    }
    let request = ExecutionCreateRequest {
        project: id.project.clone(),
        domain: id.domain.clone(),
        name: body.name.trim().to_string(),
        spec: Some(ExecutionSpec {
            launch_plan: Some(id.clone()),
            metadata: Some(ExecutionMetadata {
                mode: ExecutionMode::Manual as i32,
                ..Default::default()
            }),
            labels: (!body.labels.is_empty()).then(|| Labels {
                values: body.labels.into_iter().collect(),
            }),
            annotations: (!body.annotations.is_empty()).then(|| Annotations {
                values: body.annotations.into_iter().collect(),
            }),
            ..Default::default()
        }),
        inputs: Some(inputs),
        org: String::new(),
    };
    let created = AdminService::create_execution(&api.admin, api.request(request))
        .await?
        .into_inner();
    let execution = created
        .id
        .ok_or_else(|| ConsoleError::Api(tonic::Status::internal("no execution id returned")))?;
    Ok(urls::execution(&execution))
}

/// The typed-in values as literals of the declared types; unknown and fixed inputs and
/// missing required ones are reported too, each with its input's name.
fn convert_inputs(
    plan: &alula_idl::flyteidl::admin::LaunchPlan,
    given: &serde_json::Map<String, Value>,
) -> Result<LiteralMap, Vec<InputError>> {
    let expected = expected_inputs(plan);
    let fixed = plan
        .spec
        .as_ref()
        .and_then(|s| s.fixed_inputs.clone())
        .unwrap_or_default();
    let mut errors = Vec::new();
    let mut literals = LiteralMap::default();
    for (name, value) in given {
        let path = format!("inputs.{name}");
        if fixed.literals.contains_key(name) {
            errors.push(InputError {
                input: name.clone(),
                message: format!("{path}: fixed by the launch plan, it cannot be changed"),
            });
            continue;
        }
        let Some(param) = expected.parameters.get(name) else {
            let known: Vec<&str> = expected.parameters.keys().map(String::as_str).collect();
            errors.push(InputError {
                input: name.clone(),
                message: format!(
                    "{path}: not an input of this launch plan (its inputs: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            });
            continue;
        };
        let Some(ty) = param.var.as_ref().and_then(|v| v.r#type.as_ref()) else {
            errors.push(InputError {
                input: name.clone(),
                message: format!("{path}: the launch plan declares no type for it"),
            });
            continue;
        };
        match literal_from_json_at(value, ty, &path) {
            Ok(literal) => {
                literals.literals.insert(name.clone(), literal);
            }
            Err(message) => errors.push(InputError {
                input: name.clone(),
                message,
            }),
        }
    }
    for (name, param) in &expected.parameters {
        if is_required(param) && !given.contains_key(name) {
            errors.push(InputError {
                input: name.clone(),
                message: format!("inputs.{name}: required, and no value was given"),
            });
        }
    }
    if errors.is_empty() {
        Ok(literals)
    } else {
        Err(errors)
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
