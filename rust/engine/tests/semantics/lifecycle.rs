//! Gates, aborts, state that survives serialization, failure nodes and wake-ups after a resume.

use super::*;

/// Gate `id` waiting for integer signal `signal_id`, given as its output `o0`.
fn signal_gate(id: &str, signal_id: &str) -> Node {
    Node {
        id: id.into(),
        target: Some(node::Target::GateNode(GateNode {
            condition: Some(gate_node::Condition::Signal(SignalCondition {
                signal_id: signal_id.into(),
                r#type: Some(int_type()),
                output_variable_name: "o0".into(),
            })),
        })),
        ..Default::default()
    }
}

#[test]
fn gates_sleep_and_wait_for_signals() {
    let sleep = Node {
        id: "g0".into(),
        target: Some(node::Target::GateNode(GateNode {
            condition: Some(gate_node::Condition::Sleep(SleepCondition {
                duration: Some(alula_idl::wkt::Duration {
                    seconds: 30,
                    nanos: 0,
                }),
            })),
        })),
        ..Default::default()
    };
    let approve = Node {
        id: "g1".into(),
        inputs: vec![bind("x", promise("start-node", "x"))],
        upstream_node_ids: vec!["g0".into()],
        target: Some(node::Target::GateNode(GateNode {
            condition: Some(gate_node::Condition::Approve(ApproveCondition {
                signal_id: "ok".into(),
            })),
        })),
        ..Default::default()
    };
    let signal = signal_gate("g2", "factor");
    let add = task_node(
        "n0",
        "add",
        vec![
            bind("x", promise("g1", "x")),
            bind("y", promise("g2", "o0")),
        ],
    );
    let wf = workflow(
        "gates",
        &["x"],
        vec![sleep, approve, signal, add],
        vec![bind("o0", promise("n0", "o0"))],
        &["o0"],
    );
    let c = closure(wf, vec![], vec![task("add", &["x", "y"], &["o0"])]);

    let mut fake = Fake::arithmetic();
    let start = fake.clock;
    fake.signals.insert(
        "ok".into(),
        alula_engine::literals::primitive(alula_idl::flyteidl::core::primitive::Value::Boolean(
            true,
        )),
    );
    fake.signals.insert("factor".into(), int(5));
    let (exec, _) = execute(&c, &[("x", int(1))], &mut fake);
    assert_eq!(out(&exec, "o0"), 6);
    assert_eq!(
        fake.clock.duration_since(start).ok(),
        Some(Duration::from_secs(30)),
        "slept 30s"
    );

    let mut fake = Fake::arithmetic();
    fake.signals.insert(
        "ok".into(),
        alula_engine::literals::primitive(alula_idl::flyteidl::core::primitive::Value::Boolean(
            false,
        )),
    );
    fake.signals.insert("factor".into(), int(5));
    let (exec, _) = execute(&c, &[("x", int(1))], &mut fake);
    assert_eq!(exec.phase(), WorkflowPhase::Failed);
    assert!(exec.error().expect("error").message.contains("rejected"));
}

#[test]
fn abort_stops_running_attempts() {
    let c = diamond(OnFailurePolicy::FailImmediately);
    let mut fake = Fake::arithmetic().on("square", |_| None).on("inc", |a| {
        (a.node_execution_id == "a").then(|| ok(&[("o0", int(1))]))
    });
    let mut exec = Execution::new(&c, inputs(&[("x", int(1))]), settings()).expect("closure");
    let mut started = Vec::new();
    for _ in 0..3 {
        for action in exec.poll(fake.now()) {
            if let alula_engine::Action::StartTask(a) = action {
                let id = a.id;
                started.push(id);
                if let Some(o) = fake.start(*a) {
                    exec.task_finished(id, o, fake.now())
                        .expect("known attempt");
                }
            }
        }
    }
    assert_eq!(exec.running_attempts().count(), 2, "b and c are running");
    let actions = exec.abort("user asked", fake.now());
    let aborted = actions
        .iter()
        .filter(|a| matches!(a, alula_engine::Action::AbortTask { .. }))
        .count();
    assert_eq!(aborted, 2);
    assert_eq!(exec.phase(), WorkflowPhase::Aborted);
    let events = exec.take_events();
    assert!(
        matches!(events.last(), Some(Event::Workflow(w)) if w.phase == 7),
        "ABORTED last"
    );
}

