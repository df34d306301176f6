//! Building the workflow of a case.

use super::*;

pub(super) fn id(i: usize) -> String {
    format!("n{i}")
}

pub(super) fn list_type() -> LiteralType {
    LiteralType {
        r#type: Some(literal_type::Type::CollectionType(Box::new(int_type()))),
        ..Default::default()
    }
}

pub(super) fn binding(var: &str, src: Src) -> alula_idl::flyteidl::core::Binding {
    match src {
        Src::Input => bind(var, promise("start-node", "x")),
        Src::Node(j) => bind(var, promise(&id(j), "o0")),
        Src::Const(c) => bind(var, constant(int(c))),
    }
}

pub(super) fn scalar(v: i64) -> Scalar {
    match int(v).value {
        Some(alula_idl::flyteidl::core::literal::Value::Scalar(s)) => *s,
        _ => unreachable!("an int is a scalar"),
    }
}

pub(super) fn build(case: &Case) -> CompiledWorkflowClosure {
    let mut nodes = Vec::new();
    let mut outputs = Vec::new();
    let mut out_vars = BTreeMap::new();
    let mut tasks: Vec<TaskTemplate> = vec![
        task("inc", &["x"], &["o0"]),
        task("double", &["x"], &["o0"]),
    ];
    let mut subs: Vec<usize> = Vec::new();
    for (i, kind) in case.nodes.iter().enumerate() {
        let name = id(i);
        let mut n = match kind {
            Kind::Task {
                x,
                y,
                retries,
                timeout,
                ..
            } => {
                // One task per node, so retries and timeouts are per node.
                let mut t = with_retries(task(&format!("add{i}"), &["x", "y"], &["o0"]), *retries);
                if *timeout {
                    t = with_timeout(t, TIMEOUT_SECS);
                }
                tasks.push(t);
                task_node(
                    &name,
                    &format!("add{i}"),
                    vec![binding("x", *x), binding("y", *y)],
                )
            }
            Kind::Branch { x, c } => {
                tasks.push(task(&format!("add{i}"), &["x", "y"], &["o0"]));
                let then = task_node(
                    &format!("{name}-then"),
                    &format!("add{i}"),
                    vec![binding("x", *x), bind("y", constant(int(*c)))],
                );
                // A branch's cases bind to the enclosing workflow's nodes, as the condition does.
                let other = task_node(&format!("{name}-else"), "inc", vec![binding("x", *x)]);
                let cond = BooleanExpression {
                    expr: Some(boolean_expression::Expr::Comparison(ComparisonExpression {
                        operator: comparison_expression::Operator::Gt as i32,
                        left_value: Some(Operand {
                            val: Some(operand::Val::Var("x".into())),
                        }),
                        right_value: Some(Operand {
                            val: Some(operand::Val::Scalar(scalar(0))),
                        }),
                    })),
                };
                Node {
                    id: name.clone(),
                    inputs: vec![binding("x", *x)],
                    target: Some(node::Target::BranchNode(Box::new(BranchNode {
                        if_else: Some(Box::new(IfElseBlock {
                            case: Some(Box::new(IfBlock {
                                condition: Some(cond),
                                then_node: Some(Box::new(then)),
                            })),
                            other: vec![],
                            default: Some(if_else_block::Default::ElseNode(Box::new(other))),
                        })),
                    }))),
                    ..Default::default()
                }
            }
            Kind::Sub { x, len } => {
                if !subs.contains(len) {
                    subs.push(*len);
                }
                Node {
                    id: name.clone(),
                    inputs: vec![binding("x", *x)],
                    target: Some(node::Target::WorkflowNode(WorkflowNode {
                        reference: Some(workflow_node::Reference::SubWorkflowRef(ident(
                            ResourceType::Workflow,
                            &format!("chain{len}"),
                        ))),
                    })),
                    ..Default::default()
                }
            }
            Kind::Map { ratio, parallelism } => Node {
                id: name.clone(),
                inputs: vec![bind("x", promise("start-node", "xs"))],
                target: Some(node::Target::ArrayNode(Box::new(ArrayNode {
                    node: Some(Box::new(task_node(
                        &name,
                        "double",
                        vec![bind("x", promise("start-node", "xs"))],
                    ))),
                    parallelism_option: parallelism.map(array_node::ParallelismOption::Parallelism),
                    success_criteria: ratio.map(array_node::SuccessCriteria::MinSuccessRatio),
                    ..Default::default()
                }))),
                ..Default::default()
            },
            Kind::Approve => Node {
                id: name.clone(),
                target: Some(node::Target::GateNode(GateNode {
                    condition: Some(gate_node::Condition::Approve(ApproveCondition {
                        signal_id: format!("approve-{i}"),
                    })),
                })),
                ..Default::default()
            },
            Kind::Dynamic { x, .. } => {
                tasks.push(task(&format!("dyn{i}"), &["x"], &["o0"]));
                task_node(&name, &format!("dyn{i}"), vec![binding("x", *x)])
            }
            Kind::Sleep { secs } => Node {
                id: name.clone(),
                target: Some(node::Target::GateNode(GateNode {
                    condition: Some(gate_node::Condition::Sleep(SleepCondition {
                        duration: Some(alula_idl::wkt::Duration {
                            seconds: *secs,
                            nanos: 0,
                        }),
                    })),
                })),
                ..Default::default()
            },
        };
        n.upstream_node_ids = case.after[i].iter().map(|&j| id(j)).collect();
        let out_type = match kind {
            Kind::Map { .. } => Some(list_type()),
            Kind::Sleep { .. } | Kind::Approve => None,
            _ => Some(int_type()),
        };
        if let Some(t) = out_type {
            let var = format!("o{i}");
            outputs.push(bind(&var, promise(&name, "o0")));
            out_vars.insert(
                var,
                Variable {
                    r#type: Some(t),
                    ..Default::default()
                },
            );
        }
        nodes.push(n);
    }
    let mut ins = vars(&["x"]);
    ins.variables.insert(
        "xs".into(),
        Variable {
            r#type: Some(list_type()),
            ..Default::default()
        },
    );
    let wf = WorkflowTemplate {
        id: Some(ident(ResourceType::Workflow, "model")),
        interface: Some(TypedInterface {
            inputs: Some(ins),
            outputs: Some(VariableMap {
                variables: out_vars.into_iter().collect(),
            }),
        }),
        nodes,
        outputs,
        ..Default::default()
    };
    let subs = subs
        .into_iter()
        .map(|len| {
            let nodes = (0..len)
                .map(|k| {
                    let from = if k == 0 {
                        promise("start-node", "x")
                    } else {
                        promise(&format!("s{}", k - 1), "o0")
                    };
                    task_node(&format!("s{k}"), "inc", vec![bind("x", from)])
                })
                .collect();
            workflow(
                &format!("chain{len}"),
                &["x"],
                nodes,
                vec![bind("o0", promise(&format!("s{}", len - 1), "o0"))],
                &["o0"],
            )
        })
        .collect();
    closure(wf, subs, tasks)
}
