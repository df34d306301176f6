//! The engine state's stored form (`state_codec`): states read back as written, states saved
//! as JSON by earlier versions still resume, and what is neither is refused with a reason.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod support;

use std::time::{Duration, SystemTime};

use alula_engine::{state_codec, Action, Execution, ExecutionSettings, TaskOutcome};
use alula_idl::flyteidl::core::{array_node, ArrayNode, CompiledWorkflowClosure};
use support::*;

fn map_closure() -> CompiledWorkflowClosure {
    // Failed elements do not fail the map (and abort the rest) below half.
    let array = ArrayNode {
        success_criteria: Some(array_node::SuccessCriteria::MinSuccessRatio(0.5)),
        ..Default::default()
    };
    support::map_closure(task("square", &["x"], &["o0"]), array)
}

/// A map over `n` elements stopped halfway: elements succeeded (with outputs), failed (with an
/// error), running and not started.
fn halfway_map(n: i64) -> Execution {
    let xs = alula_engine::literals::collection((0..n).map(int).collect());
    let settings = ExecutionSettings {
        max_parallelism: 0,
        ..Default::default()
    };
    let mut exec = Execution::new(&map_closure(), inputs(&[("xs", xs)]), settings).unwrap();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let started: Vec<_> = exec
        .poll(now)
        .into_iter()
        .filter_map(|action| match action {
            Action::StartTask(a) => Some(a),
            _ => None,
        })
        .collect();
    assert!(started.len() as i64 > n / 2, "{} started", started.len());
    for a in started.into_iter().take((n / 2) as usize) {
        let x = as_int(&a.inputs.literals["x"]);
        let outcome = if x % 7 == 3 {
            TaskOutcome::Failed(user_error(&format!("{x} is unlucky")))
        } else {
            ok(&[("o0", int(x * x))])
        };
        exec.task_finished(a.id, outcome, now).unwrap();
    }
    exec
}

fn json(state: &alula_engine::ExecutionState) -> serde_json::Value {
    serde_json::to_value(state).unwrap()
}

#[test]
fn a_state_reads_back_as_written_and_is_much_smaller_than_json() {
    let exec = halfway_map(2_000);
    let stored = state_codec::encode(exec.state()).unwrap();
    let back = state_codec::decode(&stored).unwrap();
    assert_eq!(json(&back), json(exec.state()));
    let as_json = serde_json::to_vec(exec.state()).unwrap();
    assert!(
        stored.len() * 4 < as_json.len(),
        "stored {} bytes, JSON {}",
        stored.len(),
        as_json.len()
    );
}

#[test]
fn a_state_saved_as_json_by_an_earlier_version_still_resumes() {
    let exec = halfway_map(50);
    let legacy = serde_json::to_vec_pretty(exec.state()).unwrap();
    let state = state_codec::decode(&legacy).unwrap();
    assert_eq!(json(&state), json(exec.state()));
    Execution::resume(
        &map_closure(),
        state,
        ExecutionSettings::default(),
        SystemTime::now(),
    )
    .unwrap();
}

#[test]
fn what_is_neither_form_is_refused_with_a_reason() {
    let stored = state_codec::encode(halfway_map(10).state()).unwrap();
    for bad in [
        Vec::new(),
        b"not a state".to_vec(),
        stored[..stored.len() / 2].to_vec(),
        b"{\"execution_id\": 1}".to_vec(),
    ] {
        let error = state_codec::decode(&bad).unwrap_err();
        assert!(!error.to_string().is_empty());
    }
    // Every truncation of a stored state is an error, never a panic or a different state.
    for cut in 0..stored.len() {
        assert!(state_codec::decode(&stored[..cut]).is_err(), "cut at {cut}");
    }
}
