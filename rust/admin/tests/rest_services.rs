//! The REST routes of the services beside AdminService (DataProxyService, SignalService,
//! IdentityService, AuthMetadataService) through a real HTTP client (hyper) against an
//! in-process server: JSON and binary protobuf, bad bodies, unknown routes.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use alula_admin::Store;
use alula_idl::flyteidl::admin::{
    self as admin, SignalGetOrCreateRequest, SignalSetRequest, TaskCreateRequest, TaskSpec,
};
use alula_idl::flyteidl::core::{
    literal, primitive, scalar, Literal, Primitive, Scalar, SignalIdentifier, SimpleType,
    WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::service::admin_service_client::AdminServiceClient;
use alula_idl::flyteidl::service::signal_service_client::SignalServiceClient;
use alula_idl::flyteidl::service::{
    get_data_response::Data, CreateUploadLocationRequest, CreateUploadLocationResponse,
    GetDataResponse, PublicClientAuthConfigResponse, UserInfoResponse,
};
use common::builders::*;
use common::server::TestServer;
use common::TestDb;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use prost::Message;
use serde_json::{json, Value};

const BINARY: &str = "application/octet-stream";
const JSON: &str = "application/json";

struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The JSON body of a reply that must have `status`.
    fn json(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.content_type, JSON, "{}", self.text());
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The binary protobuf body of a 200 reply.
    fn message<M: Message + Default>(&self) -> M {
        assert_eq!(self.status, 200, "{}", self.text());
        assert_eq!(self.content_type, BINARY);
        M::decode(self.body.as_slice()).unwrap()
    }

    /// Asserts a JSON error with gRPC `code` whose message contains `words`.
    fn assert_error(&self, status: u16, code: i32, words: &[&str]) {
        let body = self.json(status);
        assert_eq!(body["code"], code, "{body}");
        let message = body["message"].as_str().unwrap();
        for word in words {
            assert!(message.contains(word), "{word:?} not in {message:?}");
        }
    }
}

/// One HTTP/1 request; `encoding` is both the body's content type and the accepted one.
async fn call(s: &TestServer, method: &str, path: &str, encoding: &str, body: Vec<u8>) -> Reply {
    let host = s.http_url.strip_prefix("http://").unwrap();
    let stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", host)
        .header("content-type", encoding)
        .header("accept", encoding)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        content_type,
        body: body.to_vec(),
    }
}

async fn get(s: &TestServer, path: &str, encoding: &str) -> Reply {
    call(s, "GET", path, encoding, Vec::new()).await
}

async fn post_json(s: &TestServer, path: &str, body: Value) -> Reply {
    call(s, "POST", path, JSON, body.to_string().into_bytes()).await
}

fn execution_id(name: &str) -> WorkflowExecutionIdentifier {
    WorkflowExecutionIdentifier {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        org: String::new(),
    }
}

/// Registers task `t@v1` and starts execution `name` of it with `a = 7`.
async fn start_execution(s: &TestServer, name: &str) {
    let mut admin = AdminServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let task = int_task("t", "v1", "img:1");
    admin
        .create_task(TaskCreateRequest {
            id: task.id.clone(),
            spec: Some(TaskSpec {
                template: Some(task.clone()),
                description: None,
            }),
        })
        .await
        .unwrap();
    admin
        .create_execution(admin::ExecutionCreateRequest {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            name: name.into(),
            spec: Some(admin::ExecutionSpec {
                launch_plan: task.id.clone(),
                ..Default::default()
            }),
            inputs: Some(literals(&[("a", int_literal(7))])),
            org: String::new(),
        })
        .await
        .unwrap();
}

async fn data_proxy_routes(store: Store) {
    let s = TestServer::start(store).await;
    let upload = "/api/v1/dataproxy/artifact_urn";

    // CreateUploadLocation: the whole request is the body, in JSON or binary.
    let reply = post_json(
        &s,
        upload,
        json!({"project": PROJECT, "domain": DOMAIN, "filenameRoot": "root", "filename": "a.txt"}),
    )
    .await;
    let body = reply.json(200);
    assert!(
        body["signedUrl"].as_str().unwrap().contains("a.txt"),
        "{body}"
    );
    assert!(
        body["nativeUrl"].as_str().unwrap().ends_with("root/a.txt"),
        "{body}"
    );
    let request = CreateUploadLocationRequest {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        content_md5: vec![0xab; 16],
        ..Default::default()
    };
    let reply = call(&s, "POST", upload, BINARY, request.encode_to_vec()).await;
    let location: CreateUploadLocationResponse = reply.message();
    assert!(
        location.signed_url.contains(&"ab".repeat(16)),
        "{location:?}"
    );
    assert!(location.expires_at.is_some());
    // The service's own validation, with its message.
    post_json(&s, upload, json!({"project": "..", "domain": DOMAIN}))
        .await
        .assert_error(400, 3, &["project"]);

    // CreateDownloadLocation (GET on the same path) takes its fields from the query.
    get(&s, upload, JSON)
        .await
        .assert_error(400, 3, &["native_url"]);

    // CreateDownloadLink: an artifact type that is not a deck.
    post_json(
        &s,
        "/api/v1/dataproxy/artifact_link",
        json!({"artifactType": "ARTIFACT_TYPE_UNDEFINED"}),
    )
    .await
    .assert_error(400, 3, &["artifact_type"]);

    // GetData: `flyte_url` from the query, escaped as a query value must be.
    start_execution(&s, "e1").await;
    let inputs = format!("flyte%3A%2F%2Fv1%2F{PROJECT}%2F{DOMAIN}%2Fe1%2Fi");
    let body = get(&s, &format!("/api/v1/data?flyte_url={inputs}"), JSON)
        .await
        .json(200);
    assert_eq!(
        body["literalMap"]["literals"]["a"]["scalar"]["primitive"]["integer"], "7",
        "{body}"
    );
    let data: GetDataResponse = get(&s, &format!("/api/v1/data?flyte_url={inputs}%2Fa"), BINARY)
        .await
        .message();
    assert_eq!(data.data, Some(Data::Literal(int_literal(7))));
    get(&s, "/api/v1/data?flyte_url=s3%3A%2F%2Fbucket%2Fkey", JSON)
        .await
        .assert_error(400, 3, &[]);
    let missing = format!("flyte%3A%2F%2Fv1%2F{PROJECT}%2F{DOMAIN}%2Fnope%2Fi");
    get(&s, &format!("/api/v1/data?flyte_url={missing}"), JSON)
        .await
        .assert_error(404, 5, &["nope"]);
}

