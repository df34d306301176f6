//! Reading operators' statuses: the verdicts they share.

use alula_propeller::AttemptStatus;
use serde_json::Value as Json;

/// The job ran to completion: the driver reads its outputs.
pub fn succeeded() -> AttemptStatus {
    AttemptStatus::Exited {
        exit_code: Some(0),
        message: String::new(),
    }
}

/// The operator gave the job up. A user error retried within the task's retries (as Flyte's
/// `PhaseInfoRetryableFailure`), with `code` as the error code; the task's own `error.pb`, if
/// its driver wrote one, still wins.
pub fn failed(code: &str, message: &str) -> AttemptStatus {
    AttemptStatus::Killed {
        exit_code: None,
        code: code.into(),
        message: if message.trim().is_empty() {
            format!("{code} without a message")
        } else {
            message.trim().to_string()
        },
    }
}

/// The string at `pointer` (`/status/jobStatus`), empty when absent.
pub fn text<'a>(object: &'a Json, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Json::as_str)
        .unwrap_or_default()
}

/// Kubeflow's job conditions (`Created`, `Running`, `Restarting`, `Succeeded`, `Failed`): the
/// current one is the last true one by transition time (Flyte's `ExtractCurrentCondition`);
/// on a tie, the later in the list.
pub fn kubeflow(object: &Json, kind: &str) -> AttemptStatus {
    let empty = Vec::new();
    let conditions = object
        .pointer("/status/conditions")
        .and_then(Json::as_array)
        .unwrap_or(&empty);
    let current = conditions
        .iter()
        .enumerate()
        .filter(|(_, c)| text(c, "/status") == "True")
        .max_by(|(i, a), (j, b)| {
            text(a, "/lastTransitionTime")
                .cmp(text(b, "/lastTransitionTime"))
                .then(i.cmp(j))
        })
        .map(|(_, c)| c);
    let Some(c) = current else {
        return AttemptStatus::Running;
    };
    match text(c, "/type") {
        "Succeeded" => succeeded(),
        "Failed" => {
            let reason = text(c, "/reason");
            let message = text(c, "/message");
            failed(
                &format!("{kind}Failed"),
                &[reason, message]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(": "),
            )
        }
        // Created, Running, Restarting, Suspended: on its way.
        _ => AttemptStatus::Running,
    }
}
