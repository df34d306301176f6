//! `DataProxyService` over object storage: presigned S3 uploads and downloads when
//! `ALULA_TEST_S3_ENDPOINT` names an S3-compatible server (scripts/test starts moto), and, on
//! every storage, `GetData` and deck links for data admin knows only by URI.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use std::sync::Arc;

use alula_admin::{app, AdminConfig, Store};
use alula_idl::flyteidl::admin::{
    self as admin, NodeExecutionEventRequest, TaskCreateRequest, TaskSpec,
};
use alula_idl::flyteidl::core::{
    node_execution, NodeExecutionIdentifier, WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::event::{node_execution_event, NodeExecutionEvent};
use alula_idl::flyteidl::service::admin_service_client::AdminServiceClient;
use alula_idl::flyteidl::service::data_proxy_service_client::DataProxyServiceClient;
use alula_idl::flyteidl::service::{
    create_download_link_request::Source, get_data_response::Data, ArtifactType,
    CreateDownloadLinkRequest, CreateDownloadLocationRequest, CreateUploadLocationRequest,
    GetDataRequest,
};
use alula_storage::Storage;
use base64::Engine;
use common::builders::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::Code;

fn s3_endpoint() -> Option<String> {
    std::env::var("ALULA_TEST_S3_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
}

/// A bucket of its own on the test endpoint (moto accepts the unsigned create).
async fn s3_storage(endpoint: &str) -> Storage {
    let bucket = format!("alula-dataproxy-{:x}", rand::random::<u64>());
    let (status, body) = send("PUT", &format!("{endpoint}/{bucket}"), &[], Vec::new()).await;
    assert_eq!(status, 200, "creating bucket {bucket}: {body:?}");
    Storage::from_url_with(
        &format!("s3://{bucket}/some/prefix"),
        [
            ("aws_endpoint", endpoint),
            ("aws_allow_http", "true"),
            ("aws_access_key_id", "test"),
            ("aws_secret_access_key", "test"),
            ("aws_region", "us-east-1"),
        ],
    )
    .unwrap()
}

struct Server {
    grpc_url: String,
    storage: Storage,
    folder: std::path::PathBuf,
    _stop: oneshot::Sender<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Best effort: the folder exists only if something was written locally.
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// An admin server whose object storage is `storage` (its own local folder when `None`).
async fn start(store: Store, storage: Option<Storage>) -> Server {
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_url = format!("http://{}", grpc.local_addr().unwrap());
    let http_url = format!("http://{}", http.local_addr().unwrap());
    let folder =
        std::env::temp_dir().join(format!("alula-dataproxy-test-{:x}", rand::random::<u64>()));
    let mut config = AdminConfig::new(folder.clone(), http_url, b"k".to_vec());
    if let Some(storage) = storage {
        config.storage = storage;
    }
    let storage = config.storage.clone();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app::serve(
        store,
        Arc::new(config),
        grpc,
        http,
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        grpc_url,
        storage,
        folder,
        _stop: stop,
    }
}

/// One HTTP/1.1 request; returns the status and body.
async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(format!("/{path}"))
        .header("host", host);
    for (name, value) in headers {
        request = request.header(*name, value.as_str());
    }
    let response = sender
        .send_request(request.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body.to_vec())
}

fn md5_of(body: &[u8]) -> Vec<u8> {
    <md5::Md5 as md5::Digest>::digest(body).to_vec()
}

fn content_md5(md5: &[u8]) -> (&'static str, String) {
    (
        "content-md5",
        base64::engine::general_purpose::STANDARD.encode(md5),
    )
}

// CreateDownloadLocation is deprecated in flyteidl but still served for older clients.
#[allow(deprecated)]
async fn s3_uploads_and_downloads_are_presigned(store: Store) {
    let Some(endpoint) = s3_endpoint() else {
        eprintln!("SKIPPED: ALULA_TEST_S3_ENDPOINT is not set");
        return;
    };
    let s = start(store, Some(s3_storage(&endpoint).await)).await;
    let mut proxy = DataProxyServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let body = b"fast register tarball".to_vec();
    let md5 = md5_of(&body);
    let loc = proxy
        .create_upload_location(CreateUploadLocationRequest {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            filename: "pkg.tar.gz".into(),
            content_md5: md5.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let key = format!("uploads/{PROJECT}/{DOMAIN}/{}/pkg.tar.gz", hex(&md5));
    assert_eq!(loc.native_url, s.storage.uri(&key));
    assert!(
        loc.native_url.starts_with("s3://alula-dataproxy-"),
        "{}",
        loc.native_url
    );
    // Presigned by the bucket, with the MD5 bound into the signature.
    assert!(loc.signed_url.starts_with(&endpoint), "{}", loc.signed_url);
    assert!(
        loc.signed_url
            .contains("X-Amz-SignedHeaders=content-md5%3Bhost"),
        "{}",
        loc.signed_url
    );
    assert_eq!(loc.headers.get("Content-MD5"), Some(&content_md5(&md5).1));

    // S3 refuses a body that does not match the signed Content-MD5 (BadDigest) and a request
    // without the header (the signature breaks); moto checks neither, so this suite can only
    // see that the URL binds the header, above, and that the intended upload lands.
    assert_eq!(s.storage.get(&key).await.unwrap(), None);
    let (status, response) = send("PUT", &loc.signed_url, &[content_md5(&md5)], body.clone()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&response));
    assert_eq!(
        s.storage.get(&key).await.unwrap().as_deref(),
        Some(&body[..])
    );

    // Without an MD5 the upload is placed by filename_root and signed without the header.
    let loc = proxy
        .create_upload_location(CreateUploadLocationRequest {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            filename: "data.bin".into(),
            filename_root: "root".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(loc.headers.is_empty());
    assert!(
        loc.signed_url.contains("X-Amz-SignedHeaders=host"),
        "{}",
        loc.signed_url
    );
    let (status, _) = send("PUT", &loc.signed_url, &[], b"unchecked".to_vec()).await;
    assert_eq!(status, 200);
    assert_eq!(
        s.storage
            .get(&format!("uploads/{PROJECT}/{DOMAIN}/root/data.bin"))
            .await
            .unwrap()
            .as_deref(),
        Some(&b"unchecked"[..])
    );

    let download = proxy
        .create_download_location(CreateDownloadLocationRequest {
            native_url: s.storage.uri(&key),
            expires_in: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        download.signed_url.starts_with(&endpoint),
        "{}",
        download.signed_url
    );
    assert_eq!(
        send("GET", &download.signed_url, &[], Vec::new()).await,
        (200, body)
    );

    for outside in ["s3://another-bucket/some/prefix/x", "file:///etc/passwd"] {
        let err = proxy
            .create_download_location(CreateDownloadLocationRequest {
                native_url: outside.into(),
                expires_in: None,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{outside}");
        assert!(err.message().contains("outside"), "{}", err.message());
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A single-task execution whose node reported its inputs, outputs and deck only as URIs of
/// objects in the storage (as a task writing to object storage does).
async fn node_data_is_read_from_storage(s: &Server) {
    let mut client = AdminServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let task = int_task("t", "v1", "img:1");
    let task_id = task.id.clone().unwrap();
    client
        .create_task(TaskCreateRequest {
            id: Some(task_id.clone()),
            spec: Some(TaskSpec {
                template: Some(task),
                description: None,
            }),
        })
        .await
        .unwrap();
    client
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

    let prefix = "metadata/e1/n0";
    let inputs = literals(&[("a", int_literal(1))]);
    let outputs = literals(&[("o0", int_literal(42))]);
    let store = |key: &str, bytes: Vec<u8>| {
        let storage = s.storage.clone();
        let key = key.to_string();
        async move { storage.put(&key, bytes.into()).await.unwrap() }
    };
    store(&format!("{prefix}/inputs.pb"), inputs.encode_to_vec()).await;
    store(&format!("{prefix}/outputs.pb"), outputs.encode_to_vec()).await;
    store(
        &format!("{prefix}/deck.html"),
        b"<html>deck</html>".to_vec(),
    )
    .await;

    let exec = WorkflowExecutionIdentifier {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: "e1".into(),
        org: String::new(),
    };
    let node = NodeExecutionIdentifier {
        node_id: "n0".into(),
        execution_id: Some(exec),
    };
    let event = |phase: node_execution::Phase, seconds: i64| NodeExecutionEvent {
        id: Some(node.clone()),
        producer_id: "propeller".into(),
        phase: phase as i32,
        occurred_at: Some(alula_idl::wkt::Timestamp { seconds, nanos: 0 }),
        spec_node_id: "n0".into(),
        input_value: Some(node_execution_event::InputValue::InputUri(
            s.storage.uri(&format!("{prefix}/inputs.pb")),
        )),
        ..Default::default()
    };
    for event in [
        event(node_execution::Phase::Running, 1_700_000_000),
        NodeExecutionEvent {
            output_result: Some(node_execution_event::OutputResult::OutputUri(
                s.storage.uri(&format!("{prefix}/outputs.pb")),
            )),
            deck_uri: s.storage.uri(&format!("{prefix}/deck.html")),
            ..event(node_execution::Phase::Succeeded, 1_700_000_001)
        },
    ] {
        client
            .create_node_event(NodeExecutionEventRequest {
                request_id: String::new(),
                event: Some(event),
            })
            .await
            .unwrap();
    }

    let mut proxy = DataProxyServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let base = format!("flyte://v1/{PROJECT}/{DOMAIN}/e1/n0");
    let reader = proxy.clone();
    let get = |url: String| {
        let mut proxy = reader.clone();
        async move {
            proxy
                .get_data(GetDataRequest { flyte_url: url })
                .await
                .map(|r| r.into_inner().data.unwrap())
        }
    };
    match get(format!("{base}/o")).await.unwrap() {
        Data::LiteralMap(map) => assert_eq!(map, outputs),
        other => panic!("expected a literal map, got {other:?}"),
    }
    match get(format!("{base}/o/o0")).await.unwrap() {
        Data::Literal(literal) => assert_eq!(literal, int_literal(42)),
        other => panic!("expected a literal, got {other:?}"),
    }
    match get(format!("{base}/i")).await.unwrap() {
        Data::LiteralMap(map) => assert_eq!(map, inputs),
        other => panic!("expected a literal map, got {other:?}"),
    }
    let deck_url = match get(format!("{base}/d")).await.unwrap() {
        Data::PreSignedUrls(urls) => urls.signed_url[0].clone(),
        other => panic!("expected deck URLs, got {other:?}"),
    };
    assert_eq!(
        send("GET", &deck_url, &[], Vec::new()).await,
        (200, b"<html>deck</html>".to_vec())
    );
    let link = proxy
        .create_download_link(CreateDownloadLinkRequest {
            artifact_type: ArtifactType::Deck as i32,
            expires_in: None,
            source: Some(Source::NodeExecutionId(node.clone())),
        })
        .await
        .unwrap()
        .into_inner();
    let urls = link.pre_signed_urls.unwrap();
    assert_eq!(
        send("GET", &urls.signed_url[0], &[], Vec::new()).await,
        (200, b"<html>deck</html>".to_vec())
    );

    // The recorded object vanished: the error names it.
    s.storage
        .delete(&format!("{prefix}/outputs.pb"))
        .await
        .unwrap();
    let err = get(format!("{base}/o")).await.unwrap_err();
    assert!(err.message().contains("outputs.pb"), "{}", err.message());
}

async fn get_data_reads_uris_from_local_storage(store: Store) {
    let s = start(store, None).await;
    node_data_is_read_from_storage(&s).await;
}

async fn get_data_reads_uris_from_s3(store: Store) {
    let Some(endpoint) = s3_endpoint() else {
        eprintln!("SKIPPED: ALULA_TEST_S3_ENDPOINT is not set");
        return;
    };
    let s = start(store, Some(s3_storage(&endpoint).await)).await;
    node_data_is_read_from_storage(&s).await;
}

on_both_backends!(
    s3_uploads_and_downloads_are_presigned,
    get_data_reads_uris_from_local_storage,
    get_data_reads_uris_from_s3,
);
