//! `DataProxyService` downloads and `GetData` through a real tonic client, with the signed
//! download URLs fetched over HTTP (hyper), on both backends.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use alula_admin::Store;
use alula_idl::flyteidl::admin::{
    self as admin, LaunchPlanCreateRequest, LaunchPlanSpec, NodeExecutionEventRequest,
    TaskCreateRequest, TaskSpec, WorkflowCreateRequest, WorkflowSpec,
};
use alula_idl::flyteidl::core::{
    node_execution, NodeExecutionIdentifier, ResourceType, SimpleType, WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::event::{node_execution_event, NodeExecutionEvent};
use alula_idl::flyteidl::service::admin_service_client::AdminServiceClient;
use alula_idl::flyteidl::service::data_proxy_service_client::DataProxyServiceClient;
use alula_idl::flyteidl::service::{
    create_download_link_request::Source, get_data_response::Data, ArtifactType,
    CreateDownloadLinkRequest, CreateDownloadLocationRequest, GetDataRequest,
};
use common::builders::*;
use common::server::TestServer;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tonic::Code;

/// GETs `url`; returns the status and body.
async fn fetch(url: &str) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = hyper::Request::get(format!("/{path}"))
        .header("host", host)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body.to_vec())
}

// CreateDownloadLocation is deprecated in flyteidl but still served for older clients.
#[allow(deprecated)]
async fn signed_downloads_serve_stored_objects(store: Store) {
    let s = TestServer::start(store).await;
    let mut proxy = DataProxyServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let object = s
        .storage
        .join("metadata/flytesnacks/development/e1/n0/0/deck.html");
    std::fs::create_dir_all(object.parent().unwrap()).unwrap();
    std::fs::write(&object, b"<html>deck</html>").unwrap();

    let loc = proxy
        .create_download_location(CreateDownloadLocationRequest {
            native_url: format!("file://{}", object.display()),
            expires_in: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(loc.expires_at.is_some());
    assert_eq!(
        fetch(&loc.signed_url).await,
        (200, b"<html>deck</html>".to_vec())
    );
    let tampered = loc.signed_url.replace("signature=", "signature=00");
    assert_eq!(fetch(&tampered).await.0, 403);
    let other = loc.signed_url.replace("deck.html", "other.html");
    assert_eq!(fetch(&other).await.0, 403);

    let err = proxy
        .create_download_location(CreateDownloadLocationRequest {
            native_url: "file:///etc/passwd".into(),
            expires_in: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("outside"), "{}", err.message());

    // A deck link for a node execution admin has never heard of.
    let err = proxy
        .create_download_link(CreateDownloadLinkRequest {
            artifact_type: ArtifactType::Deck as i32,
            expires_in: None,
            source: Some(Source::NodeExecutionId(NodeExecutionIdentifier {
                node_id: "n0".into(),
                execution_id: Some(alula_idl::flyteidl::core::WorkflowExecutionIdentifier {
                    project: PROJECT.into(),
                    domain: DOMAIN.into(),
                    name: "nope".into(),
                    org: String::new(),
                }),
            })),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{}", err.message());
    let err = proxy
        .create_download_link(CreateDownloadLinkRequest {
            artifact_type: ArtifactType::Undefined as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("artifact_type"), "{}", err.message());
}

async fn get_data_reads_execution_inputs(store: Store) {
    let s = TestServer::start(store).await;
    let mut admin_client = AdminServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let task = int_task("t", "v1", "img:1");
    let task_id = task.id.clone().unwrap();
    admin_client
        .create_task(TaskCreateRequest {
            id: Some(task_id.clone()),
            spec: Some(TaskSpec {
                template: Some(task),
                description: None,
            }),
        })
        .await
        .unwrap();
    let wf = one_node_workflow("wf", "v1", &task_id, SimpleType::Integer);
    let wf_id = wf.id.clone().unwrap();
    admin_client
        .create_workflow(WorkflowCreateRequest {
            id: Some(wf_id.clone()),
            spec: Some(WorkflowSpec {
                template: Some(wf),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let lp_id = id(ResourceType::LaunchPlan, "lp", "v1");
    admin_client
        .create_launch_plan(LaunchPlanCreateRequest {
            id: Some(lp_id.clone()),
            spec: Some(LaunchPlanSpec {
                workflow_id: Some(wf_id),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    admin_client
        .create_execution(admin::ExecutionCreateRequest {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            name: "e1".into(),
            spec: Some(admin::ExecutionSpec {
                launch_plan: Some(lp_id),
                ..Default::default()
            }),
            inputs: Some(literals(&[("x", int_literal(7))])),
            org: String::new(),
        })
        .await
        .unwrap();

    let mut proxy = DataProxyServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let get = |url: String| {
        let mut proxy = proxy.clone();
        async move {
            proxy
                .get_data(GetDataRequest { flyte_url: url })
                .await
                .map(|r| r.into_inner().data.unwrap())
        }
    };
    let base = format!("flyte://v1/{PROJECT}/{DOMAIN}/e1");
    match get(format!("{base}/i")).await.unwrap() {
        Data::LiteralMap(map) => assert_eq!(map.literals["x"], int_literal(7)),
        other => panic!("expected a literal map, got {other:?}"),
    }
    match get(format!("{base}/i/x")).await.unwrap() {
        Data::Literal(literal) => assert_eq!(literal, int_literal(7)),
        other => panic!("expected a literal, got {other:?}"),
    }
    let err = get(format!("{base}/i/y")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("\"y\""), "{}", err.message());
    // Nothing has run, so there are no outputs yet.
    let err = get(format!("{base}/o")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.message().contains("outputs of execution"),
        "{}",
        err.message()
    );
    let err = get(format!("flyte://v1/{PROJECT}/{DOMAIN}/missing/i"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = get("s3://bucket/key".into()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = get(format!("{base}/n0/0/o")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    proxy.get_data(GetDataRequest::default()).await.unwrap_err();
}

/// A signature for `object` made with the test server's key, as only admin could make one:
/// the serving side must refuse what signing would have refused.
fn forged_download_url(s: &TestServer, object: &str) -> String {
    use hmac::Mac;
    let expires = chrono::Utc::now().timestamp() + 600;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(b"test-key").unwrap();
    mac.update(format!("download\n{object}\n{expires}").as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{}/download/{object}?expires={expires}&signature={signature}",
        s.http_url
    )
}

/// Only data objects (`metadata/`, `raw/`, `uploads/`) are signed and served; the database and
/// other files under the storage root are not, and no symbolic link is followed.
// CreateDownloadLocation is deprecated in flyteidl but still served for older clients.
#[allow(deprecated)]
async fn only_data_objects_are_signed_and_served(store: Store) {
    let s = TestServer::start(store).await;
    let mut proxy = DataProxyServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let outside = std::env::temp_dir().join(format!("alula-outside-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), b"top secret").unwrap();
    let data = s.storage.join("metadata/flytesnacks/development/e1/n0/0");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(s.storage.join("work")).unwrap();
    std::fs::write(s.storage.join("alula.db"), b"SQLite format 3").unwrap();
    std::fs::write(s.storage.join("work/log"), b"task log").unwrap();
    std::fs::write(data.join("deck.html"), b"<html>deck</html>").unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), data.join("escape.txt")).unwrap();
    std::os::unix::fs::symlink(&outside, data.join("escape-dir")).unwrap();
    std::os::unix::fs::symlink(s.storage.join("alula.db"), data.join("db-link")).unwrap();
    let sign = |native_url: String| {
        let mut proxy = proxy.clone();
        async move {
            proxy
                .create_download_location(CreateDownloadLocationRequest {
                    native_url,
                    expires_in: None,
                })
                .await
        }
    };
    let root = s.storage.display().to_string();
    for (url, why) in [
        (format!("file://{root}/alula.db"), "not a data object"),
        (format!("{root}/alula.db"), "not a data object"),
        (format!("file://{root}/work/log"), "not a data object"),
        (
            format!("file://{}/escape.txt", data.display()),
            "symbolic link",
        ),
        (
            format!("file://{}/escape-dir/secret.txt", data.display()),
            "symbolic link",
        ),
        (
            format!("file://{}/db-link", data.display()),
            "symbolic link",
        ),
    ] {
        let err = sign(url.clone()).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{url}: {err:?}");
        assert!(err.message().contains(why), "{url}: {}", err.message());
    }

    // The serving side refuses the same objects, whoever signed the URL.
    let prefix = "metadata/flytesnacks/development/e1/n0/0";
    for object in [
        "alula.db".to_string(),
        format!("{prefix}/escape.txt"),
        format!("{prefix}/escape-dir/secret.txt"),
        format!("{prefix}/db-link"),
    ] {
        let (status, body) = fetch(&forged_download_url(&s, &object)).await;
        assert_eq!(status, 403, "{object}: {}", String::from_utf8_lossy(&body));
        assert!(!body.starts_with(b"top secret") && !body.starts_with(b"SQLite"));
    }
    assert_eq!(
        fetch(&forged_download_url(&s, &format!("{prefix}/deck.html"))).await,
        (200, b"<html>deck</html>".to_vec())
    );

    // A URL signed for a plain file stops working once the file is swapped for a link.
    let url = sign(format!("file://{}/deck.html", data.display()))
        .await
        .unwrap()
        .into_inner()
        .signed_url;
    std::fs::remove_file(data.join("deck.html")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), data.join("deck.html")).unwrap();
    let (status, body) = fetch(&url).await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));

    // A deck or output recorded at a non-data object is neither linked nor read.
    let mut admin_client = AdminServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let task = int_task("t", "v1", "img:1");
    let task_id = task.id.clone().unwrap();
    admin_client
        .create_task(TaskCreateRequest {
            id: Some(task_id.clone()),
            spec: Some(TaskSpec {
                template: Some(task),
                description: None,
            }),
        })
        .await
        .unwrap();
    admin_client
        .create_execution(admin::ExecutionCreateRequest {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            name: "e1".into(),
            spec: Some(admin::ExecutionSpec {
                launch_plan: Some(task_id),
                ..Default::default()
            }),
            inputs: Some(literals(&[("a", int_literal(1))])),
            org: String::new(),
        })
        .await
        .unwrap();
    let node = NodeExecutionIdentifier {
        node_id: "n0".into(),
        execution_id: Some(WorkflowExecutionIdentifier {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            name: "e1".into(),
            org: String::new(),
        }),
    };
    let db = format!("{root}/alula.db");
    for (phase, seconds) in [
        (node_execution::Phase::Running, 1_700_000_000),
        (node_execution::Phase::Succeeded, 1_700_000_001),
    ] {
        admin_client
            .create_node_event(NodeExecutionEventRequest {
                request_id: String::new(),
                event: Some(NodeExecutionEvent {
                    id: Some(node.clone()),
                    producer_id: "propeller".into(),
                    phase: phase as i32,
                    occurred_at: Some(alula_idl::wkt::Timestamp { seconds, nanos: 0 }),
                    spec_node_id: "n0".into(),
                    input_value: Some(node_execution_event::InputValue::InputUri(db.clone())),
                    output_result: (phase == node_execution::Phase::Succeeded)
                        .then(|| node_execution_event::OutputResult::OutputUri(db.clone())),
                    deck_uri: db.clone(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    let err = proxy
        .create_download_link(CreateDownloadLinkRequest {
            artifact_type: ArtifactType::Deck as i32,
            expires_in: None,
            source: Some(Source::NodeExecutionId(node)),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().contains("not a data object"),
        "{}",
        err.message()
    );
    for what in ["o", "i", "d"] {
        let err = proxy
            .get_data(GetDataRequest {
                flyte_url: format!("flyte://v1/{PROJECT}/{DOMAIN}/e1/n0/{what}"),
            })
            .await
            .unwrap_err();
        assert!(
            matches!(err.code(), Code::InvalidArgument | Code::FailedPrecondition),
            "{what}: {err:?}"
        );
        assert!(
            err.message().contains("not a data object"),
            "{what}: {}",
            err.message()
        );
    }
    let _ = std::fs::remove_dir_all(&outside);
}

on_both_backends!(
    signed_downloads_serve_stored_objects,
    only_data_objects_are_signed_and_served,
    get_data_reads_execution_inputs,
);
