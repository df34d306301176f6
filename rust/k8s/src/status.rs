//! A pod's status as an [`AttemptStatus`], after flyteplugins' `DemystifyPending` and
//! `DemystifyFailure`:
//!
//! | pod | attempt |
//! |---|---|
//! | Pending, scheduling or pulling | `Running` (the driver has no "queued"; the pod is on its way) |
//! | Pending, `ErrImagePull` / `ImagePullBackOff` past `image_pull_grace` | `Failed` (user: the image is wrong) |
//! | Pending, `CreateContainerConfigError`, `InvalidImageName`, `ErrImageNeverPull` | `Failed` at once |
//! | Pending, `CreateContainerError` past `create_container_error_grace` | `Failed` |
//! | Pending, unschedulable past `unschedulable_timeout` | `Lost` (system: the cluster lacks room) |
//! | Running, Unknown | `Running` |
//! | Succeeded | `Exited { 0 }` |
//! | Failed, reason `Evicted` (or preempted, node shutdown), or a `DisruptionTarget` condition | `Lost` (system, retried within the system budget) |
//! | Failed (or Running, a sidecar still up), primary container `OOMKilled` | `Killed { code, "OOMKilled", "OOMKilled: ..." }`: as in Flyte, a *retryable user* error (the task's own retries) with the error code `OOMKilled`; `Failed` would not retry |
//! | Failed, otherwise | `Exited { code, termination message }`; the driver reads `error.pb` |
//!
//! A pod that is gone is not a status: [`crate::PodPlugin::check`] decides (see there).

use std::time::Duration;

use alula_propeller::AttemptStatus;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, Pod, PodCondition};
use k8s_openapi::jiff::Timestamp;

use crate::config::PodPluginConfig;
use crate::pod::{PRIMARY_CONTAINER, PRIMARY_CONTAINER_ANNOTATION};

/// Pod failure reasons that say the node, not the task, ended it.
const LOST_REASONS: &[&str] = &[
    "Evicted",
    "Preempting",
    "Shutdown",
    "NodeShutdown",
    "Terminated",
    "NodeLost",
    "UnexpectedAdmissionError",
];

/// The kubelet's reason for a container the kernel killed for memory, and Flyte's error code.
const OOM_KILLED: &str = "OOMKilled";

/// Waiting reasons that no amount of waiting fixes.
const FATAL_WAITING: &[&str] = &[
    "CreateContainerConfigError",
    "InvalidImageName",
    "ErrImageNeverPull",
];

/// Where the attempt of `pod` stands at `now`.
pub fn attempt_status(pod: &Pod, config: &PodPluginConfig, now: Timestamp) -> AttemptStatus {
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending");
    match phase {
        "Succeeded" => AttemptStatus::Exited {
            exit_code: Some(0),
            message: String::new(),
        },
        "Failed" => failed(pod),
        "Pending" => pending(pod, config, now),
        // A pod task's sidecars may outlive its primary container: the primary's end is the
        // attempt's (Flyte's `DeterminePrimaryContainerPhase`).
        "Running" => match primary_terminated(pod) {
            // A raw container's outputs exist once the copilot's uploader has written them.
            Some(t) if t.exit_code == 0 && crate::copilot::uploading(pod) => AttemptStatus::Running,
            Some(t) if t.exit_code == 0 => AttemptStatus::Exited {
                exit_code: Some(0),
                message: String::new(),
            },
            Some(t) => exited(t),
            None => AttemptStatus::Running,
        },
        // Unknown: the node stopped reporting; Kubernetes settles it either way.
        _ => AttemptStatus::Running,
    }
}

/// The container the attempt is judged by: the one the pod's annotation names (a pod task's
/// primary container), else ours.
fn primary_name(pod: &Pod) -> &str {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PRIMARY_CONTAINER_ANNOTATION))
        .map(String::as_str)
        .unwrap_or(PRIMARY_CONTAINER)
}

fn primary_terminated(pod: &Pod) -> Option<&ContainerStateTerminated> {
    let name = primary_name(pod);
    let primary = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default()
        .iter()
        .find(|c| c.name == name)?;
    primary
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .or_else(|| {
            primary
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
        })
}

