//! Log links of map task elements: a driver hands the engine each element attempt's links, and
//! the array node's task events carry them in the element's external resource (only for the
//! attempt the resource stands for), while it runs and when it ends.

mod support;

use std::collections::HashMap;
use std::time::SystemTime;

use alula_engine::{Action, AttemptId, Event, Execution, ExecutionSettings, TaskAttempt};
use alula_idl::flyteidl::core::{
    array_node::SuccessCriteria, task_execution, ArrayNode, CompiledWorkflowClosure, TaskLog,
    WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::event::TaskExecutionEvent;
use support::*;

fn settings() -> ExecutionSettings {
    ExecutionSettings {
        record_events: true,
        execution_id: WorkflowExecutionIdentifier {
            project: "p".into(),
            domain: "d".into(),
            name: "x1".into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn map_closure() -> CompiledWorkflowClosure {
    let array = ArrayNode {
        success_criteria: Some(SuccessCriteria::MinSuccesses(3)),
        ..Default::default()
    };
    support::map_closure(with_retries(task("maybe", &["x"], &["o0"]), 1), array)
}

fn link(element: u32, retry: u32) -> Vec<TaskLog> {
    vec![TaskLog {
        uri: format!("http://logs/{element}/{retry}"),
        name: "stdout".into(),
        ..Default::default()
    }]
}

/// Element attempts the engine asks to start, by element.
fn starts(exec: &mut Execution) -> HashMap<u32, TaskAttempt> {
    exec.poll(SystemTime::now())
        .into_iter()
        .filter_map(|a| match a {
            Action::StartTask(t) => Some((t.array_index.expect("an element"), *t)),
            _ => None,
        })
        .collect()
}

fn array_events(exec: &mut Execution) -> Vec<TaskExecutionEvent> {
    exec.take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Task(t) if t.task_type == "k8s-array" => Some(*t),
            _ => None,
        })
        .collect()
}

/// (retry attempt, link URIs) of each element's external resource.
fn links(event: &TaskExecutionEvent) -> Vec<(u32, Vec<String>)> {
    event
        .metadata
        .as_ref()
        .expect("metadata")
        .external_resources
        .iter()
        .map(|r| {
            (
                r.retry_attempt,
                r.logs.iter().map(|l| l.uri.clone()).collect(),
            )
        })
        .collect()
}

fn uri(element: u32, retry: u32) -> Vec<String> {
    vec![format!("http://logs/{element}/{retry}")]
}

fn finish(exec: &mut Execution, id: AttemptId, x: i64) {
    exec.task_finished(id, ok(&[("o0", int(x))]), SystemTime::now())
        .expect("known attempt");
}

#[test]
fn array_task_events_carry_each_elements_latest_attempt_links() {
    let xs = alula_engine::literals::collection((0..3).map(int).collect());
    let mut exec =
        Execution::new(&map_closure(), inputs(&[("xs", xs)]), settings()).expect("valid closure");
    let first = starts(&mut exec);
    assert_eq!(first.len(), 3);
    let started = array_events(&mut exec);
    assert_eq!(started.len(), 1, "the RUNNING event of the start");
    assert!(links(&started[0]).iter().all(|(_, l)| l.is_empty()));

    for (&e, a) in &first {
        assert!(exec.set_attempt_logs(a.id, link(e, a.retry_attempt)));
    }
    exec.report_array_logs(SystemTime::now());
    let progress = array_events(&mut exec);
    assert_eq!(progress.len(), 1);
    assert_eq!(progress[0].phase, task_execution::Phase::Running as i32);
    assert_eq!(progress[0].phase_version, 3, "one per attempt started");
    assert_eq!(
        links(&progress[0]),
        vec![(0, uri(0, 0)), (0, uri(1, 0)), (0, uri(2, 0))]
    );
    // Nothing new: no event.
    exec.report_array_logs(SystemTime::now());
    assert!(array_events(&mut exec).is_empty());

    // Element 1 fails and is retried: its resource stands for the new attempt, whose links
    // are not known yet, so the old attempt's are not shown for it.
    exec.task_finished(
        first[&1].id,
        alula_engine::TaskOutcome::Failed(user_error("boom")),
        SystemTime::now(),
    )
    .expect("known attempt");
    let retry = starts(&mut exec);
    let again = &retry[&1];
    assert_eq!(again.retry_attempt, 1);
    finish(&mut exec, first[&0].id, 0);
    finish(&mut exec, first[&2].id, 2);
    assert!(exec.set_attempt_logs(again.id, link(1, 1)));
    exec.report_array_logs(SystemTime::now());
    let progress = array_events(&mut exec);
    assert_eq!(progress.len(), 1);
    assert_eq!(progress[0].phase_version, 4);
    assert_eq!(
        links(&progress[0]),
        vec![(0, uri(0, 0)), (1, uri(1, 1)), (0, uri(2, 0))]
    );

    finish(&mut exec, again.id, 1);
    let done = array_events(&mut exec);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].phase, task_execution::Phase::Succeeded as i32);
    assert_eq!(
        links(&done[0]),
        vec![(0, uri(0, 0)), (1, uri(1, 1)), (0, uri(2, 0))]
    );
    // The node is over: nothing more is reported of it.
    exec.report_array_logs(SystemTime::now());
    assert!(array_events(&mut exec).is_empty());
}

#[test]
fn only_array_element_attempts_take_links() {
    let wf = workflow(
        "one",
        &["x"],
        vec![task_node(
            "n0",
            "t",
            vec![bind("x", promise("start-node", "x"))],
        )],
        vec![bind("o0", promise("n0", "o0"))],
        &["o0"],
    );
    let c = closure(wf, vec![], vec![task("t", &["x"], &["o0"])]);
    let mut exec = Execution::new(&c, inputs(&[("x", int(1))]), settings()).expect("valid");
    let attempt = exec
        .poll(SystemTime::now())
        .into_iter()
        .find_map(|a| match a {
            Action::StartTask(t) => Some(t.id),
            _ => None,
        })
        .expect("a task attempt");
    assert!(!exec.set_attempt_logs(attempt, link(0, 0)));
    assert!(!exec.set_attempt_logs(attempt + 100, link(0, 0)));
}
