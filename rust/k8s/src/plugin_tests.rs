//! The plugin against a mocked API server (tower-test): each test plays the server's side of
//! the exchange and checks the request it gets.

use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::*;
use crate::testutil::{attempt, config, task};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

const PODS: &str = "/api/v1/namespaces/flyte/pods";
/// `pod_name` of `testutil::attempt`.
const NAME: &str = "p-d-e1-n0-0";

fn plugin_with(config: PodPluginConfig) -> (PodPlugin, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (
        PodPlugin::new(kube::Client::new(service, "flyte"), config),
        handle,
    )
}

fn plugin() -> (PodPlugin, Handle) {
    plugin_with(config())
}

fn waker() -> (Waker, mpsc::UnboundedReceiver<u64>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Waker::new(tx, 7), rx)
}

fn status_body(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": format!("pods \"{NAME}\" {reason}"), "reason": reason, "code": code})
}

fn pod_body(phase: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": NAME, "namespace": "flyte"},
           "spec": {"containers": [{"name": "task", "image": "python:3.12"}]},
           "status": {"phase": phase}})
}

/// Serves one request: checks its method and path (query left out), answers `status` with
/// `body`, and returns the handle and the request's JSON body (if any).
async fn serve(
    mut handle: Handle,
    method: &'static str,
    path: String,
    status: u16,
    body: Value,
) -> (Handle, Option<Value>) {
    let (request, send) = handle.next_request().await.expect("a request");
    assert_eq!(request.method().as_str(), method);
    assert_eq!(request.uri().path(), path);
    let sent = request.into_body().collect_bytes().await.unwrap();
    send.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap(),
    );
    (handle, serde_json::from_slice(&sent).ok())
}

