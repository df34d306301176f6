//! The graph and its references: cycles, branches, missing nodes, tasks and variables, aliases and ids.

use super::*;

#[test]
fn cycle_is_reported_with_its_path() {
    let mut wf = one_node_wf();
    wf.nodes = vec![
        task_node(
            "n1",
            "add",
            vec![
                bind("x", promise("start-node", "x")),
                bind("y", promise("n3", "o")),
            ],
        ),
        task_node("n2", "double", vec![bind("x", promise("n1", "o"))]),
        task_node("n3", "double", vec![bind("x", promise("n2", "o"))]),
    ];
    wf.outputs = vec![bind("o", promise("n3", "o"))];
    assert_single_error(
        &wf,
        "CycleDetected",
        "n1",
        "A cycle has been detected while traversing the Workflow [n1>n2>n3].",
    );
}

#[test]
fn unreachable_cycle_reports_both() {
    let mut wf = one_node_wf();
    wf.nodes
        .push(task_node("a", "double", vec![bind("x", promise("b", "o"))]));
    wf.nodes
        .push(task_node("b", "double", vec![bind("x", promise("a", "o"))]));
    let errs = errors_of(&wf);
    let codes: Vec<(&str, &str)> = errs
        .iter()
        .map(|(c, n, _)| (c.as_str(), n.as_str()))
        .collect();
    assert_eq!(codes, [("CycleDetected", "a"), ("UnreachableNodes", "a")]);
    assert!(errs[0].2.contains("[a>b]"), "{}", errs[0].2);
    assert!(
        errs[1]
            .2
            .contains("The Workflow contain unreachable nodes [a, b]."),
        "{}",
        errs[1].2
    );
}

#[test]
fn branch_without_then_node() {
    let wf = branch_wf(|b| {
        b.other.push(IfBlock {
            condition: Some(gt_zero("x")),
            then_node: None,
        })
    });
    assert_single_error(&wf, "BranchNodeIdNotFound", "b", "BranchNode not assigned");
}

#[test]
fn branch_case_without_condition() {
    let wf = branch_wf(|b| {
        if let Some(case) = b.case.as_mut() {
            case.condition = None;
        }
    });
    assert_single_error(&wf, "BranchNodeHasNoCondition", "b", "has no condition");
}

#[test]
fn branch_without_default() {
    let wf = branch_wf(|b| b.default = None);
    assert_single_error(
        &wf,
        "BranchNodeHasNoDefault",
        "b",
        "neither an else node nor an error",
    );
}

#[test]
fn branch_condition_on_unknown_var() {
    let wf = branch_wf(|b| {
        if let Some(case) = b.case.as_mut() {
            case.condition = Some(gt_zero("y"));
        }
    });
    assert_single_error(
        &wf,
        "VariableNameNotFound",
        "b",
        "uses [y], which is not an input of the branch; its inputs are [x: int]",
    );
}

#[test]
fn branch_condition_with_mismatching_operands() {
    let wf = branch_wf(|b| {
        if let Some(case) = b.case.as_mut() {
            let s = Operand {
                val: Some(operand::Val::Scalar(Scalar {
                    value: Some(alula_idl::flyteidl::core::scalar::Value::Primitive(
                        alula_idl::flyteidl::core::Primitive {
                            value: Some(alula_idl::flyteidl::core::primitive::Value::StringValue(
                                "a".into(),
                            )),
                        },
                    )),
                })),
            };
            case.condition = Some(compare(
                Operand {
                    val: Some(operand::Val::Var("x".into())),
                },
                s,
            ));
        }
    });
    assert_single_error(&wf, "MismatchingTypes", "b", "compares [int] with [str]");
}

#[test]
fn branch_cases_with_mismatching_outputs() {
    let wf = branch_wf(|b| {
        b.default = Some(if_else_block::Default::ElseNode(Box::new(task_node(
            "e",
            "greet",
            vec![bind("name", str_lit("n"))],
        ))))
    });
    let errs = errors_of(&wf);
    assert_eq!(errs[0].0, "MismatchingTypes");
    assert_eq!(errs[0].1, "b-e");
    assert!(
        errs[0].2.contains(
            "output [o] of then-node [b-e] has type [str] but an earlier case gives [int]"
        ),
        "{}",
        errs[0].2
    );
}

#[test]
fn binding_without_value() {
    let mut wf = one_node_wf();
    wf.nodes[0].inputs[0].binding = None;
    let errs = errors_of(&wf);
    assert_eq!(errs[0].0, "ValueRequired");
    assert!(errs[0]
        .2
        .contains("the binding of input [x] on node [n0] has no value"));
}

#[test]
fn node_without_target() {
    let mut wf = one_node_wf();
    wf.nodes.push(Node {
        id: "n1".into(),
        ..Default::default()
    });
    assert_single_error(&wf, "ValueRequired", "n1", "has no target");
}

#[test]
fn missing_promise_node() {
    let mut wf = one_node_wf();
    wf.nodes[0].inputs[0] = bind("x", promise("nope", "o"));
    assert_single_error(
        &wf,
        "NodeReferenceNotFound",
        "n0",
        "reads from node [nope], which is not a node of this workflow",
    );
}

