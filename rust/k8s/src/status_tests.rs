use serde_json::json;

use super::*;

/// "Now" in these tests; pods are created at T0.
const T0: &str = "2026-01-01T00:00:00Z";

fn at(secs: i64) -> Timestamp {
    let t0: Timestamp = T0.parse().unwrap();
    Timestamp::from_second(t0.as_second() + secs).unwrap()
}

fn pod(status: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "p", "creationTimestamp": T0},
        "spec": {"containers": [{"name": "task", "image": "x"}]},
        "status": status,
    }))
    .unwrap()
}

fn waiting(reason: &str) -> Pod {
    pod(json!({
        "phase": "Pending",
        "conditions": [{"type": "ContainersReady", "status": "False", "lastTransitionTime": T0}],
        "containerStatuses": [{"name": "task", "ready": false, "restartCount": 0, "image": "x",
            "imageID": "", "state": {"waiting": {"reason": reason, "message": "details"}}}],
    }))
}

fn terminated(reason: &str, code: i32, message: Option<&str>) -> Pod {
    pod(json!({
        "phase": "Failed",
        "containerStatuses": [{"name": "task", "ready": false, "restartCount": 0, "image": "x",
            "imageID": "", "state": {"terminated": {"exitCode": code, "reason": reason, "message": message}}}],
    }))
}

fn status(p: &Pod, secs: i64) -> AttemptStatus {
    attempt_status(p, &PodPluginConfig::default(), at(secs))
}

#[test]
fn pending_is_running() {
    assert_eq!(
        status(&pod(json!({"phase": "Pending"})), 0),
        AttemptStatus::Running
    );
    // No status at all yet (just created).
    assert_eq!(status(&pod(json!(null)), 0), AttemptStatus::Running);
    assert_eq!(
        status(&waiting("ContainerCreating"), 10_000),
        AttemptStatus::Running
    );
}

#[test]
fn image_pull_errors_fail_after_the_grace_period() {
    for reason in ["ErrImagePull", "ImagePullBackOff"] {
        let p = waiting(reason);
        assert_eq!(status(&p, 179), AttemptStatus::Running, "{reason}");
        assert_eq!(
            status(&p, 180),
            AttemptStatus::Failed {
                message: format!("{reason}: details")
            }
        );
    }
    let p = waiting("CreateContainerError");
    assert_eq!(status(&p, 10), AttemptStatus::Running);
    assert!(matches!(status(&p, 200), AttemptStatus::Failed { .. }));
}

#[test]
fn config_errors_fail_at_once() {
    assert_eq!(
        status(&waiting("CreateContainerConfigError"), 0),
        AttemptStatus::Failed {
            message: "CreateContainerConfigError: details".into()
        }
    );
    assert!(matches!(
        status(&waiting("InvalidImageName"), 0),
        AttemptStatus::Failed { .. }
    ));
}

#[test]
fn unschedulable_is_lost_after_the_timeout() {
    let p = pod(json!({
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available", "lastTransitionTime": T0}],
    }));
    assert_eq!(status(&p, 599), AttemptStatus::Running);
    assert_eq!(
        status(&p, 600),
        AttemptStatus::Lost {
            message: "Unschedulable: 0/3 nodes are available".into()
        }
    );
}

#[test]
fn running_and_unknown_are_running() {
    assert_eq!(
        status(&pod(json!({"phase": "Running"})), 0),
        AttemptStatus::Running
    );
    assert_eq!(
        status(&pod(json!({"phase": "Unknown"})), 0),
        AttemptStatus::Running
    );
}

#[test]
fn succeeded_exits_zero() {
    assert_eq!(
        status(&pod(json!({"phase": "Succeeded"})), 0),
        AttemptStatus::Exited {
            exit_code: Some(0),
            message: String::new()
        }
    );
}

