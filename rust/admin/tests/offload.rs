//! Literal maps too large for a row go to object storage (the row keeps the URI) and come back
//! through GetExecutionData and its node and task variants; small ones stay inline. On both
//! database backends, with a local storage folder and, when `ALULA_TEST_S3_ENDPOINT` names one,
//! an S3-compatible bucket.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use std::sync::Arc;

use alula_admin::store::{ExecutionKey, NodeExecutionKey};
use alula_admin::{AdminApi, AdminConfig, Store};
use alula_idl::flyteidl::admin::{
    self as admin, execution_closure, literal_map_blob, NodeExecutionEventRequest,
    TaskExecutionEventRequest, TaskSpec, WorkflowExecutionEventRequest,
};
use alula_idl::flyteidl::core::{
    node_execution, task_execution, workflow_execution, Identifier, LiteralMap,
    NodeExecutionIdentifier, SimpleType, TaskExecutionIdentifier, WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::event::{
    node_execution_event, task_execution_event, workflow_execution_event, NodeExecutionEvent,
    TaskExecutionEvent, WorkflowExecutionEvent,
};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_idl::wkt::Timestamp;
use alula_storage::Storage;
use common::builders::*;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Above the default 1 MiB inline limit.
const LARGE: usize = 2 << 20;

fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: 1_700_000_000 + seconds,
        nanos: 0,
    })
}

fn exec_id(name: &str) -> WorkflowExecutionIdentifier {
    WorkflowExecutionIdentifier {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        org: String::new(),
    }
}

fn node_id(exec: &str) -> NodeExecutionIdentifier {
    NodeExecutionIdentifier {
        node_id: "n0".into(),
        execution_id: Some(exec_id(exec)),
    }
}

fn text(len: usize, fill: char) -> LiteralMap {
    literals(&[("s", str_literal(&fill.to_string().repeat(len)))])
}

