//! `DataProxyService` downloads and `GetData` through a real tonic client, with the signed
//! download URLs fetched over HTTP (hyper), on both backends.
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
use alula_idl::flyteidl::core::{NodeExecutionIdentifier, ResourceType, SimpleType};
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
    let object = s.storage.join("decks").join("deck.html");
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

on_both_backends!(
    signed_downloads_serve_stored_objects,
    get_data_reads_execution_inputs,
);