#[test]
fn failed_exits_with_the_containers_code_and_message() {
    assert_eq!(
        status(&terminated("Error", 3, Some("Traceback: boom")), 0),
        AttemptStatus::Exited {
            exit_code: Some(3),
            message: "Error: Traceback: boom".into()
        }
    );
    // No container verdict: the pod's own reason.
    assert_eq!(
        status(
            &pod(json!({"phase": "Failed", "reason": "DeadlineExceeded", "message": "too long"})),
            0
        ),
        AttemptStatus::Exited {
            exit_code: None,
            message: "DeadlineExceeded: too long".into()
        }
    );
    assert_eq!(
        status(&pod(json!({"phase": "Failed"})), 0),
        AttemptStatus::Exited {
            exit_code: None,
            message: "pod failed".into()
        }
    );
}

#[test]
fn oom_killed_is_a_retryable_user_exit_with_flytes_code() {
    assert_eq!(
        status(&terminated("OOMKilled", 137, None), 0),
        AttemptStatus::Killed {
            exit_code: Some(137),
            code: "OOMKilled".into(),
            message: "OOMKilled".into()
        }
    );
}

#[test]
fn evicted_and_preempted_are_lost() {
    let evicted = pod(json!({"phase": "Failed", "reason": "Evicted",
        "message": "The node was low on resource: memory."}));
    assert_eq!(
        status(&evicted, 0),
        AttemptStatus::Lost {
            message: "Evicted: The node was low on resource: memory.".into()
        }
    );
    let mut preempted = terminated("Error", 137, None);
    preempted.status.as_mut().unwrap().conditions = Some(vec![PodCondition {
        type_: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some("PreemptionByScheduler".into()),
        message: Some("preempted by a higher priority pod".into()),
        ..Default::default()
    }]);
    assert_eq!(
        status(&preempted, 0),
        AttemptStatus::Lost {
            message: "PreemptionByScheduler: preempted by a higher priority pod".into()
        }
    );
}

/// A pod task's pod: primary container `main` (named by our annotation) and a sidecar.
fn pod_task(phase: &str, main: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "p", "creationTimestamp": T0,
                     "annotations": {"alula.dev/primary-container": "main"}},
        "spec": {"containers": [{"name": "main", "image": "x"}, {"name": "sidecar", "image": "y"}]},
        "status": {"phase": phase, "containerStatuses": [
            {"name": "sidecar", "ready": true, "restartCount": 0, "image": "y", "imageID": "",
             "state": {"running": {"startedAt": T0}}},
            {"name": "main", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
             "state": main}]},
    }))
    .unwrap()
}

#[test]
fn pod_tasks_are_judged_by_their_primary_container() {
    let running = pod_task("Running", json!({"running": {"startedAt": T0}}));
    assert_eq!(status(&running, 5), AttemptStatus::Running);
    // The primary ended while the sidecar still runs: the attempt is over.
    let done = pod_task(
        "Running",
        json!({"terminated": {"exitCode": 0, "reason": "Completed"}}),
    );
    assert_eq!(
        status(&done, 5),
        AttemptStatus::Exited {
            exit_code: Some(0),
            message: String::new()
        }
    );
    let oom = pod_task(
        "Running",
        json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}),
    );
    assert_eq!(
        status(&oom, 5),
        AttemptStatus::Killed {
            exit_code: Some(137),
            code: "OOMKilled".into(),
            message: "OOMKilled".into()
        }
    );
    let failed = pod_task(
        "Failed",
        json!({"terminated": {"exitCode": 2, "reason": "Error",
        "message": "boom"}}),
    );
    assert_eq!(
        status(&failed, 5),
        AttemptStatus::Exited {
            exit_code: Some(2),
            message: "Error: boom".into()
        }
    );
}

#[test]
fn a_missing_secret_fails_with_the_kubelets_message() {
    let mut p = waiting("CreateContainerConfigError");
    if let Some(cs) = p
        .status
        .as_mut()
        .and_then(|s| s.container_statuses.as_mut())
    {
        cs[0]
            .state
            .as_mut()
            .unwrap()
            .waiting
            .as_mut()
            .unwrap()
            .message = Some("secret \"db\" not found".into());
    }
    assert_eq!(
        status(&p, 0),
        AttemptStatus::Failed {
            message: "CreateContainerConfigError: secret \"db\" not found".into()
        }
    );
}