fn bool_literal(b: bool) -> Literal {
    Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::Primitive(Primitive {
                value: Some(primitive::Value::Boolean(b)),
            })),
        }))),
        ..Default::default()
    }
}

async fn signal_routes(store: Store) {
    let s = TestServer::start(store).await;
    start_execution(&s, "gated").await;
    // GetOrCreateSignal has no REST binding: gate nodes create signals over gRPC.
    let mut signals = SignalServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let id = SignalIdentifier {
        signal_id: "approve".into(),
        execution_id: Some(execution_id("gated")),
    };
    signals
        .get_or_create_signal(SignalGetOrCreateRequest {
            id: Some(id.clone()),
            r#type: Some(simple(SimpleType::Boolean)),
        })
        .await
        .unwrap();

    let list = format!("/api/v1/signals/{PROJECT}/{DOMAIN}/gated?limit=10");
    let body = get(&s, &list, JSON).await.json(200);
    assert_eq!(body["signals"][0]["id"]["signalId"], "approve", "{body}");
    assert!(body["signals"][0].get("value").is_none(), "{body}");
    get(
        &s,
        &format!("/api/v1/signals/{PROJECT}/{DOMAIN}/gated"),
        JSON,
    )
    .await
    .assert_error(400, 3, &["limit"]);

    // SetSignal: a value of the wrong type, then the right one in binary, then again.
    let set = |value: Literal| SignalSetRequest {
        id: Some(id.clone()),
        value: Some(value),
    };
    let wrong = serde_json::to_value(set(str_literal("yes"))).unwrap();
    post_json(&s, "/api/v1/signals", wrong)
        .await
        .assert_error(400, 3, &["cannot be cast"]);
    let reply = call(
        &s,
        "POST",
        "/api/v1/signals",
        BINARY,
        set(bool_literal(true)).encode_to_vec(),
    )
    .await;
    let _: admin::SignalSetResponse = reply.message();
    let again = serde_json::to_value(set(bool_literal(false))).unwrap();
    post_json(&s, "/api/v1/signals", again)
        .await
        .assert_error(400, 9, &["already set"]);
    let stored: admin::SignalList = get(&s, &list, BINARY).await.message();
    assert_eq!(stored.signals[0].value, Some(bool_literal(true)));

    // Bodies that are not the request: not JSON, and protobuf that does not decode.
    call(&s, "POST", "/api/v1/signals", JSON, b"{not json".to_vec())
        .await
        .assert_error(400, 3, &["not JSON"]);
    call(
        &s,
        "POST",
        "/api/v1/signals",
        BINARY,
        vec![0x0a, 0xff, 0x01],
    )
    .await
    .assert_error(400, 3, &["SignalSetRequest"]);
}

on_both_backends!(data_proxy_routes, signal_routes);

/// Neither auth discovery service touches the database, so SQLite alone covers them.
#[tokio::test]
async fn auth_discovery_routes() {
    let db = TestDb::sqlite().await;
    let s = TestServer::start(db.store.clone()).await;

    // flytekit reads this over HTTP: no client id, no scopes, so no auth flow to start.
    let body = get(&s, "/config/v1/flyte_client", JSON).await.json(200);
    assert_eq!(body, json!({}), "{body}");
    let config: PublicClientAuthConfigResponse =
        get(&s, "/config/v1/flyte_client", BINARY).await.message();
    assert_eq!(config, PublicClientAuthConfigResponse::default());

    // No authorization server: RFC 8414's 404.
    get(&s, "/.well-known/oauth-authorization-server", JSON)
        .await
        .assert_error(404, 5, &["authentication disabled"]);

    let body = get(&s, "/me", JSON).await.json(200);
    assert_eq!(body["subject"], "anonymous", "{body}");
    let me: UserInfoResponse = get(&s, "/me", BINARY).await.message();
    assert_eq!(me.preferred_username, "anonymous");
    // A routed path with a verb it has no binding for.
    call(&s, "POST", "/me", JSON, Vec::new())
        .await
        .assert_error(501, 12, &["POST /me"]);

    // Unknown paths under the API prefix get the gateway's JSON 404 naming them ...
    get(&s, "/api/v1/dataproxy/nothing", JSON)
        .await
        .assert_error(404, 5, &["/api/v1/dataproxy/nothing"]);
    // ... while the gateway claims nothing else outside it.
    let reply = get(&s, "/config/v1/other", JSON).await;
    assert_eq!(reply.status, 404);
    assert!(reply.body.is_empty(), "{}", reply.text());

    drop(s);
    db.finish().await;
}