#[tokio::test]
async fn start_creates_the_pod() {
    let (plugin, handle) = plugin();
    let server = tokio::spawn(serve(handle, "POST", PODS.into(), 201, pod_body("Pending")));
    let (w, _rx) = waker();
    plugin
        .start(&attempt(task(&["run"], &[])), w)
        .await
        .unwrap();
    let (_, sent) = server.await.unwrap();
    let sent = sent.unwrap();
    assert_eq!(sent["metadata"]["name"], NAME);
    assert_eq!(
        sent["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "alula"
    );
    assert_eq!(sent["spec"]["restartPolicy"], "Never");
    assert_eq!(sent["spec"]["containers"][0]["command"], json!(["run"]));
}

#[tokio::test]
async fn a_second_start_adopts_the_existing_pod() {
    let (plugin, handle) = plugin();
    let a = attempt(task(&["run"], &[]));
    let server = tokio::spawn(serve(
        handle,
        "POST",
        PODS.into(),
        409,
        status_body(409, "AlreadyExists"),
    ));
    let (w, _rx) = waker();
    match plugin.start(&a, w.clone()).await {
        Err(PluginError::AlreadyStarted(name)) => assert_eq!(name, NAME),
        other => panic!("expected AlreadyStarted, got {other:?}"),
    }
    // The driver re-attaches with `check`: the existing pod is read, not re-created.
    let (handle, _) = server.await.unwrap();
    let server = tokio::spawn(serve(
        handle,
        "GET",
        format!("{PODS}/{NAME}"),
        200,
        pod_body("Running"),
    ));
    assert_eq!(plugin.check(&a, w).await.unwrap(), AttemptStatus::Running);
    server.await.unwrap();
}

#[tokio::test]
async fn refused_and_failed_creates() {
    let (plugin, handle) = plugin();
    let a = attempt(task(&["run"], &[]));
    let server = tokio::spawn(serve(
        handle,
        "POST",
        PODS.into(),
        422,
        status_body(422, "Invalid"),
    ));
    let (w, _rx) = waker();
    assert!(matches!(
        plugin.start(&a, w.clone()).await,
        Err(PluginError::Invalid(_))
    ));
    let (handle, _) = server.await.unwrap();
    let server = tokio::spawn(serve(
        handle,
        "POST",
        PODS.into(),
        500,
        status_body(500, "InternalError"),
    ));
    assert!(matches!(
        plugin.start(&a, w.clone()).await,
        Err(PluginError::Transient(_))
    ));
    // A failed create leaves no trace: a 404 afterwards means never started.
    let (handle, _) = server.await.unwrap();
    let server = tokio::spawn(serve(
        handle,
        "GET",
        format!("{PODS}/{NAME}"),
        404,
        status_body(404, "NotFound"),
    ));
    assert_eq!(
        plugin.check(&a, w).await.unwrap(),
        AttemptStatus::NotStarted
    );
    server.await.unwrap();
}

#[tokio::test]
async fn check_maps_the_pod_and_its_absence() {
    let (plugin, handle) = plugin();
    let a = attempt(task(&["run"], &[]));
    let (w, _rx) = waker();
    let get = format!("{PODS}/{NAME}");

    let server = tokio::spawn(serve(
        handle,
        "GET",
        get.clone(),
        404,
        status_body(404, "NotFound"),
    ));
    assert_eq!(
        plugin.check(&a, w.clone()).await.unwrap(),
        AttemptStatus::NotStarted
    );
    let (handle, _) = server.await.unwrap();

    let server = tokio::spawn(serve(
        handle,
        "GET",
        get.clone(),
        200,
        pod_body("Succeeded"),
    ));
    assert_eq!(
        plugin.check(&a, w.clone()).await.unwrap(),
        AttemptStatus::Exited {
            exit_code: Some(0),
            message: String::new()
        }
    );
    let (handle, _) = server.await.unwrap();

    // Seen, then gone without our abort: someone deleted it.
    let server = tokio::spawn(serve(
        handle,
        "GET",
        get.clone(),
        404,
        status_body(404, "NotFound"),
    ));
    assert!(matches!(
        plugin.check(&a, w.clone()).await.unwrap(),
        AttemptStatus::Lost { .. }
    ));
    let (handle, _) = server.await.unwrap();

    let server = tokio::spawn(serve(
        handle,
        "GET",
        get,
        503,
        status_body(503, "ServiceUnavailable"),
    ));
    assert!(matches!(
        plugin.check(&a, w).await,
        Err(PluginError::Transient(_))
    ));
    server.await.unwrap();
}

#[tokio::test]
async fn abort_deletes_the_pod_and_tolerates_its_absence() {
    let (plugin, handle) = plugin();
    let a = attempt(task(&["run"], &[]));
    let (w, _rx) = waker();
    let path = format!("{PODS}/{NAME}");
    let server = tokio::spawn(serve(handle, "GET", path.clone(), 200, pod_body("Running")));
    assert_eq!(
        plugin.check(&a, w.clone()).await.unwrap(),
        AttemptStatus::Running
    );
    let (handle, _) = server.await.unwrap();
    let server = tokio::spawn(serve(
        handle,
        "DELETE",
        path.clone(),
        200,
        pod_body("Running"),
    ));
    plugin.abort(&a).await.unwrap();
    let (handle, _) = server.await.unwrap();
    let server = tokio::spawn(serve(
        handle,
        "DELETE",
        path.clone(),
        404,
        status_body(404, "NotFound"),
    ));
    plugin.abort(&a).await.unwrap();
    // Gone because we deleted it: not lost.
    let (handle, _) = server.await.unwrap();
    let server = tokio::spawn(serve(
        handle,
        "GET",
        path,
        404,
        status_body(404, "NotFound"),
    ));
    assert_eq!(
        plugin.check(&a, w).await.unwrap(),
        AttemptStatus::NotStarted
    );
    server.await.unwrap();
}

#[tokio::test]
async fn finalize_deletes_only_when_configured() {
    let (plugin, handle) = plugin();
    let a = attempt(task(&["run"], &[]));
    let server = tokio::spawn(serve(
        handle,
        "DELETE",
        format!("{PODS}/{NAME}"),
        404,
        status_body(404, "NotFound"),
    ));
    plugin.finalize(&a).await.unwrap();
    server.await.unwrap();

    let (plugin, mut handle) = plugin_with(PodPluginConfig {
        delete_on_completion: false,
        ..config()
    });
    plugin.finalize(&a).await.unwrap();
    let nothing = tokio::time::timeout(Duration::from_millis(50), handle.next_request()).await;
    assert!(nothing.is_err(), "finalize must not call the API server");
}

#[tokio::test]
async fn the_watcher_wakes_the_attempt_of_a_changed_pod() {
    let (plugin, handle) = plugin();
    let (w, mut rx) = waker();
    plugin.track(NAME, w);
    let watch = plugin.spawn_watcher();

    // The initial list (empty), then a watch that reports our pod modified.
    let list = json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "10"}, "items": []});
    let (mut handle, _) = serve(handle, "GET", PODS.into(), 200, list).await;
    assert_eq!(rx.recv().await, Some(7), "woken after the (re-)list");

    let (request, send) = handle.next_request().await.expect("the watch");
    let query = request.uri().query().unwrap_or_default().to_string();
    assert!(query.contains("watch=true"), "{query}");
    assert!(
        query.contains("labelSelector=app.kubernetes.io%2Fmanaged-by%3Dalula"),
        "{query}"
    );
    let mut pod = pod_body("Running");
    pod["metadata"]["resourceVersion"] = json!("11");
    let event = serde_json::to_vec(&json!({"type": "MODIFIED", "object": pod})).unwrap();
    send.send_response(
        Response::builder()
            .status(200)
            .body(Body::from(event))
            .unwrap(),
    );
    assert_eq!(rx.recv().await, Some(7), "woken by the pod's change");
    watch.abort();
}

