//! Values along chains, parallelism, failure policies, retries and timeouts.

use super::*;

#[test]
fn a_chain_passes_values_along() {
    let (exec, events) = execute(&chain(50), &[("x", int(1))], &mut Fake::arithmetic());
    assert_eq!(exec.phase(), WorkflowPhase::Succeeded);
    assert_eq!(out(&exec, "o0"), 51);
    // Every node reports exactly one terminal event.
    let terminal = events
        .iter()
        .filter(|e| matches!(e, Event::Node(n) if n.phase == 3))
        .count();
    assert_eq!(terminal, 50);
    let Event::Workflow(last) = events.last().expect("events") else {
        panic!("last event is not the workflow's")
    };
    assert_eq!(last.phase, 4, "SUCCEEDED");
}

#[test]
fn a_long_chain_runs() {
    let (exec, _) = execute(&chain(1000), &[("x", int(0))], &mut Fake::arithmetic());
    assert_eq!(out(&exec, "o0"), 1000);
}

#[test]
fn independent_nodes_run_concurrently_within_max_parallelism() {
    let closure = diamond(OnFailurePolicy::FailImmediately);
    let mut fake = Fake::arithmetic();
    fake.deferred = true;
    let (exec, _) = execute(&closure, &[("x", int(2))], &mut fake);
    assert_eq!(out(&exec, "o0"), 4 + 9);
    assert_eq!(fake.max_in_flight, 2, "b and c run together");

    let mut fake = Fake::arithmetic();
    fake.deferred = true;
    let mut exec = Execution::new(
        &closure,
        inputs(&[("x", int(2))]),
        ExecutionSettings {
            max_parallelism: 1,
            ..Default::default()
        },
    )
    .expect("closure");
    run(&mut exec, &mut fake, |_| {}).expect("driver");
    assert_eq!(out(&exec, "o0"), 13);
    assert_eq!(fake.max_in_flight, 1);
}

#[test]
fn fail_immediately_aborts_running_siblings() {
    let closure = diamond(OnFailurePolicy::FailImmediately);
    let mut fake = Fake::arithmetic().on("square", |_| None); // c never finishes on its own
    fake.bodies.insert(
        "inc".into(),
        Box::new(|a| {
            if a.node_execution_id == "b" {
                Some(TaskOutcome::Failed(user_error("b broke")))
            } else {
                Some(ok(&[("o0", int(1))]))
            }
        }),
    );
    fake.deferred = true;
    let (exec, _) = execute(&closure, &[("x", int(2))], &mut fake);
    assert_eq!(exec.phase(), WorkflowPhase::Failed);
    assert_eq!(exec.error().expect("error").message, "b broke");
    assert_eq!(fake.aborted.len(), 1, "c's attempt was aborted");
    let phases: Vec<_> = exec
        .state()
        .nodes
        .iter()
        .map(|n| (n.id.as_str(), n.phase))
        .collect();
    assert!(phases.contains(&("c", NodePhase::Aborted)), "{phases:?}");
    assert!(phases.contains(&("d", NodePhase::Skipped)), "{phases:?}");
}

#[test]
fn fail_after_executable_nodes_complete_finishes_independent_work() {
    let closure = diamond(OnFailurePolicy::FailAfterExecutableNodesComplete);
    let mut fake = Fake::arithmetic();
    fake.bodies.insert(
        "inc".into(),
        Box::new(|a| {
            if a.node_execution_id == "b" {
                Some(TaskOutcome::Failed(user_error("b broke")))
            } else {
                Some(ok(&[("o0", int(1))]))
            }
        }),
    );
    let (exec, _) = execute(&closure, &[("x", int(2))], &mut fake);
    assert_eq!(exec.phase(), WorkflowPhase::Failed);
    let phase = |id: &str| {
        exec.state()
            .nodes
            .iter()
            .find(|n| n.id == id)
            .map(|n| n.phase)
    };
    assert_eq!(phase("c"), Some(NodePhase::Succeeded), "c still ran");
    assert_eq!(
        phase("d"),
        Some(NodePhase::Skipped),
        "d depends on the failed b"
    );
}

