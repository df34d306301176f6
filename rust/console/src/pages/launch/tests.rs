//! The launch form through the console's router, over a real admin API on in-memory SQLite:
//! the form's fields, a launch that creates an execution with the expected literals, and the
//! refusals that create nothing.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::collections::BTreeMap;

use alula_core::types::simple;
use alula_idl::flyteidl::admin::{
    LaunchPlanSpec, ResourceListRequest, WorkflowExecutionGetDataRequest,
};
use alula_idl::flyteidl::core::{
    blob_type::BlobDimensionality, literal_type::Type, parameter, BlobType, EnumType, Literal,
    LiteralMap, LiteralType, Parameter, ParameterMap, ResourceType, SimpleType, TypeAnnotation,
    TypedInterface, Variable, VariableMap, WorkflowExecutionIdentifier, WorkflowTemplate,
};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::fixture::{
    bind, create_launch_plan, create_task, create_workflow, id, int_task, promise, task_node, vars,
    Console, DOMAIN, PROJECT,
};
use crate::forms::literal_from_json;

fn var(ty: LiteralType) -> Variable {
    Variable {
        r#type: Some(ty),
        ..Default::default()
    }
}

fn dataclass() -> LiteralType {
    LiteralType {
        metadata: Some(
            serde_json::from_value(json!({
                "title": "Config",
                "type": "object",
                "required": ["depth"],
                "properties": {"depth": {"type": "integer"}, "name": {"type": "string"}},
            }))
            .unwrap(),
        ),
        // As flytekit 1.14+ and Alula's SDK declare dataclasses: their values are msgpack.
        annotation: Some(TypeAnnotation {
            annotations: Some(
                serde_json::from_value(
                    json!({"cache-key-metadata": {"serialization-format": "msgpack"}}),
                )
                .unwrap(),
            ),
        }),
        ..simple(SimpleType::Struct)
    }
}

/// The launch plan's inputs: name, type, and the default (`None`: required).
fn inputs() -> Vec<(&'static str, LiteralType, Option<Value>)> {
    let list = LiteralType {
        r#type: Some(Type::CollectionType(Box::new(simple(SimpleType::Integer)))),
        ..Default::default()
    };
    let colour = LiteralType {
        r#type: Some(Type::EnumType(EnumType {
            values: vec!["red".into(), "green".into()],
        })),
        ..Default::default()
    };
    let csv = LiteralType {
        r#type: Some(Type::Blob(BlobType {
            format: "csv".into(),
            dimensionality: BlobDimensionality::Single as i32,
        })),
        ..Default::default()
    };
    vec![
        ("n", simple(SimpleType::Integer), Some(json!(3))),
        ("f", simple(SimpleType::Float), Some(json!(0.5))),
        ("s", simple(SimpleType::String), Some(json!("hello"))),
        ("b", simple(SimpleType::Boolean), Some(json!(true))),
        ("colour", colour, Some(json!("green"))),
        ("xs", list, Some(json!([1, 2]))),
        ("cfg", dataclass(), None),
        ("data", csv, None),
    ]
}

fn literal(value: &Value, ty: &LiteralType) -> Literal {
    literal_from_json(value, ty).unwrap()
}

/// An admin API with task `t`, workflow `wf` (the inputs above plus `tag: str`, one node
/// using `n`), its default launch plan `wf` (with those defaults and `tag` fixed) and a second
/// launch plan `wf-nightly`.
async fn setup() -> Console {
    let console = Console::start().await;
    let admin = console.admin();
    let task_id = create_task(admin, int_task("t", "v1", "img")).await;

    let mut workflow_inputs: BTreeMap<String, Variable> = inputs()
        .into_iter()
        .map(|(name, ty, _)| (name.to_string(), var(ty)))
        .collect();
    workflow_inputs.insert("tag".into(), var(simple(SimpleType::String)));
    let workflow = WorkflowTemplate {
        id: Some(id(ResourceType::Workflow, "wf", "v1")),
        interface: Some(TypedInterface {
            inputs: Some(VariableMap {
                variables: workflow_inputs,
            }),
            outputs: Some(vars(&[("out", SimpleType::Integer)])),
        }),
        nodes: vec![task_node(
            "n0",
            &task_id,
            vec![bind("a", promise("start-node", "n"))],
        )],
        outputs: vec![bind("out", promise("n0", "o0"))],
        ..Default::default()
    };
    let wf_id = create_workflow(admin, workflow, vec![]).await;

    let parameters: BTreeMap<String, Parameter> = inputs()
        .into_iter()
        .map(|(name, ty, default)| {
            let behavior = match &default {
                Some(value) => parameter::Behavior::Default(literal(value, &ty)),
                None => parameter::Behavior::Required(true),
            };
            let param = Parameter {
                var: Some(var(ty)),
                behavior: Some(behavior),
            };
            (name.to_string(), param)
        })
        .collect();
    for (name, version) in [("wf", "v1"), ("wf-nightly", "v1")] {
        let spec = LaunchPlanSpec {
            workflow_id: Some(wf_id.clone()),
            default_inputs: Some(ParameterMap {
                parameters: parameters.clone(),
            }),
            fixed_inputs: Some(LiteralMap {
                literals: [(
                    "tag".to_string(),
                    literal(&json!("nightly"), &simple(SimpleType::String)),
                )]
                .into(),
            }),
            ..Default::default()
        };
        create_launch_plan(admin, id(ResourceType::LaunchPlan, name, version), spec).await;
    }
    console
}

