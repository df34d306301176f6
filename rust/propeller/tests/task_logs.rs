//! Every attempt's stdout and stderr are kept apart, stored under its output prefix
//! (`logs/<stream>.txt`) whatever the storage, and linked from its task events to admin's log
//! route, which serves them.

mod support;

use std::sync::Arc;
use std::time::Duration;

use alula_admin::logs::{log_key, log_url, AttemptLogId};
use alula_admin::AdminConfig;
use alula_idl::flyteidl::admin::TaskExecutionListRequest;
use alula_idl::flyteidl::core::{workflow_execution, NodeExecutionIdentifier};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_propeller::process::{ProcessConfig, ProcessPlugin};
use alula_storage::Storage;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use support::{execution_id, Harness, DOMAIN, PROJECT};
use tower::ServiceExt;

const BASE: &str = "http://alula.test:8088";
const SCRIPT: &str = "echo out-$FLYTE_ATTEMPT_NUMBER; echo boom-$FLYTE_ATTEMPT_NUMBER >&2; exit 3";

fn log_id(name: &str, retry: u32) -> AttemptLogId {
    AttemptLogId {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        node_id: "n0".into(),
        retry_attempt: retry,
        array_index: None,
    }
}

async fn stored(storage: &Storage, name: &str, retry: u32, stream: &str) -> String {
    let bytes = storage
        .get(&log_key(&log_id(name, retry), stream))
        .await
        .expect("storage read")
        .unwrap_or_else(|| panic!("no {stream} log stored for attempt {retry}"));
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Runs a task that prints to both streams and fails, with one retry, on `storage`.
async fn run_failing(h: &Harness, name: &str, storage: Storage) -> anyhow::Result<()> {
    let task = h
        .task_with_retries("noisy", &["sh", "-c", SCRIPT], 1)
        .await?;
    let lp = h.fan_out("noisy_wf", &task, 1).await?;
    let mut config = h.config();
    config.storage = storage;
    config.log_base_url = Some(BASE.into());
    let plugin = Arc::new(ProcessPlugin::new(ProcessConfig {
        work_root: h.dir.path().join("work"),
        ..Default::default()
    }));
    let running = h.propeller(vec![plugin], config);
    h.launch(name, &lp, 0).await?;
    let phase = h.wait_terminal(name, Duration::from_secs(30)).await?;
    running.stop().await?;
    assert_eq!(phase, workflow_execution::Phase::Failed);
    Ok(())
}

async fn check_events(h: &Harness, name: &str) -> anyhow::Result<()> {
    let list = h
        .api
        .list_task_executions(tonic::Request::new(TaskExecutionListRequest {
            node_execution_id: Some(NodeExecutionIdentifier {
                node_id: "n0".into(),
                execution_id: Some(execution_id(name)),
            }),
            limit: 10,
            ..Default::default()
        }))
        .await?
        .into_inner();
    assert_eq!(list.task_executions.len(), 2, "{list:?}");
    for te in &list.task_executions {
        let retry = te.id.as_ref().map(|i| i.retry_attempt).unwrap_or(99);
        let logs = &te.closure.as_ref().expect("closure").logs;
        let uris: Vec<(&str, &str)> = logs
            .iter()
            .map(|l| (l.name.as_str(), l.uri.as_str()))
            .collect();
        let id = log_id(name, retry);
        assert_eq!(
            uris,
            [
                ("stdout", log_url(BASE, &id, "stdout").as_str()),
                ("stderr", log_url(BASE, &id, "stderr").as_str()),
            ],
            "attempt {retry}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn failing_process_attempts_keep_their_own_stdout_and_stderr() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    let storage = Storage::local(h.dir.path());
    run_failing(&h, "logs1", storage.clone()).await?;
    for retry in [0, 1] {
        assert_eq!(
            stored(&storage, "logs1", retry, "stderr").await,
            format!("boom-{retry}\n")
        );
        assert_eq!(
            stored(&storage, "logs1", retry, "stdout").await,
            format!("out-{retry}\n")
        );
    }
    check_events(&h, "logs1").await?;

    // Admin's route serves what the links name.
    let config = AdminConfig::new(h.dir.path().into(), BASE.into(), b"k".to_vec());
    let router = alula_admin::logs::router(Arc::new(config), None);
    let url = log_url("", &log_id("logs1", 1), "stderr");
    let response = router
        .oneshot(Request::get(url.as_str()).body(Body::empty())?)
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await?;
    assert_eq!(&body[..], b"boom-1\n");
    Ok(())
}

#[tokio::test]
async fn logs_reach_object_storage_that_is_not_a_local_folder() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    let storage = Storage::memory();
    run_failing(&h, "logs2", storage.clone()).await?;
    for retry in [0, 1] {
        assert_eq!(
            stored(&storage, "logs2", retry, "stderr").await,
            format!("boom-{retry}\n")
        );
    }
    check_events(&h, "logs2").await?;
    Ok(())
}

#[test]
fn log_keys_are_beside_the_attempts_outputs() {
    let layout = alula_propeller::Layout::new(Storage::memory());
    let id = AttemptLogId {
        array_index: Some(7),
        ..log_id("x", 2)
    };
    let prefix = layout.output_prefix(&execution_id("x"), "n0", Some(7), 2);
    assert_eq!(log_key(&id, "stderr"), format!("{prefix}/logs/stderr.txt"));
}
