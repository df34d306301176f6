//! Executions always end: wider than the parallelism limit, with a task that cannot start, and
//! when terminated.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alula_idl::flyteidl::core::{workflow_execution::Phase, TaskTemplate};
use alula_propeller::plugin::{Attempt, AttemptStatus, Plugin, PluginError, Waker};
use alula_propeller::process::{ProcessConfig, ProcessPlugin};
use async_trait::async_trait;
use support::{Forever, Harness};

/// Every attempt exits 0 at once; counts how many run at the same time.
#[derive(Default)]
struct Instant {
    running: Mutex<HashSet<String>>,
    most: AtomicUsize,
    started: AtomicUsize,
    names: Mutex<Vec<String>>,
}

#[async_trait]
impl Plugin for Instant {
    fn name(&self) -> &'static str {
        "instant"
    }

    fn can_run(&self, _task: &TaskTemplate) -> bool {
        true
    }

    async fn start(&self, attempt: &Attempt, waker: Waker) -> Result<(), PluginError> {
        let now = {
            let mut running = self.running.lock().expect("lock");
            running.insert(attempt.unique_name());
            running.len()
        };
        self.most.fetch_max(now, Ordering::SeqCst);
        self.started.fetch_add(1, Ordering::SeqCst);
        self.names.lock().expect("lock").push(attempt.unique_name());
        waker.wake();
        Ok(())
    }

    async fn check(&self, attempt: &Attempt, _waker: Waker) -> Result<AttemptStatus, PluginError> {
        self.running
            .lock()
            .expect("lock")
            .remove(&attempt.unique_name());
        Ok(AttemptStatus::Exited {
            exit_code: Some(0),
            message: String::new(),
        })
    }

    async fn abort(&self, _attempt: &Attempt) -> Result<(), PluginError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_wider_than_max_parallelism_completes() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("alula_propeller=warn")
        .try_init();
    let h = Harness::new().await?;
    let task = h.task("t", &["run"]).await?;
    let wide = h.fan_out("wide", &task, 26).await?;
    let narrow = h.fan_out("narrow", &task, 20).await?;
    h.launch("wide-default", &wide, 0).await?;
    h.launch("narrow-five", &narrow, 5).await?;

    let plugin = Arc::new(Instant::default());
    let mut config = h.config();
    config.max_parallelism = 25;
    let running = h.propeller(vec![plugin.clone()], config);
    let wide_phase = h
        .wait_terminal("wide-default", Duration::from_secs(30))
        .await?;
    let narrow_phase = h
        .wait_terminal("narrow-five", Duration::from_secs(30))
        .await?;
    running.stop().await?;

    assert_eq!(
        wide_phase,
        Phase::Succeeded,
        "26 tasks under the default limit of 25"
    );
    assert_eq!(
        narrow_phase,
        Phase::Succeeded,
        "20 tasks with max_parallelism=5"
    );
    let names = plugin.names.lock().expect("lock").clone();
    let distinct: HashSet<&String> = names.iter().collect();
    assert_eq!(distinct.len(), 46, "{names:?}");
    let twice: Vec<&String> = names
        .iter()
        .filter(|n| names.iter().filter(|m| m == n).count() > 1)
        .collect();
    assert!(twice.is_empty(), "started twice: {twice:?}");
    assert!(
        plugin.most.load(Ordering::SeqCst) <= 30,
        "limits hold across both"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_a_workflow_wider_than_its_limit_ends_aborted() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    let task = h.task("t", &["run"]).await?;
    let wide = h.fan_out("wide", &task, 12).await?;
    h.launch("stuck", &wide, 3).await?;
    let running = h.propeller(vec![Arc::new(Forever)], h.config());
    // Wait until it runs, then terminate it.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while h.phase("stuck").await? != Phase::Running && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.terminate("stuck").await?;
    let phase = h.wait_terminal("stuck", Duration::from_secs(20)).await?;
    running.stop().await?;
    assert_eq!(phase, Phase::Aborted);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_whose_command_cannot_start_fails_the_execution() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    // What a flytekit task runs, on a server whose environment does not have it.
    let task = h
        .task("t", &["alula-test-no-such-command", "pyflyte-execute"])
        .await?;
    h.launch("cannot-start", &task, 0).await?;
    let plugin = ProcessPlugin::new(ProcessConfig {
        work_root: h.dir.path().join("work"),
        ..Default::default()
    });
    let running = h.propeller(vec![Arc::new(plugin)], h.config());
    let phase = h
        .wait_terminal("cannot-start", Duration::from_secs(30))
        .await?;
    let execution = h.get("cannot-start").await?;
    running.stop().await?;
    assert_eq!(phase, Phase::Failed);
    let message = format!("{:?}", execution.closure.and_then(|c| c.output_result));
    assert!(
        message.contains("alula-test-no-such-command"),
        "the error names the command: {message}"
    );
    Ok(())
}