#[test]
fn state_survives_serialization_mid_run() {
    let c = diamond(OnFailurePolicy::FailImmediately);
    let mut fake = Fake::arithmetic();
    fake.deferred = true;
    let mut exec = Execution::new(&c, inputs(&[("x", int(2))]), ExecutionSettings::default())
        .expect("closure");
    // Run until b and c are in flight.
    for action in exec.poll(fake.now()) {
        if let alula_engine::Action::StartTask(a) = action {
            fake.start(*a);
        }
    }
    let (id, outcome) = fake.wait().expect("a finished");
    exec.task_finished(id, outcome, fake.now()).expect("known");
    let mut in_flight = Vec::new();
    for action in exec.poll(fake.now()) {
        if let alula_engine::Action::StartTask(a) = action {
            in_flight.push(a.id);
            fake.start(*a);
        }
    }
    assert_eq!(in_flight.len(), 2);
    // Persist, drop, resume: the attempts in flight are still known and the run completes.
    let json = serde_json::to_string(exec.state()).expect("serialize");
    drop(exec);
    let state = serde_json::from_str(&json).expect("deserialize");
    let mut exec =
        Execution::resume(&c, state, ExecutionSettings::default(), fake.now()).expect("resume");
    let mut resumed: Vec<_> = exec.running_attempts().map(|(a, ..)| a).collect();
    resumed.sort();
    assert_eq!(resumed, in_flight);
    run(&mut exec, &mut fake, |_| {}).expect("driver");
    assert_eq!(out(&exec, "o0"), 13);
}

#[test]
fn unknown_attempts_are_rejected() {
    let mut exec = Execution::new(
        &chain(1),
        inputs(&[("x", int(0))]),
        ExecutionSettings::default(),
    )
    .expect("closure");
    let err = exec
        .task_finished(99, ok(&[]), std::time::SystemTime::now())
        .expect_err("unknown");
    assert_eq!(err, alula_engine::EngineError::UnknownAttempt(99));
}

#[test]
fn a_failed_workflow_runs_its_failure_node_with_the_error() {
    use alula_idl::flyteidl::core::{
        literal_type, scalar, LiteralType, SimpleType, UnionType, Variable,
    };
    let mut wf = workflow(
        "f",
        &["x"],
        vec![task_node(
            "n0",
            "boom",
            vec![bind("x", promise("start-node", "x"))],
        )],
        vec![bind("o0", promise("n0", "o0"))],
        &["o0"],
    );
    wf.failure_node = Some(task_node(
        "fn0",
        "cleanup",
        vec![
            bind("x", promise("start-node", "x")),
            bind("err", constant(alula_engine::literals::none())),
        ],
    ));
    let mut cleanup = task("cleanup", &["x"], &[]);
    let optional_error = LiteralType {
        r#type: Some(literal_type::Type::UnionType(UnionType {
            variants: vec![
                LiteralType {
                    r#type: Some(literal_type::Type::Simple(SimpleType::Error as i32)),
                    ..Default::default()
                },
                LiteralType {
                    r#type: Some(literal_type::Type::Simple(SimpleType::None as i32)),
                    ..Default::default()
                },
            ],
        })),
        ..Default::default()
    };
    cleanup
        .interface
        .as_mut()
        .and_then(|i| i.inputs.as_mut())
        .expect("inputs")
        .variables
        .insert(
            "err".into(),
            Variable {
                r#type: Some(optional_error),
                ..Default::default()
            },
        );
    let c = closure(wf, vec![], vec![task("boom", &["x"], &["o0"]), cleanup]);
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = seen.clone();
    let mut fake = Fake::new()
        .on("boom", |_| {
            Some(TaskOutcome::Failed(user_error("exploded")))
        })
        .on("cleanup", move |a| {
            log.borrow_mut().push(a.inputs.clone());
            Some(ok(&[]))
        });
    let (exec, _) = execute(&c, &[("x", int(7))], &mut fake);
    assert_eq!(
        exec.phase(),
        WorkflowPhase::Failed,
        "the workflow stays failed"
    );
    assert_eq!(exec.error().expect("error").message, "exploded");
    let calls = seen.borrow();
    assert_eq!(calls.len(), 1, "the failure node ran once");
    assert_eq!(as_int(&calls[0].literals["x"]), 7);
    let err = &calls[0].literals["err"];
    let Some(scalar::Value::Union(u)) = alula_engine::literals::as_scalar(err) else {
        panic!("err is a union: {err:?}")
    };
    let Some(scalar::Value::Error(e)) = u
        .value
        .as_deref()
        .and_then(alula_engine::literals::as_scalar)
    else {
        panic!("an Error inside")
    };
    assert_eq!(
        (e.failed_node_id.as_str(), e.message.as_str()),
        ("n0", "exploded")
    );

    // A workflow that succeeds does not run it.
    let mut fake = Fake::new()
        .on("boom", |_| Some(ok(&[("o0", int(1))])))
        .on("cleanup", |_| panic!("must not run"));
    let (exec, _) = execute(&c, &[("x", int(7))], &mut fake);
    assert_eq!(exec.phase(), WorkflowPhase::Succeeded);
}

