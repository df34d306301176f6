//! A store or storage that fails does not leave executions RUNNING forever: failures are tried
//! again a bounded number of times, damaged data not at all, and then the execution fails with a
//! system error that names the cause.

mod support;

use std::sync::Arc;
use std::time::Duration;

use alula_admin::store::ExecutionKey;
use alula_idl::flyteidl::admin::execution_closure::OutputResult;

use alula_idl::flyteidl::core::{execution_error::ErrorKind, workflow_execution::Phase};
use support::{Forever, Harness, DOMAIN, PROJECT};

async fn system_error(h: &Harness, name: &str) -> anyhow::Result<String> {
    let closure = h.get(name).await?.closure.unwrap_or_default();
    match closure.output_result {
        Some(OutputResult::Error(e)) => {
            assert_eq!(e.kind, ErrorKind::System as i32, "{e:?}");
            Ok(e.message)
        }
        other => anyhow::bail!("no error: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_that_refuses_writes_fails_the_execution_after_bounded_tries() -> anyhow::Result<()>
{
    let h = Harness::new().await?;
    let task = h.task("t", &["run"]).await?;
    h.launch("no-storage", &task, 0).await?;
    // The folder every execution's inputs go under is a file: each write fails (also as root).
    std::fs::write(h.dir.path().join("metadata"), b"not a folder")?;
    let mut config = h.config();
    config.driver_retry_backoff = Duration::from_millis(20);
    config.max_driver_failures = 3;
    config.scan_interval = Duration::from_millis(50);
    let running = h.propeller(vec![Arc::new(Forever)], config);
    let phase = h
        .wait_terminal("no-storage", Duration::from_secs(30))
        .await?;
    running.stop().await?;
    assert_eq!(phase, Phase::Failed);
    let message = system_error(&h, "no-storage").await?;
    assert!(
        message.contains("tried 3 times") && message.contains("storage"),
        "{message}"
    );
    assert_eq!(
        h.api.store().count_open_runs().await?,
        0,
        "the run is closed"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_saved_state_fails_the_execution_at_once() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    let task = h.task("t", &["run"]).await?;
    h.launch("damaged", &task, 0).await?;
    let running = h.propeller(vec![Arc::new(Forever)], h.config());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while h.phase("damaged").await? != Phase::Running && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await?; // releases the lease, with the engine state saved

    // Damage the saved state as a bad disk page would.
    let store = h.api.store();
    let now = alula_admin::store::now_micros();
    let claimed = store
        .claim_runs("vandal", now, now + 60_000_000, 10)
        .await?;
    let record = claimed
        .into_iter()
        .find(|r| r.key.name == "damaged")
        .expect("the run is open");
    let key = ExecutionKey {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: "damaged".into(),
    };
    assert!(
        store
            .save_run(
                &key,
                "vandal",
                br#"{"nodes": [tru"#.to_vec(),
                record.next_event,
                &[],
                now + 60_000_000,
                now,
            )
            .await?
    );
    store.release_runs("vandal").await?;

    let running = h.propeller(vec![Arc::new(Forever)], h.config());
    let phase = h.wait_terminal("damaged", Duration::from_secs(20)).await?;
    running.stop().await?;
    assert_eq!(phase, Phase::Failed);
    let message = system_error(&h, "damaged").await?;
    assert!(
        message.contains("saved engine state") && !message.contains("tried"),
        "failed at the first try: {message}"
    );
    Ok(())
}
