//! When a driver cannot go on. A store or storage failure (the database locked or unreachable,
//! a bucket refusing writes) is tried again with a growing delay, a bounded number of times;
//! damaged data (a saved state or spec that does not decode, a closure the engine refuses) is
//! final at once. Either way the execution then fails with a system error that its client sees,
//! instead of staying RUNNING while the log fills with the same error every second.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alula_idl::flyteidl::core::{
    execution_error::ErrorKind, workflow_execution::Phase, ExecutionError,
    WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::event::{workflow_execution_event, WorkflowExecutionEvent};
use alula_idl::wkt::Timestamp;
use alula_plane::ExecutionKey;
use prost::Message;

use crate::driver::{deliver, exec_name};
use crate::{Context, DriveError, PropellerConfig};

/// The longest wait between two tries of the same execution.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl DriveError {
    /// Whether trying again cannot help: the data itself is damaged or refused.
    fn is_permanent(&self) -> bool {
        matches!(
            self,
            DriveError::Corrupt(_) | DriveError::Missing(_) | DriveError::Engine(_)
        )
    }
}

struct Failure {
    count: u32,
    retry_at: Instant,
}

/// Drivers that stopped on an error, by execution: how often in a row and when to try again.
#[derive(Default)]
pub(crate) struct DriverFailures {
    by_key: HashMap<ExecutionKey, Failure>,
}

impl DriverFailures {
    /// Whether `key` waits out its backoff (its lease is kept, but no driver runs).
    pub(crate) fn waiting(&self, key: &ExecutionKey) -> bool {
        self.by_key
            .get(key)
            .is_some_and(|f| f.retry_at > Instant::now())
    }

    /// The driver of `key` ended without an error.
    pub(crate) fn clear(&mut self, key: &ExecutionKey) {
        self.by_key.remove(key);
    }

    /// Records that the driver of `key` stopped on `error`; returns the number of tries when it
    /// is time to give up.
    pub(crate) fn record(
        &mut self,
        key: &ExecutionKey,
        error: &DriveError,
        config: &PropellerConfig,
    ) -> Option<u32> {
        let failure = self.by_key.entry(key.clone()).or_insert(Failure {
            count: 0,
            retry_at: Instant::now(),
        });
        failure.count += 1;
        if error.is_permanent() || failure.count >= config.max_driver_failures {
            let count = failure.count;
            self.by_key.remove(key);
            return Some(count);
        }
        let backoff = config
            .driver_retry_backoff
            .saturating_mul(1 << (failure.count - 1).min(16))
            .min(MAX_BACKOFF);
        failure.retry_at = Instant::now() + backoff;
        None
    }
}

/// Fails the execution with `error` as a system error and closes its run. If the store cannot
/// take even that, the run stays leased and is tried again when its lease expires.
pub(crate) async fn fail_execution(
    ctx: &Context,
    key: &ExecutionKey,
    error: &DriveError,
    tries: u32,
) -> Result<(), DriveError> {
    let message = match tries {
        1 => format!("propeller cannot drive this execution: {error}"),
        n => format!("propeller cannot drive this execution (tried {n} times): {error}"),
    };
    tracing::error!(execution = %exec_name(key), error = %message, "failing the execution");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let event = WorkflowExecutionEvent {
        execution_id: Some(WorkflowExecutionIdentifier {
            project: key.project.clone(),
            domain: key.domain.clone(),
            name: key.name.clone(),
            org: String::new(),
        }),
        producer_id: ctx.config.instance_id.clone(),
        phase: Phase::Failed as i32,
        occurred_at: Some(Timestamp {
            seconds: now.as_secs() as i64,
            nanos: now.subsec_nanos() as i32,
        }),
        output_result: Some(workflow_execution_event::OutputResult::Error(
            ExecutionError {
                code: "SYSTEM:DriverFailed".into(),
                message,
                kind: ErrorKind::System as i32,
                ..Default::default()
            },
        )),
    };
    deliver(ctx, 0, &event.encode_to_vec()).await?;
    ctx.plane
        .finish_run(key, &ctx.config.instance_id, alula_plane::now_micros())
        .await?;
    Ok(())
}
