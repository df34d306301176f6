//! Protocol-level faults through a real tonic client: undecodable request bytes, oversized
//! input echoed in errors, and identifiers flyteadmin would refuse. Each must come back as
//! INVALID_ARGUMENT with a short message naming the fault, never INTERNAL or UNKNOWN.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use alula_admin::Store;
use alula_idl::flyteidl::admin::{
    NamedEntityIdentifier, ObjectGetRequest, ResourceListRequest, TaskCreateRequest, TaskSpec,
};
use alula_idl::flyteidl::core::{Identifier, ResourceType};
use alula_idl::flyteidl::service::admin_service_client::AdminServiceClient;
use alula_idl::raw_codec::RawCodec;
use common::builders::*;
use common::server::TestServer;
use tonic::{Code, Status};

async fn raw_call(grpc_url: &str, method: &str, body: Vec<u8>) -> Result<Vec<u8>, Status> {
    let channel = tonic::transport::Endpoint::from_shared(grpc_url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    grpc.unary(tonic::Request::new(body), method.parse().unwrap(), RawCodec)
        .await
        .map(tonic::Response::into_inner)
}

/// Field 1, length-delimited, announcing 4 GiB that never come: no message type decodes it.
const GARBAGE: &[u8] = b"\x0a\xff\xff\xff\xff\x0f";

async fn undecodable_requests_are_invalid_arguments(store: Store) {
    let s = TestServer::start(store).await;
    // One method of every service the gRPC port serves.
    for method in [
        "/flyteidl.service.AdminService/CreateTask",
        "/flyteidl.service.AdminService/ListExecutions",
        "/flyteidl.service.DataProxyService/CreateUploadLocation",
        "/flyteidl.service.SignalService/SetSignal",
        "/flyteidl.service.AuthMetadataService/GetOAuth2Metadata",
        "/flyteidl.service.IdentityService/UserInfo",
        "/grpc.health.v1.Health/Check",
    ] {
        let err = raw_call(&s.grpc_url, method, GARBAGE.to_vec())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{method}: {err:?}");
        assert!(
            err.message().contains("request") && err.message().contains("decode"),
            "{method}: {}",
            err.message()
        );
    }
    // The connection still serves well-formed calls.
    let ok = raw_call(&s.grpc_url, "/grpc.health.v1.Health/Check", Vec::new()).await;
    assert!(ok.is_ok(), "{ok:?}");
}

async fn echoed_input_is_bounded(store: Store) {
    let s = TestServer::start(store).await;
    let mut client = AdminServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    // Malformed (no closing parenthesis, no field): the message quotes the filter.
    for filters in [
        format!("eq(name,{}", "x".repeat(100_000)),
        format!("nope({})", "y".repeat(100_000)),
        format!("eq(created_at,{})", "z".repeat(100_000)),
    ] {
        let err = client
            .list_tasks(ResourceListRequest {
                id: Some(NamedEntityIdentifier {
                    project: PROJECT.into(),
                    domain: DOMAIN.into(),
                    name: "t".into(),
                    org: String::new(),
                }),
                limit: 10,
                filters,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{:.200}", err.message());
        assert!(err.message().len() < 4096, "{} bytes", err.message().len());
        assert!(err.message().contains("filter"), "{}", err.message());
    }
}

fn bad_task(mutate: impl FnOnce(&mut Identifier)) -> TaskCreateRequest {
    let mut task = int_task("t", "v1", "img:1");
    let mut task_id = task.id.clone().unwrap();
    mutate(&mut task_id);
    task.id = Some(task_id.clone());
    TaskCreateRequest {
        id: Some(task_id),
        spec: Some(TaskSpec {
            template: Some(task),
            description: None,
        }),
    }
}

async fn identifiers_are_validated(store: Store) {
    let s = TestServer::start(store).await;
    let mut client = AdminServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let long = "a".repeat(10_000);
    let cases = [
        ("name", "t\0x"),
        ("name", "t\nx"),
        ("name", "../../etc/passwd"),
        ("name", "a\\b"),
        ("name", ".."),
        ("name", long.as_str()),
        ("version", "v\u{0}1"),
        ("version", "v1\n"),
        ("version", "../v1"),
        ("version", "v 1"),
        ("version", long.as_str()),
        ("project", "../flytesnacks"),
        ("project", "flyte\0snacks"),
        ("project", long.as_str()),
        ("domain", "development\n"),
        ("domain", "../development"),
    ];
    for (field, value) in cases {
        let request = bad_task(|id| {
            let part = match field {
                "name" => &mut id.name,
                "version" => &mut id.version,
                "project" => &mut id.project,
                _ => &mut id.domain,
            };
            *part = value.to_string();
        });
        let shown = format!("{:.80?}", request.id);
        let err = client.create_task(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{shown}: {err:?}");
        assert!(
            err.message().contains(&format!("task id {field}")),
            "{shown}: {}",
            err.message()
        );
        assert!(err.message().len() < 1024, "{shown}: {}", err.message());
    }

    // Reads validate the same way rather than answering NOT_FOUND for impossible names.
    let err = client
        .get_task(ObjectGetRequest {
            id: Some(id(ResourceType::Task, "t\nx", "v1")),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("task id name"), "{}", err.message());

    // What flytekit sends passes: dotted module paths, URL-safe base64, hex, `=` padding.
    for (name, version) in [
        ("workflows.example.my_wf", "Ab-_cD12EfGh34IjKl56Mn"),
        (
            "flytekit.core.array_node_map_task.mapper_t1_0",
            "0123456789abcdef",
        ),
        ("my-container-task", "v1.2.3"),
        ("flows.flytekit_flows.chain", "dGVzdA=="),
    ] {
        client
            .create_task(bad_task(|id| {
                id.name = name.into();
                id.version = version.into();
            }))
            .await
            .unwrap_or_else(|e| panic!("{name}@{version}: {e:?}"));
    }
}

on_both_backends!(
    undecodable_requests_are_invalid_arguments,
    echoed_input_is_bounded,
    identifiers_are_validated,
);