/// POSTs `body` to the launch action as `content_type`: the status and the answer as JSON
/// (null when it is not JSON).
async fn post(console: &Console, content_type: &str, body: &Value) -> (StatusCode, Value) {
    let (status, answer) = console
        .post("/console/actions/launch", content_type, &body.to_string())
        .await;
    (status, serde_json::from_str(&answer).unwrap_or(Value::Null))
}

async fn execution_count(console: &Console) -> usize {
    let request = ResourceListRequest {
        id: Some(alula_idl::flyteidl::admin::NamedEntityIdentifier {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            ..Default::default()
        }),
        limit: 100,
        ..Default::default()
    };
    AdminService::list_executions(console.admin(), tonic::Request::new(request))
        .await
        .unwrap()
        .into_inner()
        .executions
        .len()
}

fn good_inputs() -> Value {
    json!({
        "n": 7,
        "f": 2.5,
        "s": "world",
        "b": false,
        "colour": "red",
        "xs": [4, 5, 6],
        "cfg": {"depth": 2, "name": "deep"},
        "data": "s3://bucket/table.csv",
    })
}

#[tokio::test]
async fn the_form_has_a_labelled_field_of_the_right_kind_per_input_with_its_default() {
    let console = setup().await;
    let (status, html) = console
        .get("/console/projects/flytesnacks/domains/development/launchPlans/wf/launch")
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    for (name, kind) in [
        ("n", "integer"),
        ("f", "float"),
        ("s", "string"),
        ("b", "boolean"),
        ("colour", "enum"),
        ("xs", "json"),
        ("cfg", "json"),
        ("data", "file"),
    ] {
        assert!(
            html.contains(&format!(r#"data-input="{name}" data-kind="{kind}""#)),
            "{name} is not a {kind} field"
        );
        assert!(
            html.contains(&format!(r#"<label for="input-{name}">"#)),
            "{name} has no label"
        );
    }
    for control in [
        r#"<input id="input-n" name="n" type="number" step="1" value="3""#,
        r#"<input id="input-f" name="f" type="number" step="any" value="0.5""#,
        r#"<input id="input-s" name="s" type="text" value="hello""#,
        r#"<input id="input-b" name="b" type="checkbox" checked"#,
        r#"<option value="green" selected>green</option>"#,
        r#"<input id="input-data" name="data" type="text" value="" placeholder="s3://bucket/path" required"#,
        r#"<input id="input-data-upload" type="file" data-upload-for="input-data""#,
        r#"<textarea id="input-cfg" name="cfg" rows="4" spellcheck="false" required"#,
    ] {
        assert!(html.contains(control), "missing {control}");
    }
    // The list's default, as JSON in its textarea.
    assert!(html.contains("[\n  1,\n  2\n]</textarea>"), "{html}");
    // Required inputs say so in words; the fixed one is shown, not editable.
    assert!(html.contains(r#"data-input="cfg" data-kind="json" data-required"#));
    assert!(!html.contains(r#"data-input="tag""#));
    assert!(html.contains(r#"<dd data-fixed="tag"><code>&quot;nightly&quot;</code></dd>"#));
    assert!(html.contains(r#"data-action="launch""#));
    assert!(html.contains(r#"<option value="v1" selected>v1</option>"#));
}

#[tokio::test]
async fn good_values_create_an_execution_with_the_expected_literals() {
    let console = setup().await;
    let body = json!({
        "launch_plan": {"project": PROJECT, "domain": DOMAIN, "name": "wf"},
        "inputs": good_inputs(),
        "name": "from-the-form",
        "labels": {"team": "ml"},
    });
    let (status, answer) = post(&console, "application/json", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["url"],
        "/console/projects/flytesnacks/domains/development/executions/from-the-form"
    );
    let request = WorkflowExecutionGetDataRequest {
        id: Some(WorkflowExecutionIdentifier {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            name: "from-the-form".into(),
            org: String::new(),
        }),
    };
    let data = AdminService::get_execution_data(console.admin(), tonic::Request::new(request))
        .await
        .unwrap()
        .into_inner();
    let got = data.full_inputs.unwrap().literals;
    let values = good_inputs();
    for (name, ty, _) in inputs() {
        assert_eq!(got[name], literal(&values[name], &ty), "{name}");
    }
    assert_eq!(
        got["tag"],
        literal(&json!("nightly"), &simple(SimpleType::String))
    );
    // The dataclass arrived as the msgpack its type declares, integers kept.
    let cfg = crate::forms::json_of_literal(&got["cfg"]).unwrap();
    assert_eq!(cfg, json!({"depth": 2, "name": "deep"}));
}

#[tokio::test]
async fn defaults_fill_what_the_form_leaves_out() {
    let console = setup().await;
    let body = json!({
        "launch_plan": {"project": PROJECT, "domain": DOMAIN, "name": "wf", "version": "v1"},
        "inputs": {"cfg": {"depth": 1}, "data": "s3://b/d.csv"},
    });
    let (status, answer) = post(&console, "application/json", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(execution_count(&console).await, 1);
}

#[tokio::test]
async fn a_bad_value_is_refused_naming_the_input_and_nothing_is_created() {
    let console = setup().await;
    let mut inputs = good_inputs();
    inputs["xs"] = json!([1, "two", 3]);
    inputs["colour"] = json!("blue");
    let body = json!({
        "launch_plan": {"project": PROJECT, "domain": DOMAIN, "name": "wf"},
        "inputs": inputs,
    });
    let (status, answer) = post(&console, "application/json", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["code"], 3);
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains(r#"inputs.xs[1]: expected an integer, got "two""#),
        "{message}"
    );
    assert!(
        message.contains(r#"inputs.colour: expected one of "red", "green""#),
        "{message}"
    );
    let named: Vec<&str> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["input"].as_str().unwrap())
        .collect();
    assert_eq!(named, ["colour", "xs"]);
    assert_eq!(execution_count(&console).await, 0);
}

#[tokio::test]
async fn missing_required_unknown_and_fixed_inputs_are_refused() {
    let console = setup().await;
    let body = json!({
        "launch_plan": {"project": PROJECT, "domain": DOMAIN, "name": "wf"},
        "inputs": {"data": "s3://b/d.csv", "nope": 1, "tag": "mine"},
    });
    let (status, answer) = post(&console, "application/json", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("inputs.cfg: required"), "{message}");
    assert!(message.contains("inputs.nope: not an input"), "{message}");
    assert!(
        message.contains("inputs.tag: fixed by the launch plan"),
        "{message}"
    );
    assert_eq!(execution_count(&console).await, 0);
}

#[tokio::test]
async fn the_api_refusal_is_passed_on() {
    let console = setup().await;
    let body = json!({
        "launch_plan": {"project": PROJECT, "domain": DOMAIN, "name": "wf"},
        "inputs": good_inputs(),
        "name": "Not A Valid Name",
    });
    let (status, answer) = post(&console, "application/json", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("execution name"),
        "{answer}"
    );
    let body = json!({"launch_plan": {"project": PROJECT, "domain": DOMAIN, "name": "absent"}});
    let (status, answer) = post(&console, "application/json", &body).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(execution_count(&console).await, 0);
}

#[tokio::test]
async fn a_text_plain_post_is_refused_before_anything_runs() {
    let console = setup().await;
    let body = json!({
        "launch_plan": {"project": PROJECT, "domain": DOMAIN, "name": "wf"},
        "inputs": good_inputs(),
    });
    let (status, answer) = post(&console, "text/plain;charset=UTF-8", &body).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{answer}");
    assert_eq!(answer["code"], 3);
    assert_eq!(execution_count(&console).await, 0);
}

#[tokio::test]
async fn a_workflow_offers_its_launch_plans_default_first() {
    let console = setup().await;
    let (status, html) = console
        .get(&super::workflow_launch_url(PROJECT, DOMAIN, "wf"))
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let default = html.find(r#"data-launch-plan="wf""#).unwrap();
    let nightly = html.find(r#"data-launch-plan="wf-nightly""#).unwrap();
    assert!(default < nightly);
    assert!(html.contains(
        r#"href="/console/projects/flytesnacks/domains/development/launchPlans/wf-nightly/launch""#
    ));
    let (status, _) = console
        .get("/console/projects/flytesnacks/domains/development/launchPlans/absent/launch")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
