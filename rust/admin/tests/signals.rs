//! SignalService, the auth discovery services and `/metrics` through real clients against an
//! in-process server; the store-backed ones on both backends.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use alula_admin::Store;
use alula_idl::flyteidl::admin::{
    self as admin, SignalGetOrCreateRequest, SignalListRequest, SignalSetRequest,
    TaskCreateRequest, TaskSpec,
};
use alula_idl::flyteidl::core::{
    literal, primitive, scalar, Literal, Primitive, Scalar, SignalIdentifier, SimpleType,
    WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::service::admin_service_client::AdminServiceClient;
use alula_idl::flyteidl::service::auth_metadata_service_client::AuthMetadataServiceClient;
use alula_idl::flyteidl::service::identity_service_client::IdentityServiceClient;
use alula_idl::flyteidl::service::signal_service_client::SignalServiceClient;
use alula_idl::flyteidl::service::{
    OAuth2MetadataRequest, PublicClientAuthConfigRequest, UserInfoRequest,
};
use common::builders::*;
use common::server::TestServer;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tonic::transport::Channel;
use tonic::Code;

fn execution_id(name: &str) -> WorkflowExecutionIdentifier {
    WorkflowExecutionIdentifier {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        org: String::new(),
    }
}

fn signal_id(execution: &str, signal: &str) -> Option<SignalIdentifier> {
    Some(SignalIdentifier {
        signal_id: signal.into(),
        execution_id: Some(execution_id(execution)),
    })
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

/// Registers task `t@v1` and starts execution `name` of it.
async fn start_execution(admin: &mut AdminServiceClient<Channel>, name: &str) {
    let task = int_task("t", "v1", "img:1");
    let created = admin
        .create_task(TaskCreateRequest {
            id: task.id.clone(),
            spec: Some(TaskSpec {
                template: Some(task.clone()),
                description: None,
            }),
        })
        .await;
    assert!(
        created.is_ok() || created.unwrap_err().code() == Code::AlreadyExists,
        "task registration failed"
    );
    admin
        .create_execution(admin::ExecutionCreateRequest {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            name: name.into(),
            spec: Some(admin::ExecutionSpec {
                launch_plan: task.id.clone(),
                ..Default::default()
            }),
            inputs: Some(literals(&[("a", int_literal(1))])),
            org: String::new(),
        })
        .await
        .unwrap();
}

async fn signals_are_created_listed_and_set_once(store: Store) {
    let s = TestServer::start(store).await;
    let mut admin = AdminServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let mut signals = SignalServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    start_execution(&mut admin, "gated").await;
    let get_or_create = |signal: &str, t: Option<SimpleType>| SignalGetOrCreateRequest {
        id: signal_id("gated", signal),
        r#type: t.map(simple),
    };

    let created = signals
        .get_or_create_signal(get_or_create("approve", Some(SimpleType::Boolean)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.id, signal_id("gated", "approve"));
    assert_eq!(created.r#type, Some(simple(SimpleType::Boolean)));
    assert_eq!(created.value, None);
    // Asking again returns the stored signal, whatever type is asked for.
    let again = signals
        .get_or_create_signal(get_or_create("approve", Some(SimpleType::Integer)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, created);
    signals
        .get_or_create_signal(get_or_create("comment", Some(SimpleType::String)))
        .await
        .unwrap();

    let err = signals
        .get_or_create_signal(get_or_create("approve", None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("missing type"), "{}", err.message());
    let err = signals
        .get_or_create_signal(SignalGetOrCreateRequest {
            id: signal_id("nosuch", "approve"),
            r#type: Some(simple(SimpleType::Boolean)),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().contains("nosuch"), "{}", err.message());

    // Lists: all, paged, filtered.
    let list = |limit: u32, token: &str, filters: &str| SignalListRequest {
        workflow_execution_id: Some(execution_id("gated")),
        limit,
        token: token.into(),
        filters: filters.into(),
        sort_by: None,
    };
    let all = signals
        .list_signals(list(10, "", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.signals.len(), 2);
    assert_eq!(all.token, "");
    let page = signals
        .list_signals(list(1, "", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.signals.len(), 1);
    let rest = signals
        .list_signals(list(1, &page.token, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.signals.len(), 1);
    assert_ne!(rest.signals[0].id, page.signals[0].id);
    let filtered = signals
        .list_signals(list(10, "", "eq(signal_id,comment)"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(filtered.signals.len(), 1);
    assert_eq!(filtered.signals[0].id, signal_id("gated", "comment"));
    let err = signals
        .list_signals(list(10, "", "eq(nosuchfield,x)"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    // Set: unknown signal, wrong type and empty values are refused; then set once.
    let set = |signal: &str, value: Option<Literal>| SignalSetRequest {
        id: signal_id("gated", signal),
        value,
    };
    let err = signals
        .set_signal(set("nosuch", Some(bool_literal(true))))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = signals
        .set_signal(set("approve", Some(str_literal("yes"))))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().contains("cannot be cast"),
        "{}",
        err.message()
    );
    let err = signals
        .set_signal(set("approve", Some(Literal::default())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let err = signals.set_signal(set("approve", None)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    signals
        .set_signal(set("approve", Some(bool_literal(true))))
        .await
        .unwrap();
    let stored = signals
        .get_or_create_signal(get_or_create("approve", Some(SimpleType::Boolean)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.value, Some(bool_literal(true)));
    let err = signals
        .set_signal(set("approve", Some(bool_literal(false))))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("already set"), "{}", err.message());
    let stored = signals
        .list_signals(list(10, "", "eq(signal_id,approve)"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.signals[0].value, Some(bool_literal(true)));
}

async fn http_get(s: &TestServer, path: &str) -> (u16, String) {
    let host = s.http_url.strip_prefix("http://").unwrap();
    let stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = hyper::Request::builder()
        .uri(path)
        .header("host", host)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn metrics_count_requests_and_executions(store: Store) {
    let s = TestServer::start(store).await;
    let mut admin = AdminServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    start_execution(&mut admin, "counted").await;
    for _ in 0..2 {
        let err = admin
            .get_execution(admin::WorkflowExecutionGetRequest {
                id: Some(execution_id("nosuch")),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
    }
    admin
        .get_execution(admin::WorkflowExecutionGetRequest {
            id: Some(execution_id("counted")),
        })
        .await
        .unwrap();

    let (status, text) = http_get(&s, "/metrics").await;
    assert_eq!(status, 200);
    let has = |line: &str| text.lines().any(|l| l == line);
    assert!(
        has(
            r#"grpc_server_handled_total{grpc_service="flyteidl.service.AdminService",grpc_method="GetExecution",grpc_code="NotFound"} 2"#
        ),
        "{text}"
    );
    assert!(
        has(
            r#"grpc_server_handled_total{grpc_service="flyteidl.service.AdminService",grpc_method="GetExecution",grpc_code="OK"} 1"#
        ),
        "{text}"
    );
    assert!(
        has(
            r#"grpc_server_handled_total{grpc_service="flyteidl.service.AdminService",grpc_method="CreateExecution",grpc_code="OK"} 1"#
        ),
        "{text}"
    );
    assert!(has(r#"alula_executions{phase="QUEUED"} 1"#), "{text}");
    // Phases no execution is in are series at zero, not missing.
    assert!(has(r#"alula_executions{phase="SUCCEEDED"} 0"#), "{text}");
    assert!(has(r#"alula_executions{phase="TIMED_OUT"} 0"#), "{text}");
}

on_both_backends!(
    signals_are_created_listed_and_set_once,
    metrics_count_requests_and_executions,
);

/// Auth is disabled: no authorization server (NOT_FOUND, so no client starts an auth flow), an
/// empty client config, and everyone is anonymous. No store involved beyond start-up.
#[tokio::test]
async fn auth_discovery_answers_auth_disabled() {
    let db = common::TestDb::sqlite().await;
    let s = TestServer::start(db.store.clone()).await;
    let mut auth = AuthMetadataServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let err = auth
        .get_o_auth2_metadata(OAuth2MetadataRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(
        err.message().contains("authentication disabled"),
        "{}",
        err.message()
    );
    let config = auth
        .get_public_client_config(PublicClientAuthConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(config, Default::default());

    let mut identity = IdentityServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let me = identity
        .user_info(UserInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.subject, "anonymous");
    assert_eq!(me.preferred_username, "anonymous");
    drop(s);
    db.finish().await;
}