/// A terminated container's verdict. Flyte makes `OOMKilled` a retryable user error with that
/// code (flyteplugins' `DemystifyFailure`): `Killed` carries the code to the attempt's error.
fn exited(t: &ContainerStateTerminated) -> AttemptStatus {
    let message = describe(t.reason.as_deref(), t.message.as_deref());
    match t.reason.as_deref() {
        Some(OOM_KILLED) => AttemptStatus::Killed {
            exit_code: Some(t.exit_code),
            code: OOM_KILLED.into(),
            message,
        },
        _ => AttemptStatus::Exited {
            exit_code: Some(t.exit_code),
            message,
        },
    }
}

fn conditions(pod: &Pod) -> &[PodCondition] {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
}

fn container_statuses(pod: &Pod) -> impl Iterator<Item = &ContainerStatus> {
    let status = pod.status.as_ref();
    let init = status.and_then(|s| s.init_container_statuses.as_deref());
    let main = status.and_then(|s| s.container_statuses.as_deref());
    init.unwrap_or_default()
        .iter()
        .chain(main.unwrap_or_default())
}

/// "reason: message", leaving out what is empty.
fn describe(reason: Option<&str>, message: Option<&str>) -> String {
    [reason, message]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}

fn elapsed_at_least(since: Option<Timestamp>, now: Timestamp, d: Duration) -> bool {
    // Unknown start: not judged yet.
    since.is_some_and(|t| now.as_second().saturating_sub(t.as_second()) >= d.as_secs() as i64)
}

fn pending(pod: &Pod, config: &PodPluginConfig, now: Timestamp) -> AttemptStatus {
    // Since when the containers have been trying to start: the readiness conditions' last
    // change, else the pod's start, else its creation (as Flyte measures grace periods).
    let ready_since = conditions(pod)
        .iter()
        .filter(|c| c.type_ == "ContainersReady" || c.type_ == "Ready")
        .filter_map(|c| c.last_transition_time.as_ref().map(|t| t.0))
        .max()
        .or_else(|| {
            pod.status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0)
        })
        .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0));

    for cs in container_statuses(pod) {
        let Some(waiting) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
            continue;
        };
        let reason = waiting.reason.as_deref().unwrap_or_default();
        let message = || describe(Some(reason), waiting.message.as_deref());
        let grace = match reason {
            r if FATAL_WAITING.contains(&r) => return AttemptStatus::Failed { message: message() },
            "ErrImagePull" | "ImagePullBackOff" => config.image_pull_grace,
            "CreateContainerError" => config.create_container_error_grace,
            _ => continue,
        };
        if elapsed_at_least(ready_since, now, grace) {
            return AttemptStatus::Failed { message: message() };
        }
    }

    let unschedulable = conditions(pod).iter().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    });
    if let Some(c) = unschedulable {
        let since = c
            .last_transition_time
            .as_ref()
            .map(|t| t.0)
            .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0));
        if elapsed_at_least(since, now, config.unschedulable_timeout) {
            return AttemptStatus::Lost {
                message: describe(c.reason.as_deref(), c.message.as_deref()),
            };
        }
    }
    AttemptStatus::Running
}

fn failed(pod: &Pod) -> AttemptStatus {
    let status = pod.status.as_ref();
    let reason = status.and_then(|s| s.reason.as_deref());
    let message = status.and_then(|s| s.message.as_deref());
    if reason.is_some_and(|r| LOST_REASONS.contains(&r)) {
        return AttemptStatus::Lost {
            message: describe(reason, message),
        };
    }
    // Kubernetes >= 1.26 marks pods it is about to kill for preemption, eviction or node
    // drain; 1.20 has no such condition and relies on the reason above.
    if let Some(c) = conditions(pod)
        .iter()
        .find(|c| c.type_ == "DisruptionTarget" && c.status == "True")
    {
        return AttemptStatus::Lost {
            message: describe(
                Some(c.reason.as_deref().unwrap_or("DisruptionTarget")),
                c.message.as_deref(),
            ),
        };
    }

    match primary_terminated(pod) {
        Some(t) => exited(t),
        // Failed with no container verdict (an init container failed, a deadline passed).
        None => AttemptStatus::Exited {
            exit_code: None,
            message: {
                let d = describe(reason, message);
                if d.is_empty() {
                    "pod failed".into()
                } else {
                    d
                }
            },
        },
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
