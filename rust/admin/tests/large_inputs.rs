//! Large inputs do not bloat the database or object storage (issue 12, defect 6): an execution
//! with two large inputs, driven the way propeller drives it (its engine state, which holds
//! every node's inputs and outputs, saved round after round; events carrying full literal maps
//! through the outbox to admin's ingestion), leaves the SQLite file and its WAL near their
//! size before, and object storage with one copy of each distinct value.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use std::path::Path;
use std::sync::Arc;

use alula_admin::store::{now_micros, ExecutionKey};
use alula_admin::{AdminApi, AdminConfig, Store};
use alula_idl::flyteidl::admin::{
    self as admin, NodeExecutionEventRequest, TaskSpec, WorkflowExecutionEventRequest,
};
use alula_idl::flyteidl::core::{
    node_execution, workflow_execution, LiteralMap, NodeExecutionIdentifier, SimpleType,
    WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::event::{
    node_execution_event, workflow_execution_event, NodeExecutionEvent, WorkflowExecutionEvent,
};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_idl::wkt::Timestamp;
use alula_storage::Storage;
use common::builders::*;
use prost::Message;

/// Each of the two inputs; the inline limit is 1 MiB.
const INPUT: usize = 8 << 20;
const OWNER: &str = "propeller-test";

fn exec_id(name: &str) -> WorkflowExecutionIdentifier {
    WorkflowExecutionIdentifier {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        org: String::new(),
    }
}

fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: 1_700_000_000 + seconds,
        nanos: 0,
    })
}

fn api_for(store: &Store, storage: &Storage) -> AdminApi {
    let mut config = AdminConfig::new(
        std::env::temp_dir(),
        "http://127.0.0.1:1".into(),
        b"key".to_vec(),
    );
    config.storage = storage.clone();
    // Above the inputs' size: GetExecutionData returns them in full.
    config.max_download_bytes = 64 << 20;
    AdminApi::new(store.clone(), Arc::new(config))
}

async fn launch(api: &AdminApi, name: &str, inputs: &LiteralMap) {
    api.ensure_default_projects().await.unwrap();
    let mut task = int_task("echo", "v1", "img:1");
    let types = [("a", SimpleType::String), ("b", SimpleType::String)];
    task.interface = Some(interface(&types, &types));
    let created = AdminService::create_task(
        api,
        tonic::Request::new(admin::TaskCreateRequest {
            id: task.id.clone(),
            spec: Some(TaskSpec {
                template: Some(task.clone()),
                description: None,
            }),
        }),
    )
    .await;
    if let Err(status) = created {
        assert_eq!(status.code(), tonic::Code::AlreadyExists, "{status:?}");
    }
    AdminService::create_execution(
        api,
        tonic::Request::new(admin::ExecutionCreateRequest {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            name: name.into(),
            spec: Some(admin::ExecutionSpec {
                launch_plan: task.id.clone(),
                ..Default::default()
            }),
            inputs: Some(inputs.clone()),
            org: String::new(),
        }),
    )
    .await
    .unwrap();
}

/// An engine state shaped like propeller's: the workflow's inputs, the node's inputs and (once
/// it ran) its outputs, as serde JSON of the literals.
fn engine_state(inputs: &LiteralMap, outputs: Option<&LiteralMap>, round: u32) -> Vec<u8> {
    let json = |m: &LiteralMap| {
        let values: serde_json::Map<String, serde_json::Value> = m
            .literals
            .iter()
            .map(|(k, v)| (k.clone(), format!("{v:?}").into()))
            .collect();
        serde_json::Value::Object(values)
    };
    serde_json::to_vec(&serde_json::json!({
        "round": round,
        "scopes": [{"inputs": json(inputs)}],
        "nodes": [{"id": "n0", "inputs": json(inputs), "outputs": outputs.map(json)}],
    }))
    .unwrap()
}

