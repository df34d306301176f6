//! The execution page, the node panel and the actions against a real admin API over in-memory
//! SQLite (see [`crate::fixture`]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

use alula_idl::flyteidl::admin::{
    self as admin, execution_closure, execution_metadata::ExecutionMode, Signal,
};
use alula_idl::flyteidl::core::{
    literal, node_execution, primitive, scalar, task_execution, workflow_execution, LiteralType,
    Primitive, Scalar, SignalIdentifier, SimpleType,
};
use alula_idl::flyteidl::service::signal_service_server::SignalService;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use tower::ServiceExt;

use crate::fixture::{exec_id, int_literal, simple, Console};

const PAGE: &str = "/console/projects/flytesnacks/domains/development/executions";

/// A traceback whose text a page must show as text.
const TRACEBACK: &str =
    "Traceback (most recent call last):\n  File \"t.py\"\n<script>alert(1)</script>";

/// Execution `name` of `plan` running, its node `node` running.
async fn running(f: &Console, plan: &str, name: &str, node: &str) {
    f.launch(plan, name).await;
    f.workflow_event(name, workflow_execution::Phase::Running, 1, None)
        .await;
    f.node_event(name, node, node_execution::Phase::Running, 2, None)
        .await;
}

/// POSTs `body` as JSON to the console's `action`: the status and the answer.
async fn act(f: &Console, action: &str, body: &str) -> (StatusCode, String) {
    f.post(
        &format!("/console/actions/{action}"),
        "application/json",
        body,
    )
    .await
}

/// A successful action's answer, as JSON.
fn answer_json(answer: &str) -> serde_json::Value {
    serde_json::from_str(answer).unwrap()
}

/// The signals of execution `name`.
async fn signals(f: &Console, name: &str) -> Vec<Signal> {
    SignalService::list_signals(
        f.admin(),
        tonic::Request::new(admin::SignalListRequest {
            workflow_execution_id: Some(exec_id(name)),
            limit: 10,
            ..Default::default()
        }),
    )
    .await
    .unwrap()
    .into_inner()
    .signals
}

/// A fixture with two-node `chain` and its execution `failed`: n0 failed twice (the second
/// time for good), the execution FAILED.
async fn failed_execution() -> Console {
    use node_execution::Phase as N;
    use task_execution::Phase as T;
    let f = Console::with_chain(2).await;
    f.launch("chain", "failed").await;
    f.workflow_event("failed", workflow_execution::Phase::Running, 1, None)
        .await;
    f.node_event("failed", "n0", N::Running, 2, None).await;
    f.task_event("failed", "n0", 0, T::Running, 3, None).await;
    f.task_event("failed", "n0", 0, T::RetryableFailed, 4, Some("first try"))
        .await;
    f.task_event("failed", "n0", 1, T::Running, 5, None).await;
    f.task_event("failed", "n0", 1, T::Failed, 6, Some(TRACEBACK))
        .await;
    f.node_event("failed", "n0", N::Failed, 7, Some(TRACEBACK))
        .await;
    f.workflow_event(
        "failed",
        workflow_execution::Phase::Failed,
        8,
        Some(TRACEBACK),
    )
    .await;
    f
}

