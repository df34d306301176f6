//! Behaviour of every node kind, retries, timeouts, failure policies, gates and events.

mod support;

use std::time::Duration;

use alula_engine::driver::{run, Executor};
use alula_engine::{Event, Execution, ExecutionSettings, NodePhase, TaskOutcome, WorkflowPhase};
use alula_idl::flyteidl::core::{
    array_node, boolean_expression, comparison_expression, gate_node, if_else_block, node, operand,
    workflow_metadata::OnFailurePolicy, workflow_node, ApproveCondition, ArrayNode,
    BooleanExpression, BranchNode, ComparisonExpression, DynamicJobSpec, GateNode, IfBlock,
    IfElseBlock, Node, NodeMetadata, Operand, ResourceType, SignalCondition, SleepCondition,
    WorkflowMetadata, WorkflowNode,
};
use support::*;

fn settings() -> ExecutionSettings {
    ExecutionSettings {
        record_events: true,
        ..Default::default()
    }
}

fn execute(
    closure: &alula_idl::flyteidl::core::CompiledWorkflowClosure,
    ins: &[(&str, alula_idl::flyteidl::core::Literal)],
    fake: &mut Fake,
) -> (Execution, Vec<Event>) {
    let mut exec = Execution::new(closure, inputs(ins), settings()).expect("valid closure");
    let mut events = Vec::new();
    run(&mut exec, fake, |e| events.push(e)).expect("driver");
    (exec, events)
}

fn out(exec: &Execution, name: &str) -> i64 {
    as_int(&exec.outputs().expect("outputs").literals[name])
}

fn chain(n: usize) -> alula_idl::flyteidl::core::CompiledWorkflowClosure {
    let mut nodes = vec![task_node(
        "n0",
        "inc",
        vec![bind("x", promise("start-node", "x"))],
    )];
    for i in 1..n {
        nodes.push(task_node(
            &format!("n{i}"),
            "inc",
            vec![bind("x", promise(&format!("n{}", i - 1), "o0"))],
        ));
    }
    let last = format!("n{}", n - 1);
    let wf = workflow(
        "chain",
        &["x"],
        nodes,
        vec![bind("o0", promise(&last, "o0"))],
        &["o0"],
    );
    closure(wf, vec![], vec![task("inc", &["x"], &["o0"])])
}

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

