//! The REST gateway through a real HTTP client (hyper) against an in-process server: JSON and
//! binary protobuf round trips, path and query parameters, error bodies.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use alula_admin::Store;
use alula_idl::flyteidl::admin::{
    self as admin, LaunchPlanCreateRequest, LaunchPlanSpec, TaskCreateRequest, TaskSpec,
    WorkflowCreateRequest, WorkflowSpec,
};
use alula_idl::flyteidl::core::{ResourceType, SimpleType};
use common::builders::*;
use common::http::{send, Reply, BINARY, JSON};
use common::server::TestServer;
use prost::Message;
use serde_json::Value;

/// `encoding` is both the body's content type and the accepted one.
async fn call(s: &TestServer, method: &str, path: &str, encoding: &str, body: Vec<u8>) -> Reply {
    let headers = [("content-type", encoding), ("accept", encoding)];
    send(&s.http_url, method, path, &headers, body).await
}

async fn get_json(s: &TestServer, path: &str) -> Value {
    let reply = call(s, "GET", path, JSON, Vec::new()).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

async fn get_binary<M: Message + Default>(s: &TestServer, path: &str) -> M {
    let reply = call(s, "GET", path, BINARY, Vec::new()).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.content_type, BINARY);
    M::decode(reply.body.as_slice()).unwrap()
}

