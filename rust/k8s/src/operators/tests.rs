//! The operator core's pieces that need no API server: statuses, names, refusals.

use alula_propeller::AttemptStatus;
use serde_json::json;

use super::*;
use crate::testutil::{attempt, config, task};

fn status(name: &str, object: serde_json::Value) -> AttemptStatus {
    operator(name).expect("operator").status(&object)
}

#[test]
fn spark_states_map_to_attempt_statuses() {
    let state = |s: &str| json!({"status": {"applicationState": {"state": s, "errorMessage": "driver exited 1"}}});
    assert_eq!(status("spark", state("RUNNING")), AttemptStatus::Running);
    assert_eq!(status("spark", json!({})), AttemptStatus::Running);
    assert!(matches!(
        status("spark", state("COMPLETED")),
        AttemptStatus::Exited {
            exit_code: Some(0),
            ..
        }
    ));
    match status("spark", state("FAILED")) {
        AttemptStatus::Killed { code, message, .. } => {
            assert_eq!(code, "SparkApplicationFailed");
            assert_eq!(message, "driver exited 1");
        }
        other => panic!("a failed application fails the attempt, got {other:?}"),
    }
}

#[test]
fn ray_job_statuses_map_to_attempt_statuses() {
    let s = |d: &str, j: &str| json!({"status": {"jobDeploymentStatus": d, "jobStatus": j, "message": "boom"}});
    assert_eq!(
        status("ray", s("Running", "RUNNING")),
        AttemptStatus::Running
    );
    assert!(matches!(
        status("ray", s("Complete", "SUCCEEDED")),
        AttemptStatus::Exited {
            exit_code: Some(0),
            ..
        }
    ));
    assert!(matches!(
        status("ray", s("Complete", "FAILED")),
        AttemptStatus::Killed { ref message, .. } if message == "boom"
    ));
    assert!(matches!(
        status("ray", s("Failed", "")),
        AttemptStatus::Killed { ref code, .. } if code == "RayJobDeploymentFailed"
    ));
}

#[test]
fn kubeflow_reads_the_latest_true_condition() {
    let c = |t: &str, s: &str, at: &str| json!({"type": t, "status": s, "lastTransitionTime": at, "reason": "r", "message": format!("{t} m")});
    let job = |cs: Vec<serde_json::Value>| json!({"status": {"conditions": cs}});
    let running = job(vec![
        c("Created", "True", "2026-01-01T00:00:00Z"),
        c("Running", "True", "2026-01-01T00:00:05Z"),
    ]);
    assert_eq!(status("pytorch", running), AttemptStatus::Running);
    let done = job(vec![
        c("Created", "True", "2026-01-01T00:00:00Z"),
        c("Running", "False", "2026-01-01T00:00:09Z"),
        c("Succeeded", "True", "2026-01-01T00:00:09Z"),
    ]);
    assert!(matches!(
        status("mpi", done),
        AttemptStatus::Exited {
            exit_code: Some(0),
            ..
        }
    ));
    let failed = job(vec![
        c("Running", "True", "2026-01-01T00:00:05Z"),
        c("Failed", "True", "2026-01-01T00:00:07Z"),
    ]);
    match status("tensorflow", failed) {
        AttemptStatus::Killed { code, message, .. } => {
            assert_eq!(code, "TFJobFailed");
            assert_eq!(message, "r: Failed m");
        }
        other => panic!("a failed job fails the attempt, got {other:?}"),
    }
}

#[test]
fn unknown_operators_are_refused_by_name() {
    let err = operator("dask")
        .err()
        .expect("no dask operator")
        .to_string();
    assert!(
        err.contains("\"dask\"") && err.contains("spark, ray"),
        "{err}"
    );
}

#[test]
fn a_task_without_its_message_is_refused_precisely() {
    let mut t = task(&[], &["pyflyte-execute"]);
    t.r#type = "pytorch".into();
    let a = attempt(t);
    let err = build_resource(operator("pytorch").unwrap().as_ref(), &a, &config(), None)
        .expect_err("no workers")
        .to_string();
    assert!(err.contains("0 workers"), "{err}");
}

#[test]
fn resource_names_are_the_attempts_and_dns_labels() {
    let mut t = task(&[], &["pyflyte-execute"]);
    t.r#type = "ray".into();
    let mut a = attempt(t);
    a.execution.name = "a-very-long-execution-name-that-goes-on-and-on-and-on".into();
    a.node_id = "n-with-a-long-node-id-too".into();
    let o = build_resource(operator("ray").unwrap().as_ref(), &a, &config(), None).expect("job");
    let name = o.metadata.name.expect("name");
    assert!(name.len() <= 63, "{name}");
    assert_eq!(name, crate::pod::pod_name(&a));
    let labels = o.metadata.labels.expect("labels");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "alula");
    assert_eq!(o.types.expect("types").kind, "RayJob");
}