#[test]
fn user_errors_use_the_task_retries_and_system_errors_their_own_budget() {
    let wf = workflow(
        "r",
        &["x"],
        vec![task_node(
            "n0",
            "flaky",
            vec![bind("x", promise("start-node", "x"))],
        )],
        vec![bind("o0", promise("n0", "o0"))],
        &["o0"],
    );
    let scripted = |failures: Vec<alula_idl::flyteidl::core::ExecutionError>| {
        let mut left = failures.into_iter();
        Fake::new().on("flaky", move |a| {
            Some(match left.next() {
                Some(e) => TaskOutcome::Failed(e),
                None => ok(&[("o0", int(a.retry_attempt as i64))]),
            })
        })
    };
    // Two user failures, two retries: succeeds on attempt 2.
    let c = closure(
        wf.clone(),
        vec![],
        vec![with_retries(task("flaky", &["x"], &["o0"]), 2)],
    );
    let (exec, events) = execute(
        &c,
        &[("x", int(0))],
        &mut scripted(vec![user_error("1"), user_error("2")]),
    );
    assert_eq!(out(&exec, "o0"), 2);
    let task_phases: Vec<i32> = events
        .iter()
        .filter_map(|e| match e {
            Event::Task(t) => Some(t.phase),
            _ => None,
        })
        .collect();
    // RUNNING, RETRYABLE_FAILED, RUNNING, RETRYABLE_FAILED, RUNNING, SUCCEEDED
    assert_eq!(task_phases, vec![2, 8, 2, 8, 2, 3]);
    // One retry is not enough.
    let c = closure(
        wf.clone(),
        vec![],
        vec![with_retries(task("flaky", &["x"], &["o0"]), 1)],
    );
    let (exec, _) = execute(
        &c,
        &[("x", int(0))],
        &mut scripted(vec![user_error("1"), user_error("final")]),
    );
    assert_eq!(exec.phase(), WorkflowPhase::Failed);
    assert_eq!(exec.error().expect("error").message, "final");
    // System errors do not consume user retries: 3 system failures pass with 0 user retries.
    let c = closure(wf, vec![], vec![task("flaky", &["x"], &["o0"])]);
    let (exec, _) = execute(
        &c,
        &[("x", int(0))],
        &mut scripted(vec![
            system_error("a"),
            system_error("b"),
            system_error("c"),
        ]),
    );
    assert_eq!(out(&exec, "o0"), 3);
    let (exec, _) = execute(
        &c,
        &[("x", int(0))],
        &mut scripted(vec![
            system_error("a"),
            system_error("b"),
            system_error("c"),
            system_error("d"),
        ]),
    );
    assert_eq!(exec.phase(), WorkflowPhase::Failed);
}

#[test]
fn a_task_timeout_aborts_the_attempt_and_retries() {
    let wf = workflow(
        "t",
        &["x"],
        vec![task_node(
            "n0",
            "slow",
            vec![bind("x", promise("start-node", "x"))],
        )],
        vec![bind("o0", promise("n0", "o0"))],
        &["o0"],
    );
    let c = closure(
        wf,
        vec![],
        vec![with_retries(
            with_timeout(task("slow", &["x"], &["o0"]), 10),
            1,
        )],
    );
    // The first attempt hangs; the second finishes.
    let mut fake = Fake::new().on("slow", |a| {
        (a.retry_attempt == 1).then(|| ok(&[("o0", int(7))]))
    });
    let (exec, _) = execute(&c, &[("x", int(0))], &mut fake);
    assert_eq!(out(&exec, "o0"), 7);
    assert_eq!(fake.aborted.len(), 1);
    // Without a retry the timeout fails the workflow.
    let wf = workflow(
        "t",
        &["x"],
        vec![task_node(
            "n0",
            "slow",
            vec![bind("x", promise("start-node", "x"))],
        )],
        vec![bind("o0", promise("n0", "o0"))],
        &["o0"],
    );
    let c = closure(
        wf,
        vec![],
        vec![with_timeout(task("slow", &["x"], &["o0"]), 10)],
    );
    let (exec, _) = execute(&c, &[("x", int(0))], &mut Fake::new().on("slow", |_| None));
    assert_eq!(exec.phase(), WorkflowPhase::Failed);
    assert!(
        exec.error()
            .expect("error")
            .message
            .contains("timeout of 10s"),
        "{:?}",
        exec.error()
    );
}

#[test]
fn a_node_timeout_times_the_node_out() {
    let mut n = task_node("n0", "slow", vec![bind("x", promise("start-node", "x"))]);
    n.metadata = Some(NodeMetadata {
        timeout: Some(alula_idl::wkt::Duration {
            seconds: 5,
            nanos: 0,
        }),
        ..Default::default()
    });
    let wf = workflow(
        "t",
        &["x"],
        vec![n],
        vec![bind("o0", promise("n0", "o0"))],
        &["o0"],
    );
    let c = closure(wf, vec![], vec![task("slow", &["x"], &["o0"])]);
    let (exec, _) = execute(&c, &[("x", int(0))], &mut Fake::new().on("slow", |_| None));
    assert_eq!(exec.phase(), WorkflowPhase::Failed);
    assert_eq!(exec.state().nodes[0].phase, NodePhase::TimedOut);
}