fn diamond(policy: OnFailurePolicy) -> alula_idl::flyteidl::core::CompiledWorkflowClosure {
    let mut wf = workflow(
        "diamond",
        &["x"],
        vec![
            task_node("a", "inc", vec![bind("x", promise("start-node", "x"))]),
            task_node("b", "inc", vec![bind("x", promise("a", "o0"))]),
            task_node("c", "square", vec![bind("x", promise("a", "o0"))]),
            task_node(
                "d",
                "add",
                vec![bind("x", promise("b", "o0")), bind("y", promise("c", "o0"))],
            ),
        ],
        vec![bind("o0", promise("d", "o0"))],
        &["o0"],
    );
    wf.metadata = Some(WorkflowMetadata {
        on_failure: policy as i32,
        ..Default::default()
    });
    closure(
        wf,
        vec![],
        vec![
            task("inc", &["x"], &["o0"]),
            task("square", &["x"], &["o0"]),
            task("add", &["x", "y"], &["o0"]),
        ],
    )
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

fn gt_zero() -> BooleanExpression {
    BooleanExpression {
        expr: Some(boolean_expression::Expr::Comparison(ComparisonExpression {
            operator: comparison_expression::Operator::Gt as i32,
            left_value: Some(Operand {
                val: Some(operand::Val::Var("x".into())),
            }),
            right_value: Some(Operand {
                val: Some(operand::Val::Scalar(scalar_int(0))),
            }),
        })),
    }
}

fn scalar_int(v: i64) -> alula_idl::flyteidl::core::Scalar {
    match int(v).value {
        Some(alula_idl::flyteidl::core::literal::Value::Scalar(s)) => *s,
        _ => unreachable!(),
    }
}

fn branch_closure(
    default: if_else_block::Default,
) -> alula_idl::flyteidl::core::CompiledWorkflowClosure {
    let then = task_node(
        "b-n0",
        "square",
        vec![bind("x", promise("start-node", "x"))],
    );
    let branch = Node {
        id: "b".into(),
        inputs: vec![bind("x", promise("start-node", "x"))],
        target: Some(node::Target::BranchNode(Box::new(BranchNode {
            if_else: Some(Box::new(IfElseBlock {
                case: Some(Box::new(IfBlock {
                    condition: Some(gt_zero()),
                    then_node: Some(Box::new(then)),
                })),
                other: vec![],
                default: Some(default),
            })),
        }))),
        ..Default::default()
    };
    let after = task_node("n1", "inc", vec![bind("x", promise("b", "o0"))]);
    let wf = workflow(
        "br",
        &["x"],
        vec![branch, after],
        vec![bind("o0", promise("n1", "o0"))],
        &["o0"],
    );
    closure(
        wf,
        vec![],
        vec![
            task("square", &["x"], &["o0"]),
            task("inc", &["x"], &["o0"]),
            task("add", &["x", "y"], &["o0"]),
        ],
    )
}

#[test]
fn a_branch_runs_the_first_true_case_or_the_else() {
    let else_node = task_node(
        "b-n1",
        "add",
        vec![
            bind("x", promise("start-node", "x")),
            bind("y", constant(int(100))),
        ],
    );
    let c = branch_closure(if_else_block::Default::ElseNode(Box::new(else_node)));
    let (exec, _) = execute(&c, &[("x", int(3))], &mut Fake::arithmetic());
    assert_eq!(out(&exec, "o0"), 10);
    let (exec, _) = execute(&c, &[("x", int(-3))], &mut Fake::arithmetic());
    assert_eq!(out(&exec, "o0"), 98);
    let c = branch_closure(if_else_block::Default::Error(
        alula_idl::flyteidl::core::Error {
            failed_node_id: "b".into(),
            message: "x must be positive".into(),
        },
    ));
    let (exec, _) = execute(&c, &[("x", int(-3))], &mut Fake::arithmetic());
    assert_eq!(exec.phase(), WorkflowPhase::Failed);
    assert_eq!(exec.error().expect("error").message, "x must be positive");
}

#[test]
fn a_subworkflow_runs_in_its_own_scope() {
    let sub = workflow(
        "sub",
        &["x"],
        vec![task_node(
            "s0",
            "square",
            vec![bind("x", promise("start-node", "x"))],
        )],
        vec![bind("o0", promise("s0", "o0"))],
        &["o0"],
    );
    let call = Node {
        id: "n0".into(),
        inputs: vec![bind("x", promise("start-node", "x"))],
        target: Some(node::Target::WorkflowNode(WorkflowNode {
            reference: Some(workflow_node::Reference::SubWorkflowRef(ident(
                ResourceType::Workflow,
                "sub",
            ))),
        })),
        ..Default::default()
    };
    let wf = workflow(
        "parent",
        &["x"],
        vec![
            call,
            task_node("n1", "inc", vec![bind("x", promise("n0", "o0"))]),
        ],
        vec![bind("o0", promise("n1", "o0"))],
        &["o0"],
    );
    let c = closure(
        wf,
        vec![sub],
        vec![
            task("square", &["x"], &["o0"]),
            task("inc", &["x"], &["o0"]),
        ],
    );
    let mut fake = Fake::arithmetic();
    let (exec, _) = execute(&c, &[("x", int(4))], &mut fake);
    assert_eq!(out(&exec, "o0"), 17);
    assert!(
        fake.started.iter().any(|(_, id, _, _)| id == "n0-0-s0"),
        "{:?}",
        fake.started
    );
}

#[test]
fn a_launch_plan_node_runs_a_child_execution() {
    let call = Node {
        id: "n0".into(),
        inputs: vec![bind("x", promise("start-node", "x"))],
        target: Some(node::Target::WorkflowNode(WorkflowNode {
            reference: Some(workflow_node::Reference::LaunchplanRef(ident(
                ResourceType::LaunchPlan,
                "lp",
            ))),
        })),
        ..Default::default()
    };
    let wf = workflow(
        "parent",
        &["x"],
        vec![call],
        vec![bind("o0", promise("n0", "o0"))],
        &["o0"],
    );
    let mut fake = Fake::new();
    let (exec, _) = execute(&closure(wf, vec![], vec![]), &[("x", int(4))], &mut fake);
    assert_eq!(out(&exec, "o0"), 40);
    assert_eq!(fake.children.len(), 1);
}

/// A workflow whose one node, `fan_out`, is a dynamic task; `square` is known to the closure.
fn dynamic_closure() -> alula_idl::flyteidl::core::CompiledWorkflowClosure {
    let wf = workflow(
        "dyn",
        &["n"],
        vec![task_node(
            "n0",
            "fan_out",
            vec![bind("n", promise("start-node", "n"))],
        )],
        vec![bind("o0", promise("n0", "o0"))],
        &["o0"],
    );
    closure(
        wf,
        vec![],
        vec![
            task("fan_out", &["n"], &["o0"]),
            task("square", &["x"], &["o0"]),
        ],
    )
}

#[test]
fn a_dynamic_task_runs_the_workflow_it_returns() {
    let c = dynamic_closure();
    let mut fake = Fake::arithmetic().on("fan_out", |a| {
        let n = as_int(&a.inputs.literals["n"]);
        let mut nodes: Vec<Node> = (0..n)
            .map(|i| {
                task_node(
                    &format!("d{i}"),
                    "square",
                    vec![bind("x", constant(int(i)))],
                )
            })
            .collect();
        // A final node adds two of the squares, to show edges inside the dynamic workflow.
        nodes.push(task_node(
            "sum",
            "add",
            vec![
                bind("x", promise("d2", "o0")),
                bind("y", promise("d3", "o0")),
            ],
        ));
        Some(TaskOutcome::Dynamic(DynamicJobSpec {
            nodes,
            outputs: vec![bind("o0", promise("sum", "o0"))],
            tasks: vec![task("add", &["x", "y"], &["o0"])],
            ..Default::default()
        }))
    });
    let (exec, events) = execute(&c, &[("n", int(5))], &mut fake);
    assert_eq!(out(&exec, "o0"), 4 + 9);
    assert_eq!(
        fake.started.iter().filter(|(t, ..)| t == "square").count(),
        5
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Node(n) if n.phase == 9)),
        "DYNAMIC_RUNNING reported"
    );
}