#[test]
fn a_dynamic_workflow_that_does_not_compile_fails_its_node() {
    let c = dynamic_closure();
    let mut fake = Fake::arithmetic().on("fan_out", |_| {
        // `y` is no input of square, and `x` is never bound.
        Some(TaskOutcome::Dynamic(DynamicJobSpec {
            nodes: vec![task_node("d0", "square", vec![bind("y", constant(int(1)))])],
            outputs: vec![bind("o0", promise("d0", "o0"))],
            ..Default::default()
        }))
    });
    let (exec, _) = execute(&c, &[("n", int(1))], &mut fake);
    assert_eq!(exec.phase(), WorkflowPhase::Failed);
    let message = &exec.error().expect("error").message;
    assert!(
        message.contains("does not compile") && message.contains("d0"),
        "{message}"
    );
    assert!(
        fake.started.iter().all(|(t, ..)| t != "square"),
        "nothing of it ran"
    );
}

#[test]
fn a_sleep_gate_still_wakes_after_a_resume() {
    let sleep = Node {
        id: "g0".into(),
        target: Some(node::Target::GateNode(GateNode {
            condition: Some(gate_node::Condition::Sleep(SleepCondition {
                duration: Some(alula_idl::wkt::Duration {
                    seconds: 60,
                    nanos: 0,
                }),
            })),
        })),
        ..Default::default()
    };
    let mut after = task_node("n0", "inc", vec![bind("x", promise("start-node", "x"))]);
    after.upstream_node_ids = vec!["g0".into()];
    let wf = workflow(
        "s",
        &["x"],
        vec![sleep, after],
        vec![bind("o0", promise("n0", "o0"))],
        &["o0"],
    );
    let c = closure(wf, vec![], vec![task("inc", &["x"], &["o0"])]);
    let mut fake = Fake::arithmetic();
    let start = fake.clock;
    let mut exec = Execution::new(&c, inputs(&[("x", int(1))]), ExecutionSettings::default())
        .expect("closure");
    exec.poll(fake.now());
    let json = serde_json::to_string(exec.state()).expect("serialize");
    drop(exec);
    let mut exec = Execution::resume(
        &c,
        serde_json::from_str(&json).expect("state"),
        ExecutionSettings::default(),
        fake.now(),
    )
    .expect("resume");
    run(&mut exec, &mut fake, |_| {}).expect("driver");
    assert_eq!(out(&exec, "o0"), 2);
    assert_eq!(
        fake.clock.duration_since(start).ok(),
        Some(Duration::from_secs(60)),
        "woke at the recorded time"
    );
}

/// A resumed execution asks again for the signals its gates wait on; a signal set before the
/// driver polls ends the wait, and the repeated request must not reach the driver (which would
/// then signal a gate that no longer waits, an error).
#[test]
fn a_repeated_wait_answered_before_the_poll_is_dropped() {
    let gate = signal_gate("g", "factor");
    let wf = workflow(
        "gate",
        &[],
        vec![gate],
        vec![bind("o0", promise("g", "o0"))],
        &["o0"],
    );
    let c = closure(wf, vec![], vec![]);
    let now = std::time::SystemTime::now();
    let mut exec = Execution::new(&c, inputs(&[]), settings()).expect("valid");
    let waits = |actions: &[alula_engine::Action]| {
        actions
            .iter()
            .filter(|a| matches!(a, alula_engine::Action::WaitForSignal { .. }))
            .count()
    };
    assert_eq!(waits(&exec.poll(now)), 1);
    let stored = alula_engine::state_codec::encode(exec.state()).expect("encode");
    let state = alula_engine::state_codec::decode(&stored).expect("decode");
    let mut exec = Execution::resume(&c, state, settings(), now).expect("resume");
    exec.signal("g", int(5), now).expect("the gate waits");
    let actions = exec.poll(now);
    assert_eq!(waits(&actions), 0, "{actions:?}");
    assert_eq!(exec.phase(), WorkflowPhase::Succeeded);
    assert_eq!(out(&exec, "o0"), 5);
    // Unanswered, the repeated request does reach the new driver.
    let mut exec = Execution::new(&c, inputs(&[]), settings()).expect("valid");
    let _ = exec.poll(now);
    let stored = alula_engine::state_codec::encode(exec.state()).expect("encode");
    let state = alula_engine::state_codec::decode(&stored).expect("decode");
    let mut exec = Execution::resume(&c, state, settings(), now).expect("resume");
    assert_eq!(waits(&exec.poll(now)), 1);
}
