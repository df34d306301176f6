//! Branches, subworkflows, launch plans, dynamic tasks and array nodes.

use super::*;

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
    let array = ArrayNode {
        parallelism_option: parallelism.map(array_node::ParallelismOption::Parallelism),
        success_criteria: ratio.map(array_node::SuccessCriteria::MinSuccessRatio),
        ..Default::default()
    };
    support::map_closure(task("maybe", &["x"], &["o0"]), array)
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

/// A propeller's restart: the state in its stored form, read back and resumed.
fn restarted(c: &alula_idl::flyteidl::core::CompiledWorkflowClosure, exec: Execution) -> Execution {
    let stored = alula_engine::state_codec::encode(exec.state()).expect("encode");
    drop(exec);
    let state = alula_engine::state_codec::decode(&stored).expect("decode");
    let now = std::time::SystemTime::now();
    Execution::resume(c, state, settings(), now).expect("resume")
}

/// A case chosen while every slot is taken waits for one; a propeller restarting meanwhile
/// must still start it (the resumed queue left chosen cases out, and the branch ran forever).
#[test]
fn a_chosen_case_waiting_for_a_slot_starts_after_a_restart() {
    let else_node = task_node("b-n1", "inc", vec![bind("x", promise("start-node", "x"))]);
    let mut c = branch_closure(if_else_block::Default::ElseNode(Box::new(else_node)));
    // A task ahead of the branch takes the only slot.
    let side = task_node("side", "inc", vec![bind("x", promise("start-node", "x"))]);
    let primary = c
        .primary
        .as_mut()
        .and_then(|p| p.template.as_mut())
        .expect("primary");
    primary.nodes.insert(0, side);
    let one_slot = ExecutionSettings {
        max_parallelism: 1,
        ..settings()
    };
    let mut exec = Execution::new(&c, inputs(&[("x", int(3))]), one_slot.clone()).expect("valid");
    let now = std::time::SystemTime::now();
    let started: Vec<_> = exec
        .poll(now)
        .into_iter()
        .filter_map(|a| match a {
            alula_engine::Action::StartTask(a) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(
        started
            .iter()
            .map(|a| a.node_execution_id.as_str())
            .collect::<Vec<_>>(),
        ["side"],
        "the case waits for the slot"
    );
    let stored = alula_engine::state_codec::encode(exec.state()).expect("encode");
    let state = alula_engine::state_codec::decode(&stored).expect("decode");
    let mut exec = Execution::resume(&c, state, one_slot, now).expect("resume");
    exec.task_finished(started[0].id, ok(&[("o0", int(4))]), now)
        .expect("side is known after the restart");
    run(&mut exec, &mut Fake::arithmetic(), |_| {}).expect("driver");
    assert_eq!(exec.phase(), WorkflowPhase::Succeeded, "{:?}", exec.error());
    assert_eq!(out(&exec, "o0"), 10, "square(3) + 1");
    // And a restart right after the decision, with the case started, resumes it too.
    let mut exec = Execution::new(&c, inputs(&[("x", int(-2))]), settings()).expect("valid");
    let _ = exec.poll(now);
    let mut exec = restarted(&c, exec);
    let mut fake = Fake::arithmetic();
    let running: Vec<_> = exec.running_attempts().map(|(a, ..)| a).collect();
    assert_eq!(running.len(), 2, "side and the else case run");
    for a in running {
        exec.task_finished(a, ok(&[("o0", int(-1))]), now)
            .expect("known");
    }
    run(&mut exec, &mut fake, |_| {}).expect("driver");
    assert_eq!(exec.phase(), WorkflowPhase::Succeeded, "{:?}", exec.error());
}