#[test]
fn a_dynamic_task_with_no_nodes_returns_its_bindings() {
    let c = dynamic_closure();
    let mut fake = Fake::arithmetic().on("fan_out", |_| {
        Some(TaskOutcome::Dynamic(DynamicJobSpec {
            outputs: vec![bind("o0", constant(int(42)))],
            ..Default::default()
        }))
    });
    let (exec, _) = execute(&c, &[("n", int(0))], &mut fake);
    assert_eq!(out(&exec, "o0"), 42);
}

fn map_closure(
    ratio: Option<f32>,
    parallelism: Option<u32>,
) -> alula_idl::flyteidl::core::CompiledWorkflowClosure {
    let array = Node {
        id: "n0".into(),
        inputs: vec![bind("x", promise("start-node", "xs"))],
        target: Some(node::Target::ArrayNode(Box::new(ArrayNode {
            node: Some(Box::new(task_node(
                "n0",
                "maybe",
                vec![bind("x", promise("start-node", "xs"))],
            ))),
            parallelism_option: parallelism.map(array_node::ParallelismOption::Parallelism),
            success_criteria: ratio.map(array_node::SuccessCriteria::MinSuccessRatio),
            ..Default::default()
        }))),
        ..Default::default()
    };
    let wf = workflow(
        "map",
        &["xs"],
        vec![array],
        vec![bind("o0", promise("n0", "o0"))],
        &["o0"],
    );
    closure(wf, vec![], vec![task("maybe", &["x"], &["o0"])])
}

fn maybe_fails_on_negative() -> Fake {
    Fake::new().on("maybe", |a| {
        let x = as_int(&a.inputs.literals["x"]);
        Some(if x < 0 {
            TaskOutcome::Failed(user_error(&format!("negative {x}")))
        } else {
            ok(&[("o0", int(x * 2))])
        })
    })
}

fn list(xs: &[i64]) -> alula_idl::flyteidl::core::Literal {
    alula_engine::literals::collection(xs.iter().map(|&x| int(x)).collect())
}

#[test]
fn an_array_node_maps_every_element() {
    let mut fake = maybe_fails_on_negative();
    fake.deferred = true;
    let (exec, _) = execute(
        &map_closure(None, Some(2)),
        &[("xs", list(&[1, 2, 3, 4, 5]))],
        &mut fake,
    );
    let outs =
        alula_engine::literals::as_collection(&exec.outputs().expect("outputs").literals["o0"])
            .expect("list")
            .to_vec();
    assert_eq!(
        outs.iter().map(as_int).collect::<Vec<_>>(),
        vec![2, 4, 6, 8, 10]
    );
    assert_eq!(fake.max_in_flight, 2, "parallelism 2");
    let (exec, _) = execute(
        &map_closure(None, None),
        &[("xs", list(&[]))],
        &mut maybe_fails_on_negative(),
    );
    assert_eq!(
        alula_engine::literals::as_collection(&exec.outputs().expect("outputs").literals["o0"])
            .map(<[_]>::len),
        Some(0)
    );
}

#[test]
fn an_array_node_tolerates_failures_down_to_its_min_success_ratio() {
    let (exec, _) = execute(
        &map_closure(Some(0.5), None),
        &[("xs", list(&[1, -2, 3, -4]))],
        &mut maybe_fails_on_negative(),
    );
    assert_eq!(exec.phase(), WorkflowPhase::Succeeded);
    let outs =
        alula_engine::literals::as_collection(&exec.outputs().expect("outputs").literals["o0"])
            .expect("list")
            .to_vec();
    assert_eq!(as_int(&outs[0]), 2);
    assert!(
        alula_engine::literals::is_none(&outs[1]),
        "failed elements yield None"
    );
    let (exec, _) = execute(
        &map_closure(Some(0.75), None),
        &[("xs", list(&[1, -2, 3, -4]))],
        &mut maybe_fails_on_negative(),
    );
    assert_eq!(exec.phase(), WorkflowPhase::Failed);
    let msg = &exec.error().expect("error").message;
    assert!(
        msg.contains("2 of 4 elements failed") && msg.contains("negative -2"),
        "{msg}"
    );
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
    let signal = Node {
        id: "g2".into(),
        target: Some(node::Target::GateNode(GateNode {
            condition: Some(gate_node::Condition::Signal(SignalCondition {
                signal_id: "factor".into(),
                r#type: Some(int_type()),
                output_variable_name: "o0".into(),
            })),
        })),
        ..Default::default()
    };
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