#[tokio::test]
async fn a_failed_execution_shows_its_header_nodes_and_escaped_traceback() {
    let f = failed_execution().await;
    let html = f.page(&format!("{PAGE}/failed")).await;
    assert!(html.contains(r#"id="execution-header""#), "{html}");
    assert!(html.contains(r#"<span class="phase" data-phase="FAILED">"#));
    assert!(html.contains("ada@example.com"), "the principal is shown");
    assert!(html.contains(
        r#"href="/console/projects/flytesnacks/domains/development/launchPlans/chain/version/v1""#
    ));
    assert!(html.contains(r#"data-key="team""#), "labels are shown");
    // The traceback is text, never markup.
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script>alert(1)"));
    assert!(html.contains(r#"<pre class="traceback">Traceback (most recent call last):"#));
    // Values, the node table with the attempt count, and no refreshing once it ended.
    assert!(html.contains(r#"data-name="x""#), "{html}");
    assert!(
        html.contains(r#"<tr data-node-id="n0" data-phase="FAILED">"#),
        "{html}"
    );
    assert!(html.contains(r#"<td class="attempts">2</td>"#), "{html}");
    assert!(
        !html.contains("data-live="),
        "a finished execution does not refresh"
    );
    assert!(!html.contains(r#"data-action="terminate""#));
    assert!(html.contains(r#"data-action="relaunch""#));
    assert!(html.contains(r#"data-action="recover""#));
}

#[tokio::test]
async fn the_node_panel_lists_attempts_with_errors_and_log_links() {
    let f = failed_execution().await;
    let html = f.page(&format!("{PAGE}/failed?node=n0")).await;
    assert!(html.contains(r#"id="node-detail""#), "{html}");
    assert!(html.contains(r#"data-node-id="n0" data-phase="FAILED" aria-labelledby"#));
    assert!(
        html.contains(r#"<li data-attempt="0" data-phase="RETRYABLE_FAILED""#),
        "{html}"
    );
    assert!(
        html.contains(r#"<li data-attempt="1" data-phase="FAILED""#),
        "{html}"
    );
    assert!(html.contains(r#"href="https://logs.example/n0/1""#));
    assert!(
        !html.contains(r#"href="javascript:"#),
        "only web links are links"
    );
    assert!(html.contains("first try"), "the first attempt's error");
    // The node's inputs, typed by the task.
    assert!(html.contains(r#"data-name="a""#), "{html}");
    // The fragment alone, for the page's script; a browser navigating there gets the page.
    let (status, fragment) = f.get(&format!("{PAGE}/failed/nodes/n0?attempt=0")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(fragment.starts_with("<section"), "{fragment}");
    assert!(
        fragment.contains(r#"data-attempt="0" data-phase="RETRYABLE_FAILED" class="selected""#),
        "{fragment}"
    );
    let navigate = Request::get(format!("{PAGE}/failed/nodes/n0"))
        .header("sec-fetch-mode", "navigate")
        .body(Body::empty())
        .unwrap();
    let response = f.router.clone().oneshot(navigate).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[header::LOCATION],
        format!("{PAGE}/failed?node=n0")
    );
    // A link to a node that is not there shows the execution and says so.
    let (status, html) = f.get(&format!("{PAGE}/failed?node=nope")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(r#"<p class="notice error" role="alert">No node <code>nope</code>"#),
        "{html}"
    );
    assert!(!html.contains(r#"id="node-detail""#));
    let (status, _) = f.get(&format!("{PAGE}/failed/nodes/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_running_execution_is_live_and_terminate_records_the_cause() {
    let f = Console::with_chain(2).await;
    running(&f, "chain", "running", "n0").await;
    let (status, html) = f.get(&format!("{PAGE}/running?node=n0")).await;
    assert_eq!(status, StatusCode::OK);
    for part in ["header", "values", "graph", "timeline", "nodes"] {
        let live = format!(r#"data-live="{PAGE}/running?node=n0&amp;live={part}""#);
        assert!(html.contains(&live), "{part}: {html}");
    }
    // A refresh asks for one part and gets that part alone.
    let (status, part) = f.get(&format!("{PAGE}/running?node=n0&live=nodes")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(part.starts_with("<section"), "{part}");
    assert!(part.contains(r#"id="node-table""#));
    assert!(
        part.contains(r#"<tr data-node-id="n0" data-phase="RUNNING" class="selected">"#),
        "{part}"
    );
    assert!(!part.contains("execution-header"));
    assert!(html.contains(&format!(r#"data-live="{PAGE}/running/nodes/n0""#)));
    assert!(html.contains(r#"data-action="terminate""#));

    // Bodies a page of another origin could send without a preflight change nothing.
    let body = r#"{"project":"flytesnacks","domain":"development","name":"running","cause":"x"}"#;
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let (status, answer) = f
            .post("/console/actions/terminate", content_type, body)
            .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{answer}");
    }
    let phase = f.execution("running").await.closure.unwrap().phase;
    assert_eq!(phase, workflow_execution::Phase::Running as i32);

    let body = r#"{"project":"flytesnacks","domain":"development","name":"running","cause":"wrong <b>inputs</b>"}"#;
    let (status, answer) = act(&f, "terminate", body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let answer = answer_json(&answer);
    assert_eq!(answer["url"], format!("{PAGE}/running"));
    let closure = f.execution("running").await.closure.unwrap();
    assert_eq!(closure.phase, workflow_execution::Phase::Aborting as i32);
    match closure.output_result {
        Some(execution_closure::OutputResult::AbortMetadata(abort)) => {
            assert_eq!(abort.cause, "wrong <b>inputs</b>")
        }
        other => panic!("no abort cause: {other:?}"),
    }
    let (_, html) = f.get(&format!("{PAGE}/running")).await;
    assert!(html.contains("wrong &lt;b&gt;inputs&lt;/b&gt;"), "{html}");
    assert!(html.contains(r#"data-phase="ABORTING""#));

    // Terminating twice is the API's FAILED_PRECONDITION, in the gateway's shape.
    let (status, answer) = act(&f, "terminate", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let answer = answer_json(&answer);
    assert_eq!(answer["code"], tonic::Code::FailedPrecondition as i32);
    assert!(answer["message"].as_str().unwrap().contains("already"));
    let (status, _) = act(&f, "terminate", "{").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn relaunch_and_recover_answer_the_new_execution_page() {
    let f = failed_execution().await;
    let body = r#"{"project":"flytesnacks","domain":"development","name":"failed"}"#;
    for (action, mode) in [
        ("relaunch", ExecutionMode::Relaunch),
        ("recover", ExecutionMode::Recovered),
    ] {
        let (status, answer) = act(&f, action, body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let answer = answer_json(&answer);
        let url = answer["url"].as_str().unwrap();
        let name = url.strip_prefix(&format!("{PAGE}/")).unwrap();
        assert_ne!(name, "failed");
        let created = f.execution(name).await;
        let metadata = created.spec.unwrap().metadata.unwrap();
        assert_eq!(metadata.mode, mode as i32);
        let (status, html) = f.get(url).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains(&format!(r#"<a class="reference" href="{PAGE}/failed">"#)),
            "{html}"
        );
    }
    let missing = r#"{"project":"flytesnacks","domain":"development","name":"nope"}"#;
    let (status, answer) = act(&f, "relaunch", missing).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
}

#[tokio::test]
async fn a_waiting_gate_is_approved_from_its_panel() {
    let f = Console::with_chain(1).await;
    let boolean = simple(SimpleType::Boolean);
    waiting_gate(&f, "gated", "gated", "g0", "ok-to-go", boolean).await;
    let (status, html) = f.get(&format!("{PAGE}/gated?node=g0")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"data-action="approve""#), "{html}");
    assert!(html.contains(r#"data-action="reject""#));
    assert!(html.contains(r#"data-signal-id="ok-to-go""#));
    assert!(
        html.contains("Waiting for input"),
        "the header points at the gate"
    );

    let body = r#"{"project":"flytesnacks","domain":"development","name":"gated","signal_id":"ok-to-go","node":"g0"}"#;
    let (status, answer) = act(&f, "approve", body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let answer = answer_json(&answer);
    assert_eq!(answer["url"], format!("{PAGE}/gated?node=g0"));
    let signals = signals(&f, "gated").await;
    let value = signals[0].value.clone().unwrap();
    assert_eq!(value, {
        let mut l = int_literal(0);
        l.value = Some(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::Primitive(Primitive {
                value: Some(primitive::Value::Boolean(true)),
            })),
        })));
        l
    });
    let (_, html) = f.get(&format!("{PAGE}/gated?node=g0")).await;
    assert!(
        !html.contains(r#"data-action="approve""#),
        "answered gates have no buttons"
    );
    // A second answer is the API's refusal, not a success.
    let (status, _) = act(&f, "reject", body).await;
    assert!(status.is_client_error(), "{status}");
}

/// Execution `name` of `plan` running, its gate node `node` waiting on `signal_id` of `ty`.
async fn waiting_gate(
    f: &Console,
    plan: &str,
    name: &str,
    node: &str,
    signal_id: &str,
    ty: LiteralType,
) {
    running(f, plan, name, node).await;
    SignalService::get_or_create_signal(
        f.admin(),
        tonic::Request::new(admin::SignalGetOrCreateRequest {
            id: Some(SignalIdentifier {
                signal_id: signal_id.into(),
                execution_id: Some(exec_id(name)),
            }),
            r#type: Some(ty),
        }),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_typed_signal_is_set_from_its_form() {
    let f = Console::with_chain(1).await;
    let int = simple(SimpleType::Integer);
    waiting_gate(&f, "asks", "asks", "s0", "how-many", int).await;
    let (status, html) = f.get(&format!("{PAGE}/asks?node=s0")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"data-signal-form="""#), "{html}");
    assert!(
        html.contains(r#"<label for="signal-value">Value (int)</label>"#),
        "{html}"
    );
    assert!(html.contains(r#"data-kind="integer""#));
    assert!(html.contains(r#"data-action="signal""#));

    let body = |value: &str| {
        format!(
            r#"{{"project":"flytesnacks","domain":"development","name":"asks","signal_id":"how-many","node":"s0","value":{value}}}"#
        )
    };
    let (status, answer) = act(&f, "signal", &body(r#""seven""#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer.contains("how-many"), "{answer}");
    let (status, answer) = act(&f, "signal", &body("7")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let signals = signals(&f, "asks").await;
    assert_eq!(signals[0].value, Some(int_literal(7)));
}

#[tokio::test]
async fn an_unknown_execution_is_not_found() {
    let f = Console::with_chain(1).await;
    let (status, html) = f.get(&format!("{PAGE}/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("nope"));
}

/// The page of a 1,000-node execution: printed, and held to the issue's budget in release.
#[tokio::test]
async fn a_thousand_node_page_renders_in_budget() {
    let f = Console::with_chain(1_000).await;
    f.launch("chain", "big").await;
    f.workflow_event("big", workflow_execution::Phase::Running, 1, None)
        .await;
    for i in 0..1_000 {
        let node = format!("n{i}");
        f.node_event("big", &node, node_execution::Phase::Running, 2, None)
            .await;
        f.node_event("big", &node, node_execution::Phase::Succeeded, 3, None)
            .await;
    }
    let (status, _) = f.get(&format!("{PAGE}/big")).await;
    assert_eq!(status, StatusCode::OK);
    let mut best = std::time::Duration::MAX;
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let (status, html) = f.get(&format!("{PAGE}/big?node=n500")).await;
        best = best.min(started.elapsed());
        assert_eq!(status, StatusCode::OK);
        assert_eq!(html.matches("<tr data-node-id=").count(), 1_000);
    }
    println!("execution page with 1,000 nodes: {best:?}");
    if !cfg!(debug_assertions) {
        assert!(best < std::time::Duration::from_millis(300), "{best:?}");
    }
}
