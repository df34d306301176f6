//! A plugin whose start fails for infrastructure reasons (an API server hiccup) is asked again
//! after a backoff, and the task keeps its attempt budget: the execution succeeds on attempt 0.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alula_idl::flyteidl::core::{workflow_execution::Phase, TaskTemplate};
use alula_propeller::plugin::{Attempt, AttemptStatus, Plugin, PluginError, Waker};
use async_trait::async_trait;
use support::Harness;

/// Refuses the first `failures` starts as transient, then "runs" (exits 0 at once).
#[derive(Default)]
struct Flaky {
    failures: u32,
    starts: AtomicU32,
    started: Mutex<Vec<(u32, Instant)>>,
}

#[async_trait]
impl Plugin for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }

    fn can_run(&self, _task: &TaskTemplate) -> bool {
        true
    }

    async fn start(&self, attempt: &Attempt, waker: Waker) -> Result<(), PluginError> {
        let n = self.starts.fetch_add(1, Ordering::SeqCst);
        self.started
            .lock()
            .expect("lock")
            .push((attempt.retry_attempt, Instant::now()));
        if n < self.failures {
            return Err(PluginError::Transient(format!(
                "the API server answered 500 (call {n})"
            )));
        }
        waker.wake();
        Ok(())
    }

    async fn check(&self, _attempt: &Attempt, _waker: Waker) -> Result<AttemptStatus, PluginError> {
        Ok(AttemptStatus::Exited {
            exit_code: Some(0),
            message: String::new(),
        })
    }

    async fn abort(&self, _attempt: &Attempt) -> Result<(), PluginError> {
        Ok(())
    }
}

#[tokio::test]
async fn transient_start_failures_do_not_use_up_attempts() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    let task = h.task("flaky", &[]).await?;
    h.launch("flaky-run", &task, 0).await?;

    let plugin = Arc::new(Flaky {
        failures: 2,
        ..Default::default()
    });
    let running = h.propeller(vec![plugin.clone()], h.config());
    let phase = h
        .wait_terminal("flaky-run", Duration::from_secs(30))
        .await?;
    running.stop().await?;

    assert_eq!(phase, Phase::Succeeded, "the execution did not succeed");
    let started = plugin.started.lock().expect("lock").clone();
    // Three calls to start, all for attempt 0, the later ones after a growing backoff.
    assert_eq!(
        started.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
        vec![0, 0, 0]
    );
    assert!(started[1].1 - started[0].1 >= Duration::from_millis(900));
    assert!(started[2].1 - started[1].1 >= Duration::from_millis(1900));
    Ok(())
}
