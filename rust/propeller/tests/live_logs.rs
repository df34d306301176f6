//! A running local attempt's log is readable through admin's log route before the attempt
//! ends: with local storage (written in place) and with a bucket (read from the attempt's
//! working folder through the process plugin's live source until the driver stores it).
//! Python prints unbuffered, so a line is in the log when it is printed.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use alula_admin::logs::{log_url, AttemptLogId, LiveLogs};
use alula_admin::AdminConfig;
use alula_idl::flyteidl::core::workflow_execution;
use alula_propeller::process::{ProcessConfig, ProcessPlugin};
use alula_storage::Storage;
use axum::body::Body;
use axum::http::Request;
use support::{Harness, DOMAIN, PROJECT};
use tower::ServiceExt;

/// Prints, sleeps, prints: buffered, the first line would reach the file only at the end.
const SCRIPT: &str = "import time; print('first line'); time.sleep(4); print('second line')";

async fn get(router: &axum::Router, uri: &str) -> anyhow::Result<(u16, String)> {
    let response = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty())?)
        .await?;
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// `local`: storage in the harness's folder, else a bucket (in memory).
async fn first_line_before_the_end(name: &str, local: bool) -> anyhow::Result<()> {
    // Tasks inherit propeller's environment: the plugin itself must make Python unbuffered,
    // whatever the machine running this test has set.
    std::env::remove_var("PYTHONUNBUFFERED");
    let h = Harness::new().await?;
    let storage = if local {
        Storage::local(h.dir.path())
    } else {
        Storage::memory()
    };
    let task = h.task("printer", &["python3", "-c", SCRIPT]).await?;
    let lp = h.fan_out("printer_wf", &task, 1).await?;
    let plugin = Arc::new(ProcessPlugin::new(ProcessConfig {
        work_root: h.dir.path().join("work"),
        ..Default::default()
    }));
    let live: Arc<dyn LiveLogs> = plugin.live_logs();
    let mut config = h.config();
    config.storage = storage.clone();
    let running = h.propeller(vec![plugin], config);

    let mut admin = AdminConfig::new(h.dir.path().into(), "http://x".into(), b"k".to_vec());
    admin.storage = storage;
    let router = alula_admin::logs::router(Arc::new(admin), Some(live));
    let url = log_url(
        "",
        &AttemptLogId {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            name: name.into(),
            node_id: "n0".into(),
            retry_attempt: 0,
            array_index: None,
        },
        "stdout",
    );

    h.launch(name, &lp, 0).await?;
    let started = Instant::now();
    let seen = loop {
        let (status, body) = get(&router, &url).await?;
        if status == 200 && body.contains("first line") {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the first line never showed while running (last answer {status}: {body})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Read while the task sleeps: the second line is not printed yet, the run not over.
    assert_eq!(seen, "first line\n");
    assert_eq!(h.phase(name).await?, workflow_execution::Phase::Running);

    let phase = h.wait_terminal(name, Duration::from_secs(30)).await?;
    running.stop().await?;
    assert_eq!(phase, workflow_execution::Phase::Succeeded);
    // Followed from where the reader was: only the rest, now from storage.
    let rest = get(&router, &format!("{url}?offset={}", seen.len())).await?;
    assert_eq!(rest, (200, "second line\n".to_string()));
    Ok(())
}

#[tokio::test]
async fn a_running_local_attempt_is_readable_with_local_storage() -> anyhow::Result<()> {
    first_line_before_the_end("live1", true).await
}

#[tokio::test]
async fn a_running_local_attempt_is_readable_with_a_bucket() -> anyhow::Result<()> {
    first_line_before_the_end("live2", false).await
}
