//! How an attempt ended, read from what it left in its output prefix in storage, as
//! flytepropeller reads it: `error.pb` (an `ErrorDocument`) wins, then `futures.pb` (a dynamic
//! task's `DynamicJobSpec`), then `outputs.pb`. A process that stopped without any of them failed
//! for a reason its log may tell.

use alula_engine::TaskOutcome;
use alula_idl::flyteidl::core::{
    container_error, execution_error::ErrorKind, CatalogCacheStatus, DynamicJobSpec, ErrorDocument,
    ExecutionError, LiteralMap, TaskTemplate,
};
use alula_storage::Storage;
use prost::Message;

use crate::plugin::AttemptStatus;

pub(crate) fn error(code: &str, kind: ErrorKind, message: String) -> ExecutionError {
    ExecutionError {
        code: code.into(),
        message,
        kind: kind as i32,
        ..Default::default()
    }
}

async fn read<M: Message + Default>(
    storage: &Storage,
    key: &str,
) -> Result<Option<M>, Box<ExecutionError>> {
    match storage.get(key).await {
        Ok(Some(bytes)) => M::decode(bytes).map(Some).map_err(|e| {
            Box::new(error(
                "InvalidTaskOutput",
                ErrorKind::System,
                format!("{} is not valid: {e}", storage.uri(key)),
            ))
        }),
        Ok(None) => Ok(None),
        // The error names the object.
        Err(e) => Err(Box::new(error(
            "OutputReadError",
            ErrorKind::System,
            e.to_string(),
        ))),
    }
}

/// A task's `ErrorDocument` as the engine's outcome. As in Flyte, a RECOVERABLE error is
/// retried (within the task's retries, or the system budget for system errors) and a
/// NON_RECOVERABLE one ends the node at once.
fn task_error(doc: ErrorDocument) -> TaskOutcome {
    let Some(e) = doc.error else {
        return TaskOutcome::Failed(error(
            "InvalidErrorDocument",
            ErrorKind::System,
            "the task wrote an empty error.pb".into(),
        ));
    };
    let permanent = e.kind != container_error::Kind::Recoverable as i32;
    let kind = if e.origin == ErrorKind::System as i32 {
        ErrorKind::System
    } else {
        ErrorKind::User
    };
    let err = ExecutionError {
        code: e.code,
        message: e.message,
        kind: kind as i32,
        timestamp: e.timestamp,
        ..Default::default()
    };
    if permanent {
        TaskOutcome::FailedPermanently(err)
    } else {
        TaskOutcome::Failed(err)
    }
}

/// The outcome of an attempt that stopped with `status`, from what it left under the storage
/// key `output_prefix`.
pub async fn read_outcome(
    storage: &Storage,
    output_prefix: &str,
    task: &TaskTemplate,
    status: &AttemptStatus,
) -> TaskOutcome {
    let exit_message = |exit_code: &Option<i32>, message: &str| {
        let code = exit_code.map_or("unknown".to_string(), |c| c.to_string());
        format!("the task exited (status {code}) without writing outputs; its log ends with:\n{message}")
    };
    match status {
        AttemptStatus::Lost { message } => {
            return TaskOutcome::Failed(error("TaskLost", ErrorKind::System, message.clone()))
        }
        AttemptStatus::Failed { message } => {
            return TaskOutcome::Failed(error("TaskFailed", ErrorKind::User, message.clone()))
        }
        _ => {}
    }
    match read::<ErrorDocument>(storage, &format!("{output_prefix}/error.pb")).await {
        Ok(Some(doc)) => return task_error(doc),
        Err(e) => return TaskOutcome::Failed(*e),
        Ok(None) => {}
    }
    match read::<DynamicJobSpec>(storage, &format!("{output_prefix}/futures.pb")).await {
        Ok(Some(spec)) => return TaskOutcome::Dynamic(spec),
        Err(e) => return TaskOutcome::Failed(*e),
        Ok(None) => {}
    }
    match read::<LiteralMap>(storage, &format!("{output_prefix}/outputs.pb")).await {
        Ok(Some(outputs)) => {
            return TaskOutcome::Succeeded {
                outputs,
                cache_status: CatalogCacheStatus::CacheDisabled,
            }
        }
        Err(e) => return TaskOutcome::Failed(*e),
        Ok(None) => {}
    }
    let has_outputs = task
        .interface
        .as_ref()
        .and_then(|i| i.outputs.as_ref())
        .is_some_and(|o| !o.variables.is_empty());
    match status {
        AttemptStatus::Exited {
            exit_code: Some(0),
            ..
        } if !has_outputs => TaskOutcome::Succeeded {
            outputs: LiteralMap::default(),
            cache_status: CatalogCacheStatus::CacheDisabled,
        },
        AttemptStatus::Exited {
            exit_code: Some(0),
            message,
        } => TaskOutcome::Failed(error(
            "OutputsNotFound",
            ErrorKind::User,
            format!("the task exited successfully but wrote no outputs.pb; its log ends with:\n{message}"),
        )),
        AttemptStatus::Exited { exit_code, message } => {
            // Killed by a signal (negative status) or lost its exit status in a restart: the
            // machine, not the code, is the likelier culprit.
            let kind = if exit_code.is_none_or(|c| c < 0) {
                ErrorKind::System
            } else {
                ErrorKind::User
            };
            TaskOutcome::Failed(error("TaskExited", kind, exit_message(exit_code, message)))
        }
        // Flyte reports a pod's OOMKilled under that code, a user error the task's retries cover.
        AttemptStatus::Killed {
            exit_code,
            code,
            message,
        } => TaskOutcome::Failed(error(
            code,
            ErrorKind::User,
            exit_message(exit_code, message),
        )),
        _ => TaskOutcome::Failed(error(
            "OutputsNotFound",
            ErrorKind::System,
            "the task is not running and wrote no outputs".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(outcome: TaskOutcome) -> ExecutionError {
        match outcome {
            TaskOutcome::Failed(e) => e,
            other => panic!("expected a retryable failure, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_killed_attempt_fails_with_the_platforms_code_as_a_user_error() {
        let storage = Storage::memory();
        let status = AttemptStatus::Killed {
            exit_code: Some(137),
            code: "OOMKilled".into(),
            message: "OOMKilled: memory limit".into(),
        };
        let e = failed(read_outcome(&storage, "a/0", &TaskTemplate::default(), &status).await);
        assert_eq!(e.code, "OOMKilled");
        assert_eq!(e.kind, ErrorKind::User as i32);
        assert!(
            e.message.contains("OOMKilled: memory limit"),
            "{}",
            e.message
        );
        assert!(e.message.contains("137"), "{}", e.message);

        // What the task wrote still wins, as for any exit.
        let doc = ErrorDocument {
            error: Some(alula_idl::flyteidl::core::ContainerError {
                code: "USER:Boom".into(),
                kind: container_error::Kind::Recoverable as i32,
                ..Default::default()
            }),
        };
        storage
            .put("a/0/error.pb", doc.encode_to_vec().into())
            .await
            .expect("put");
        let e = failed(read_outcome(&storage, "a/0", &TaskTemplate::default(), &status).await);
        assert_eq!(e.code, "USER:Boom");
    }
}