// A kube client needs a runtime even when unused.
#[tokio::test]
async fn runs_container_and_pod_tasks() {
    use alula_idl::flyteidl::core::{task_template::Target, K8sPod, Sql};

    let (plugin, _handle) = plugin();
    assert!(plugin.can_run(&task(&["run"], &[])));
    let mut t = task(&["run"], &[]);
    // flytekit's `@task(pod_template=...)`: a python-task with a pod target.
    t.target = Some(Target::K8sPod(K8sPod::default()));
    assert!(plugin.can_run(&t));
    t.target = Some(Target::Sql(Sql::default()));
    assert!(!plugin.can_run(&t));
    t.target = None;
    assert!(!plugin.can_run(&t));
    assert_eq!(plugin.name(), "k8s");
}

fn with_template(name: &str) -> Attempt {
    let mut t = task(&["run"], &[]);
    t.metadata = Some(alula_idl::flyteidl::core::TaskMetadata {
        pod_template_name: name.into(),
        ..Default::default()
    });
    attempt(t)
}

const TEMPLATES: &str = "/api/v1/namespaces/flyte/podtemplates";

#[tokio::test]
async fn a_named_pod_template_is_read_once_and_merged() {
    let (plugin, handle) = plugin();
    let server = tokio::spawn(async move {
        let template = json!({"apiVersion": "v1", "kind": "PodTemplate",
            "metadata": {"name": "gpu", "namespace": "flyte"},
            "template": {"spec": {"containers": [], "priorityClassName": "gpu-high"}}});
        let (handle, _) = serve(handle, "GET", format!("{TEMPLATES}/gpu"), 200, template).await;
        let (handle, first) = serve(handle, "POST", PODS.into(), 201, pod_body("Pending")).await;
        // The second attempt reuses the cached template: its create is the next request.
        let (_, second) = serve(handle, "POST", PODS.into(), 201, pod_body("Pending")).await;
        (first, second)
    });
    let (w, _rx) = waker();
    plugin
        .start(&with_template("gpu"), w.clone())
        .await
        .unwrap();
    let mut b = with_template("gpu");
    b.node_id = "n1".into();
    plugin.start(&b, w).await.unwrap();
    let (first, second) = server.await.unwrap();
    for sent in [first, second] {
        assert_eq!(sent.unwrap()["spec"]["priorityClassName"], "gpu-high");
    }
}

#[tokio::test]
async fn a_missing_named_template_fails_the_attempt_and_the_default_is_optional() {
    let mut cfg = config();
    cfg.default_pod_template_name = Some("platform".into());
    let (plugin, handle) = plugin_with(cfg);
    let server = tokio::spawn(async move {
        let missing = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "reason": "NotFound", "code": 404});
        let (handle, _) = serve(
            handle,
            "GET",
            format!("{TEMPLATES}/nope"),
            404,
            missing.clone(),
        )
        .await;
        // The default that does not exist (yet) is no template.
        let (handle, _) = serve(handle, "GET", format!("{TEMPLATES}/platform"), 404, missing).await;
        serve(handle, "POST", PODS.into(), 201, pod_body("Pending")).await
    });
    let (w, _rx) = waker();
    match plugin.start(&with_template("nope"), w.clone()).await {
        Err(PluginError::Invalid(e)) => {
            assert!(e.contains("\"nope\"") && e.contains("flyte"), "{e}")
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    plugin
        .start(&attempt(task(&["run"], &[])), w)
        .await
        .unwrap();
    let (_, sent) = server.await.unwrap();
    assert!(sent.unwrap()["spec"].get("priorityClassName").is_none());
}