/// An empty bucket on the test S3 endpoint (moto takes unsigned requests).
async fn s3_storage(endpoint: &str) -> Storage {
    let bucket = format!("alula-offload-{:x}", rand::random::<u32>());
    let authority = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut conn = tokio::net::TcpStream::connect(authority).await.unwrap();
    let request = format!(
        "PUT /{bucket} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "creating {bucket}: {response}"
    );
    Storage::from_url_with(
        &format!("s3://{bucket}/alula"),
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

/// Every storage the machine offers, with a name for the executions of each.
async fn storages() -> Vec<(&'static str, Storage)> {
    let local = std::env::temp_dir().join(format!("alula-offload-{:x}", rand::random::<u64>()));
    let mut all = vec![("local", Storage::local(local))];
    if let Some(endpoint) = std::env::var("ALULA_TEST_S3_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
    {
        all.push(("s3", s3_storage(&endpoint).await));
    }
    all
}

fn admin_with(store: &Store, storage: &Storage, max_download_bytes: u64) -> AdminApi {
    let mut config = AdminConfig::new(
        std::env::temp_dir(),
        "http://127.0.0.1:1".into(),
        b"key".to_vec(),
    );
    config.storage = storage.clone();
    config.max_download_bytes = max_download_bytes;
    AdminApi::new(store.clone(), Arc::new(config))
}

/// Registers `text@v1` (a string in, a string out) once per store.
async fn register(api: &AdminApi) -> Identifier {
    api.ensure_default_projects().await.unwrap();
    let mut task = int_task("text", "v1", "img:1");
    task.interface = Some(interface(
        &[("s", SimpleType::String)],
        &[("s", SimpleType::String)],
    ));
    let id = task.id.clone().unwrap();
    let created = AdminService::create_task(
        api,
        tonic::Request::new(admin::TaskCreateRequest {
            id: task.id.clone(),
            spec: Some(TaskSpec {
                template: Some(task),
                description: None,
            }),
        }),
    )
    .await;
    if let Err(status) = created {
        assert_eq!(status.code(), tonic::Code::AlreadyExists, "{status:?}");
    }
    id
}

async fn launch(api: &AdminApi, task: &Identifier, name: &str, inputs: &LiteralMap) {
    AdminService::create_execution(
        api,
        tonic::Request::new(admin::ExecutionCreateRequest {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            name: name.into(),
            spec: Some(admin::ExecutionSpec {
                launch_plan: Some(task.clone()),
                ..Default::default()
            }),
            inputs: Some(inputs.clone()),
            org: String::new(),
        }),
    )
    .await
    .unwrap();
}

async fn execution_data(api: &AdminApi, name: &str) -> admin::WorkflowExecutionGetDataResponse {
    AdminService::get_execution_data(
        api,
        tonic::Request::new(admin::WorkflowExecutionGetDataRequest {
            id: Some(exec_id(name)),
        }),
    )
    .await
    .unwrap()
    .into_inner()
}

/// The stored object a URI names.
async fn object(storage: &Storage, uri: &str) -> Vec<u8> {
    let key = storage
        .key_of(uri)
        .unwrap_or_else(|| panic!("{uri} is not in storage"));
    storage
        .get(&key)
        .await
        .unwrap()
        .expect("the object")
        .to_vec()
}

async fn execution_inputs_are_offloaded_above_the_limit(store: Store) {
    for (kind, storage) in storages().await {
        let api = admin_with(&store, &storage, 10 << 20);
        let task = register(&api).await;
        let big = text(LARGE, 'x');
        let small = text(10, 'y');
        let (big_name, small_name) = (format!("big-{kind}"), format!("small-{kind}"));
        launch(&api, &task, &big_name, &big).await;
        launch(&api, &task, &small_name, &small).await;

        let key = |name: &str| ExecutionKey {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            name: name.into(),
        };
        let row = store.get_execution(&key(&big_name)).await.unwrap().unwrap();
        assert!(
            row.inputs.is_empty() && row.user_inputs.is_empty(),
            "{kind}"
        );
        assert!(
            row.inputs_uri.starts_with(&storage.root_uri()),
            "{kind}: {}",
            row.inputs_uri
        );
        assert_eq!(object(&storage, &row.inputs_uri).await, big.encode_to_vec());
        assert_eq!(
            object(&storage, &row.user_inputs_uri).await,
            big.encode_to_vec()
        );
        // The one reader the propeller uses.
        let resolved = alula_admin::literals::execution_inputs(&storage, &row)
            .await
            .unwrap();
        assert_eq!(resolved, big);

        let row = store
            .get_execution(&key(&small_name))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            row.inputs,
            small.encode_to_vec(),
            "{kind}: small inputs stay inline"
        );
        assert_eq!(
            (row.inputs_uri.as_str(), row.user_inputs_uri.as_str()),
            ("", "")
        );

        let data = execution_data(&api, &big_name).await;
        assert_eq!(data.full_inputs.as_ref(), Some(&big), "{kind}");
        #[allow(deprecated)]
        let blob = data.inputs.expect("a link to the stored inputs");
        assert_eq!(blob.bytes as usize, big.encoded_len());
        assert!(!blob.url.is_empty());
        let data = execution_data(&api, &small_name).await;
        assert_eq!(data.full_inputs.as_ref(), Some(&small));

        // Above the download limit only the link comes back.
        let stingy = admin_with(&store, &storage, 1 << 20);
        let data = execution_data(&stingy, &big_name).await;
        assert_eq!(data.full_inputs, None, "{kind}");
        #[allow(deprecated)]
        let blob = data.inputs.expect("the link still");
        assert_eq!(blob.bytes as usize, big.encoded_len());
    }
}

async fn node_task_and_execution_outputs_are_offloaded(store: Store) {
    for (kind, storage) in storages().await {
        let api = admin_with(&store, &storage, 10 << 20);
        let task = register(&api).await;
        let name = format!("out-{kind}");
        launch(&api, &task, &name, &text(3, 'i')).await;
        let big = text(LARGE, 'o');

        for (phase, t) in [
            (workflow_execution::Phase::Queued, 1),
            (workflow_execution::Phase::Running, 2),
        ] {
            workflow_event(&api, &name, phase, t, None).await;
        }
        let node = NodeExecutionEvent {
            id: Some(node_id(&name)),
            producer_id: "propeller".into(),
            phase: node_execution::Phase::Running as i32,
            occurred_at: at(3),
            spec_node_id: "n0".into(),
            input_value: Some(node_execution_event::InputValue::InputData(text(3, 'i'))),
            ..Default::default()
        };
        send_node(&api, node.clone()).await;
        let attempt = TaskExecutionEvent {
            task_id: Some(task.clone()),
            parent_node_execution_id: Some(node_id(&name)),
            phase: task_execution::Phase::Succeeded as i32,
            producer_id: "propeller".into(),
            occurred_at: at(4),
            output_result: Some(task_execution_event::OutputResult::OutputData(big.clone())),
            ..Default::default()
        };
        AdminService::create_task_event(
            &api,
            tonic::Request::new(TaskExecutionEventRequest {
                request_id: String::new(),
                event: Some(attempt),
            }),
        )
        .await
        .unwrap();
        send_node(
            &api,
            NodeExecutionEvent {
                phase: node_execution::Phase::Succeeded as i32,
                occurred_at: at(5),
                input_value: None,
                output_result: Some(node_execution_event::OutputResult::OutputData(big.clone())),
                ..node
            },
        )
        .await;
        workflow_event(
            &api,
            &name,
            workflow_execution::Phase::Succeeded,
            6,
            Some(workflow_execution_event::OutputResult::OutputData(
                big.clone(),
            )),
        )
        .await;

        // Node: small inputs inline, large outputs stored.
        let node_key = NodeExecutionKey {
            execution: ExecutionKey {
                project: PROJECT.into(),
                domain: DOMAIN.into(),
                name: name.clone(),
            },
            node_id: "n0".into(),
        };
        let row = store.get_node_execution(&node_key).await.unwrap().unwrap();
        assert_eq!(row.inputs, text(3, 'i').encode_to_vec(), "{kind}");
        assert!(row.outputs.is_empty(), "{kind}");
        assert_eq!(
            object(&storage, &row.outputs_uri).await,
            big.encode_to_vec()
        );
        let data = AdminService::get_node_execution_data(
            &api,
            tonic::Request::new(admin::NodeExecutionGetDataRequest {
                id: Some(node_id(&name)),
            }),
        )
        .await
        .unwrap()
        .into_inner();
        assert_eq!(data.full_inputs, Some(text(3, 'i')));
        assert_eq!(data.full_outputs.as_ref(), Some(&big), "{kind}");

        // Task attempt.
        let data = AdminService::get_task_execution_data(
            &api,
            tonic::Request::new(admin::TaskExecutionGetDataRequest {
                id: Some(TaskExecutionIdentifier {
                    task_id: Some(task.clone()),
                    node_execution_id: Some(node_id(&name)),
                    retry_attempt: 0,
                }),
            }),
        )
        .await
        .unwrap()
        .into_inner();
        assert_eq!(data.full_outputs.as_ref(), Some(&big), "{kind}");
        #[allow(deprecated)]
        let blob = data.outputs.expect("a link to the task outputs");
        assert_eq!(blob.bytes as usize, big.encoded_len());

        // The execution: GetExecutionData serves the outputs, the closure references them.
        let data = execution_data(&api, &name).await;
        assert_eq!(data.full_outputs.as_ref(), Some(&big), "{kind}");
        let execution = AdminService::get_execution(
            &api,
            tonic::Request::new(admin::WorkflowExecutionGetRequest {
                id: Some(exec_id(&name)),
            }),
        )
        .await
        .unwrap()
        .into_inner();
        #[allow(deprecated)]
        let Some(execution_closure::OutputResult::Outputs(admin::LiteralMapBlob {
            data: Some(literal_map_blob::Data::Uri(uri)),
        })) = execution.closure.unwrap().output_result
        else {
            panic!("{kind}: the closure does not reference the stored outputs");
        };
        assert_eq!(object(&storage, &uri).await, big.encode_to_vec());
    }
}

async fn workflow_event(
    api: &AdminApi,
    name: &str,
    phase: workflow_execution::Phase,
    t: i64,
    output_result: Option<workflow_execution_event::OutputResult>,
) {
    AdminService::create_workflow_event(
        api,
        tonic::Request::new(WorkflowExecutionEventRequest {
            request_id: String::new(),
            event: Some(WorkflowExecutionEvent {
                execution_id: Some(exec_id(name)),
                producer_id: "propeller".into(),
                phase: phase as i32,
                occurred_at: at(t),
                output_result,
            }),
        }),
    )
    .await
    .unwrap();
}

async fn send_node(api: &AdminApi, event: NodeExecutionEvent) {
    AdminService::create_node_event(
        api,
        tonic::Request::new(NodeExecutionEventRequest {
            request_id: String::new(),
            event: Some(event),
        }),
    )
    .await
    .unwrap();
}

on_both_backends!(
    execution_inputs_are_offloaded_above_the_limit,
    node_task_and_execution_outputs_are_offloaded,
);