async fn post_json<T: serde::Serialize>(s: &TestServer, path: &str, body: &T) -> Value {
    let reply = call(s, "POST", path, JSON, serde_json::to_vec(body).unwrap()).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

fn task_request(name: &str) -> TaskCreateRequest {
    let template = int_task(name, "v1", "img:1");
    TaskCreateRequest {
        id: template.id.clone(),
        spec: Some(TaskSpec {
            template: Some(template),
            description: None,
        }),
    }
}

async fn json_and_binary_round_trips(store: Store) {
    let s = TestServer::start(store).await;

    let version = get_json(&s, "/api/v1/version").await;
    assert!(version.get("controlPlaneVersion").is_some(), "{version}");
    let _: admin::GetVersionResponse = get_binary(&s, "/api/v1/version").await;

    let projects = get_json(&s, "/api/v1/projects?limit=10").await;
    assert_eq!(projects["projects"][0]["id"], PROJECT, "{projects}");
    let projects: admin::Projects = get_binary(&s, "/api/v1/projects?limit=10").await;
    assert_eq!(projects.projects[0].id, PROJECT);

    // A task registered as JSON and one as binary protobuf; each read back both ways.
    post_json(&s, "/api/v1/tasks", &task_request("t")).await;
    let reply = call(
        &s,
        "POST",
        "/api/v1/tasks",
        BINARY,
        task_request("t2").encode_to_vec(),
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    admin::TaskCreateResponse::decode(reply.body.as_slice()).unwrap();
    let task = get_json(&s, &format!("/api/v1/tasks/{PROJECT}/{DOMAIN}/t2/v1")).await;
    assert_eq!(task["id"]["name"], "t2", "{task}");
    assert_eq!(task["id"]["resourceType"], "TASK", "{task}");
    let task: admin::Task = get_binary(&s, &format!("/api/v1/tasks/{PROJECT}/{DOMAIN}/t/v1")).await;
    assert_eq!(task.id.unwrap().name, "t");

    // Query parameters: limit, and a nested enum-typed sort.
    let page = get_json(
        &s,
        &format!(
            "/api/v1/tasks/{PROJECT}/{DOMAIN}?limit=1&sort_by.key=name&sort_by.direction=ASCENDING"
        ),
    )
    .await;
    let tasks = page["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{page}");
    assert_eq!(tasks[0]["id"]["name"], "t", "{page}");
    assert!(!page["token"].as_str().unwrap().is_empty(), "{page}");
    let page = get_json(
        &s,
        &format!("/api/v1/tasks/{PROJECT}/{DOMAIN}?limit=1&sort_by.key=name&sort_by.direction=0"),
    )
    .await;
    assert_eq!(page["tasks"][0]["id"]["name"], "t2", "{page}");

    // Workflow, launch plan and execution through the gateway.
    let task_id = id(ResourceType::Task, "t", "v1");
    let wf = one_node_workflow("wf", "v1", &task_id, SimpleType::Integer);
    let wf_id = wf.id.clone().unwrap();
    let req = WorkflowCreateRequest {
        id: Some(wf_id.clone()),
        spec: Some(WorkflowSpec {
            template: Some(wf),
            ..Default::default()
        }),
    };
    post_json(&s, "/api/v1/workflows", &req).await;
    let workflows: admin::WorkflowList = get_binary(
        &s,
        &format!("/api/v1/workflows/{PROJECT}/{DOMAIN}?limit=10"),
    )
    .await;
    assert_eq!(workflows.workflows.len(), 1);
    let lp_id = id(ResourceType::LaunchPlan, "lp", "v1");
    let req = LaunchPlanCreateRequest {
        id: Some(lp_id.clone()),
        spec: Some(LaunchPlanSpec {
            workflow_id: Some(wf_id),
            ..Default::default()
        }),
    };
    post_json(&s, "/api/v1/launch_plans", &req).await;
    let lps = get_json(
        &s,
        &format!("/api/v1/launch_plans/{PROJECT}/{DOMAIN}/lp?limit=10"),
    )
    .await;
    assert_eq!(lps["launchPlans"][0]["id"]["version"], "v1", "{lps}");

    let req = admin::ExecutionCreateRequest {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: "e1".into(),
        spec: Some(admin::ExecutionSpec {
            launch_plan: Some(lp_id),
            ..Default::default()
        }),
        inputs: Some(literals(&[("x", int_literal(3))])),
        org: String::new(),
    };
    let created = post_json(&s, "/api/v1/executions", &req).await;
    assert_eq!(created["id"]["name"], "e1", "{created}");
    let execution: admin::Execution =
        get_binary(&s, &format!("/api/v1/executions/{PROJECT}/{DOMAIN}/e1")).await;
    assert_eq!(execution.id.unwrap().name, "e1");
    let list = get_json(
        &s,
        &format!("/api/v1/executions/{PROJECT}/{DOMAIN}?limit=10"),
    )
    .await;
    assert_eq!(list["executions"].as_array().unwrap().len(), 1, "{list}");
}

async fn bodies_merge_with_path_fields(store: Store) {
    let s = TestServer::start(store).await;
    // The body spells fields in JSON (camelCase) names; the project comes from the path.
    let body = serde_json::json!({
        "attributes": {"matchingAttributes": {"executionClusterLabel": {"value": "q1"}}}
    });
    let reply = call(
        &s,
        "PUT",
        &format!("/api/v1/project_attributes/{PROJECT}"),
        JSON,
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let got = get_json(
        &s,
        &format!("/api/v1/project_attributes/{PROJECT}?resource_type=EXECUTION_CLUSTER_LABEL"),
    )
    .await;
    assert_eq!(
        got["attributes"]["matchingAttributes"]["executionClusterLabel"]["value"], "q1",
        "{got}"
    );
    let reply = call(
        &s,
        "GET",
        &format!("/api/v1/project_attributes/{PROJECT}?resource_type=TASK_RESOURCE"),
        JSON,
        Vec::new(),
    )
    .await;
    assert_eq!(reply.status, 404);
    assert!(reply.json()["message"]
        .as_str()
        .unwrap()
        .contains("TASK_RESOURCE"));
}

async fn errors_are_json_with_matching_status(store: Store) {
    let s = TestServer::start(store).await;

    let reply = call(
        &s,
        "GET",
        &format!("/api/v1/tasks/{PROJECT}/{DOMAIN}/missing/v1"),
        JSON,
        Vec::new(),
    )
    .await;
    assert_eq!(reply.status, 404);
    let body = reply.json();
    assert_eq!(body["code"], 5, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("missing"),
        "{body}"
    );

    let reply = call(&s, "POST", "/api/v1/tasks", JSON, b"{not json".to_vec()).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["code"], 3);

    let reply = call(&s, "GET", "/api/v1/projects?limit=many", JSON, Vec::new()).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["code"], 3);

    // A registration missing its id: the service's own validation, with its message.
    let reply = call(&s, "POST", "/api/v1/tasks", JSON, b"{}".to_vec()).await;
    assert_eq!(reply.status, 400);
    let body = reply.json();
    assert!(
        body["message"].as_str().unwrap().contains("task id"),
        "{body}"
    );

    let reply = call(&s, "GET", "/api/v1/no_such_thing", JSON, Vec::new()).await;
    assert_eq!(reply.status, 404);
    assert!(reply.json()["message"]
        .as_str()
        .unwrap()
        .contains("/api/v1/no_such_thing"));

    // A routed path with an HTTP method no binding uses: 501 saying so.
    let reply = call(&s, "PATCH", "/api/v1/projects", JSON, Vec::new()).await;
    assert_eq!(reply.status, 501);
    let body = reply.json();
    assert_eq!(body["code"], 12, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("PATCH /api/v1/projects"),
        "{body}"
    );
}

/// flyteadmin reads a missing `limit` on ListProjects as "all" (FlyteConsole and flytekit send
/// none), while the entity lists keep requiring one, as flyteadmin's validation does.
async fn project_list_without_limit_is_everything(store: Store) {
    let s = TestServer::start(store).await;
    for i in 0..3 {
        let project = admin::Project {
            id: format!("p{i}"),
            name: format!("p{i}"),
            ..Default::default()
        };
        post_json(
            &s,
            "/api/v1/projects",
            &admin::ProjectRegisterRequest {
                project: Some(project),
            },
        )
        .await;
    }
    let all = get_json(&s, "/api/v1/projects").await;
    let ids: Vec<&str> = all["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    for expected in [PROJECT, "p0", "p1", "p2"] {
        assert!(ids.contains(&expected), "{expected} missing from {all}");
    }
    // Everything fits one page, so there is no next page to ask for.
    assert!(
        all["token"].as_str().unwrap_or_default().is_empty(),
        "{all}"
    );
    let all: admin::Projects = get_binary(&s, "/api/v1/projects").await;
    assert_eq!(all.projects.len(), ids.len());
    // An explicit limit still pages.
    let page = get_json(&s, "/api/v1/projects?limit=2").await;
    assert_eq!(page["projects"].as_array().unwrap().len(), 2, "{page}");
    assert!(!page["token"].as_str().unwrap().is_empty(), "{page}");

    let reply = call(
        &s,
        "GET",
        &format!("/api/v1/tasks/{PROJECT}/{DOMAIN}"),
        JSON,
        Vec::new(),
    )
    .await;
    assert_eq!(reply.status, 400);
    let body = reply.json();
    assert!(
        body["message"].as_str().unwrap().contains("limit"),
        "{body}"
    );
}

/// The tasks registered so far, through the gateway.
async fn task_names(s: &TestServer) -> Vec<String> {
    let ids: admin::NamedEntityIdentifierList =
        get_binary(s, &format!("/api/v1/task_ids/{PROJECT}/{DOMAIN}?limit=100")).await;
    ids.entities.into_iter().map(|e| e.name).collect()
}

/// Asserts a 400 INVALID_ARGUMENT whose message contains every one of `words`.
fn assert_invalid(reply: &Reply, words: &[&str]) {
    assert_eq!(
        reply.status,
        400,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let body = reply.json();
    assert_eq!(body["code"], 3, "{body}");
    let message = body["message"].as_str().unwrap();
    for word in words {
        assert!(message.contains(word), "{word:?} not in {message:?}");
    }
}

async fn malformed_bodies_are_refused(store: Store) {
    let s = TestServer::start(store).await;

    // Binary protobuf that cannot decode: field 1 (the id) claims 255 bytes and has 7.
    let garbage = b"\x0a\xff\x01garbage".to_vec();
    let reply = call(&s, "POST", "/api/v1/tasks", BINARY, garbage).await;
    assert_invalid(&reply, &["TaskCreateRequest", "protobuf"]);
    // A wire type protobuf does not have (7) in the first tag.
    let reply = call(&s, "POST", "/api/v1/tasks", BINARY, vec![0x0f, 0x01]).await;
    assert_invalid(&reply, &["TaskCreateRequest", "protobuf"]);

    // Bytes that are not JSON at all, cut-off JSON, and JSON of the wrong shape.
    let reply = call(&s, "POST", "/api/v1/tasks", JSON, b"\x00\xffnope".to_vec()).await;
    assert_invalid(&reply, &["not JSON"]);
    let mut truncated = serde_json::to_vec(&task_request("cut")).unwrap();
    truncated.truncate(truncated.len() / 2);
    let reply = call(&s, "POST", "/api/v1/tasks", JSON, truncated).await;
    assert_invalid(&reply, &["not JSON"]);
    let reply = call(&s, "POST", "/api/v1/tasks", JSON, b"[1, 2]".to_vec()).await;
    assert_invalid(&reply, &["TaskCreateRequest"]);
    let reply = call(
        &s,
        "POST",
        "/api/v1/tasks",
        JSON,
        br#"{"id": {"name": 42}}"#.to_vec(),
    )
    .await;
    assert_invalid(&reply, &["TaskCreateRequest"]);
    let reply = call(
        &s,
        "POST",
        "/api/v1/tasks",
        JSON,
        br#"{"id": {"resourceType": "NOT_A_KIND"}}"#.to_vec(),
    )
    .await;
    assert_invalid(&reply, &["TaskCreateRequest", "NOT_A_KIND"]);

    assert!(task_names(&s).await.is_empty());
    // The same route still takes a good body afterwards.
    post_json(&s, "/api/v1/tasks", &task_request("good")).await;
    assert_eq!(task_names(&s).await, vec!["good".to_string()]);
}

on_both_backends!(
    json_and_binary_round_trips,
    errors_are_json_with_matching_status,
    bodies_merge_with_path_fields,
    project_list_without_limit_is_everything,
    malformed_bodies_are_refused,
);