/// Delivers the outbox to admin's ingestion, as propeller does, and acknowledges it.
async fn deliver(api: &AdminApi, key: &ExecutionKey) {
    let events = api.store().outbox(key, 100).await.unwrap();
    for e in &events {
        match e.kind {
            0 => {
                let event = WorkflowExecutionEvent::decode(e.event.as_slice()).unwrap();
                AdminService::create_workflow_event(
                    api,
                    tonic::Request::new(WorkflowExecutionEventRequest {
                        request_id: String::new(),
                        event: Some(event),
                    }),
                )
                .await
                .unwrap();
            }
            _ => {
                let event = NodeExecutionEvent::decode(e.event.as_slice()).unwrap();
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
        }
    }
    if let Some(last) = events.last() {
        api.store().ack_outbox(key, last.seq).await.unwrap();
    }
}

fn workflow_event(name: &str, phase: workflow_execution::Phase, t: i64) -> WorkflowExecutionEvent {
    WorkflowExecutionEvent {
        execution_id: Some(exec_id(name)),
        producer_id: OWNER.into(),
        phase: phase as i32,
        occurred_at: at(t),
        ..Default::default()
    }
}

fn node_event(name: &str, phase: node_execution::Phase, t: i64) -> NodeExecutionEvent {
    NodeExecutionEvent {
        id: Some(NodeExecutionIdentifier {
            node_id: "n0".into(),
            execution_id: Some(exec_id(name)),
        }),
        producer_id: OWNER.into(),
        phase: phase as i32,
        occurred_at: at(t),
        spec_node_id: "n0".into(),
        ..Default::default()
    }
}

/// Runs one execution with `inputs` to the end the way propeller does: `rounds` saves of the
/// state while the node runs, events through the outbox, then the run finished.
async fn drive(api: &AdminApi, name: &str, inputs: &LiteralMap, rounds: u32) {
    let store = api.store();
    let key = ExecutionKey {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
    };
    let now = now_micros();
    let claimed = store
        .claim_runs(OWNER, now, now + 60_000_000, 10)
        .await
        .unwrap();
    assert!(claimed.iter().any(|r| r.key == key), "{claimed:?}");
    let mut running = node_event(name, node_execution::Phase::Running, 2);
    running.input_value = Some(node_execution_event::InputValue::InputData(inputs.clone()));
    let events = vec![
        (
            0,
            workflow_event(name, workflow_execution::Phase::Running, 1).encode_to_vec(),
        ),
        (1, running.encode_to_vec()),
    ];
    let mut seq = 0;
    for round in 0..rounds {
        let batch = if round == 0 {
            events.clone()
        } else {
            Vec::new()
        };
        let state = engine_state(inputs, None, round);
        assert!(store
            .save_run(
                &key,
                OWNER,
                state,
                seq,
                &batch,
                now + 60_000_000,
                now_micros()
            )
            .await
            .unwrap());
        seq += batch.len() as i64;
        deliver(api, &key).await;
    }
    // Resuming reads back the state that was saved, whatever was moved out of the row.
    store.release_runs(OWNER).await.unwrap();
    let resumed = store
        .claim_runs(OWNER, now, now + 60_000_000, 10)
        .await
        .unwrap();
    let record = resumed.into_iter().find(|r| r.key == key).unwrap();
    assert_eq!(record.state, engine_state(inputs, None, rounds - 1));

    // The task echoed its inputs: the outputs are the same values.
    let mut succeeded = node_event(name, node_execution::Phase::Succeeded, 3);
    succeeded.output_result = Some(node_execution_event::OutputResult::OutputData(
        inputs.clone(),
    ));
    let mut done = workflow_event(name, workflow_execution::Phase::Succeeded, 4);
    done.output_result = Some(workflow_execution_event::OutputResult::OutputData(
        inputs.clone(),
    ));
    let batch = vec![(1, succeeded.encode_to_vec()), (0, done.encode_to_vec())];
    let state = engine_state(inputs, Some(inputs), rounds);
    assert!(store
        .save_run(
            &key,
            OWNER,
            state,
            seq,
            &batch,
            now + 60_000_000,
            now_micros()
        )
        .await
        .unwrap());
    deliver(api, &key).await;
    assert!(store.finish_run(&key, OWNER, now_micros()).await.unwrap());
}

/// A folder removed at the end of the test.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("alula-large-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Bytes and files under `dir`.
fn tree_size(dir: &Path) -> (u64, usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    entries.flatten().fold((0, 0), |(bytes, files), entry| {
        let path = entry.path();
        if path.is_dir() {
            let (b, f) = tree_size(&path);
            (bytes + b, files + f)
        } else {
            (bytes + file_size(&path), files + 1)
        }
    })
}

#[tokio::test]
async fn large_inputs_leave_the_database_and_storage_small() {
    let dir = TempDir::new();
    let db = dir.path().join("alula.db");
    let wal = dir.path().join("alula.db-wal");
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", db.display()))
        .await
        .unwrap();
    let storage = Storage::local(dir.path().join("storage"));
    let api = api_for(&store, &storage);
    api.ensure_default_projects().await.unwrap();
    store.maintain().await.unwrap();
    let baseline = file_size(&db) + file_size(&wal);

    let inputs = literals(&[
        ("a", str_literal(&"a".repeat(INPUT))),
        ("b", str_literal(&"b".repeat(INPUT))),
    ]);
    let size = inputs.encoded_len() as u64;
    for name in ["big-1", "big-2"] {
        launch(&api, name, &inputs).await;
        drive(&api, name, &inputs, 5).await;
    }
    let (db_before, wal_before) = (file_size(&db), file_size(&wal));
    // What the server's maintenance loop does every 30 s.
    store.maintain().await.unwrap();
    let (db_size, wal_size) = (file_size(&db), file_size(&wal));
    let (stored, files) = tree_size(&dir.path().join("storage/metadata"));
    eprintln!(
        "inputs {size} B x 2 executions; baseline {baseline} B; before maintenance db \
         {db_before} B wal {wal_before} B; after db {db_size} B wal {wal_size} B; metadata \
         {stored} B in {files} files"
    );
    assert!(
        db_size + wal_size < baseline + (4 << 20),
        "the database grew from {baseline} to {db_size} + WAL {wal_size} bytes"
    );
    // Per execution the inputs are one object (inputs, user inputs, node inputs and outputs,
    // the workflow's outputs are the same map); nothing of the engine state or the outbox
    // is left.
    assert!(
        stored <= 2 * size + (1 << 20),
        "metadata holds {stored} bytes in {files} files for 2 executions of {size} bytes"
    );

    // Everything committed reads back.
    for name in ["big-1", "big-2"] {
        let data = AdminService::get_execution_data(
            &api,
            tonic::Request::new(admin::WorkflowExecutionGetDataRequest {
                id: Some(exec_id(name)),
            }),
        )
        .await
        .unwrap()
        .into_inner();
        assert_eq!(data.full_inputs.as_ref(), Some(&inputs), "{name}");
    }
    store.close().await;
}

/// The spilling store on both backends: states and events bigger than the limit round-trip,
/// and what a finished run held is removed from storage.
async fn spilled_runs_round_trip(store: Store) {
    let root = std::env::temp_dir().join(format!("alula-spill-{:x}", rand::random::<u64>()));
    let storage = Storage::local(&root);
    let api = api_for(&store, &storage);
    let small = literals(&[("a", str_literal("x")), ("b", str_literal("y"))]);
    launch(&api, "spill", &small).await;
    let big = literals(&[
        ("a", str_literal(&"p".repeat(2 << 20))),
        ("b", str_literal("q")),
    ]);
    drive(&api, "spill", &big, 3).await;
    let left = tree_size(&root.join("metadata"));
    // The execution's inputs (small: inline) and the node's inputs and outputs and the
    // workflow's outputs (one object): nothing of the state or the outbox.
    assert_eq!(left.1, 1, "{left:?}");
    let _ = std::fs::remove_dir_all(&root);
}

on_both_backends!(spilled_runs_round_trip);