#[test]
fn missing_explicit_upstream() {
    let mut wf = one_node_wf();
    wf.nodes[0].upstream_node_ids = vec!["ghost".into()];
    assert_single_error(
        &wf,
        "NodeReferenceNotFound",
        "n0",
        "lists upstream node [ghost]",
    );
}

#[test]
fn missing_task() {
    let mut wf = one_node_wf();
    wf.nodes[0] = task_node("n0", "missing", vec![]);
    assert_single_error(
        &wf,
        "TaskReferenceNotFound",
        "n0",
        "Referenced Task [p/d/missing@v1] not found.",
    );
}

#[test]
fn missing_subworkflow_and_launch_plan() {
    let mut wf = one_node_wf();
    wf.nodes.push(subworkflow_node("s", "nosub", vec![]));
    wf.nodes.push(launch_plan_node("l", "nolp", vec![]));
    let errs = errors_of(&wf);
    let got: Vec<(&str, &str)> = errs
        .iter()
        .map(|(c, n, _)| (c.as_str(), n.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("WorkflowReferenceNotFound", "l"),
            ("WorkflowReferenceNotFound", "s")
        ]
    );
    assert!(errs[0]
        .2
        .contains("Referenced LaunchPlan [p/d/nolp@v1] not found."));
    assert!(errs[1]
        .2
        .contains("Referenced Workflow [p/d/nosub@v1] not found."));
}

#[test]
fn unknown_input_var() {
    let mut wf = one_node_wf();
    wf.nodes[0].inputs.push(bind("z", int_lit(1)));
    assert_single_error(
        &wf,
        "VariableNameNotFound",
        "n0",
        "node [n0] has no input named [z]; its inputs are [x: int]",
    );
}

#[test]
fn unknown_output_var() {
    let mut wf = one_node_wf();
    wf.outputs = vec![bind("o", promise("n0", "out"))];
    assert_single_error(
        &wf,
        "VariableNameNotFound",
        "end-node",
        "reads output [out] of node [n0], which has outputs [o: int]",
    );
}

#[test]
fn duplicate_alias() {
    let mut wf = one_node_wf();
    let alias = |a: &str| Alias {
        var: "o".into(),
        alias: a.into(),
    };
    wf.nodes[0].output_aliases = vec![alias("a"), alias("b")];
    wf.outputs = vec![bind("o", promise("n0", "b"))];
    assert_single_error(
        &wf,
        "DuplicateAlias",
        "n0",
        "output [o] of node [n0] is aliased more than once",
    );
}

#[test]
fn alias_of_unknown_output() {
    let mut wf = one_node_wf();
    wf.nodes[0].output_aliases = vec![Alias {
        var: "nope".into(),
        alias: "a".into(),
    }];
    assert_single_error(
        &wf,
        "ParameterNotBound",
        "n0",
        "alias [a] of node [n0] refers to output [nope]",
    );
}

#[test]
fn duplicate_and_reserved_ids() {
    let mut wf = one_node_wf();
    wf.nodes.push(wf.nodes[0].clone());
    let errs = errors_of(&wf);
    assert!(
        errs.iter().any(|(c, n, d)| c == "DuplicateId"
            && n == "n0"
            && d.contains("used by more than one node")),
        "{errs:#?}"
    );

    let mut wf = one_node_wf();
    wf.nodes[0].id = "start-node".into();
    wf.outputs = vec![bind("o", promise("start-node", "x"))];
    let errs = errors_of(&wf);
    assert!(
        errs.iter()
            .any(|(c, n, d)| c == "DuplicateId" && n == "start-node" && d.contains("reserved")),
        "{errs:#?}"
    );
}

#[test]
fn duplicate_subworkflow() {
    let wf = one_node_wf();
    let sub = workflow(
        "sub",
        &[],
        &[],
        vec![task_node("n0", "double", vec![bind("x", int_lit(1))])],
        vec![],
    );
    let err = compile_workflow(&wf, &[sub.clone(), sub], &std_tasks(), &[]).expect_err("duplicate");
    assert_eq!(err.errors()[0].code, ErrorCode::DuplicateId);
    assert!(err.errors()[0]
        .description
        .contains("subworkflow p/d/sub@v1 is supplied more than once"));
}

#[test]
fn invalid_node_ids() {
    let mut wf = one_node_wf();
    wf.nodes[0].id = "N_0".into();
    wf.outputs = vec![bind("o", promise("N_0", "o"))];
    assert_single_error(&wf, "SyntaxError", "N_0", "must be a DNS-1123 label");
    let mut wf = one_node_wf();
    wf.nodes[0].id = String::new();
    wf.outputs = vec![bind("o", promise("", "o"))];
    let errs = errors_of(&wf);
    assert!(
        errs.iter()
            .any(|(c, _, d)| c == "ValueRequired" && d.contains("empty id")),
        "{errs:#?}"
    );
}
