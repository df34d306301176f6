//! Valid shapes compile, with the expected wiring, sorting and interfaces.

use std::collections::BTreeMap;

use alula_compiler::{compile_workflow, LaunchPlanInterface, LaunchPlanInterfaceError};
use alula_idl::flyteidl::admin::{LaunchPlan, LaunchPlanClosure};
use alula_idl::flyteidl::core::{
    gate_node, if_else_block, node, Alias, ApproveCondition, ArrayNode, CompiledWorkflow, GateNode,
    Node, SignalCondition, SleepCondition,
};
use prost::Message;

use crate::errors::branch_wf;
use crate::support::*;

fn edges(c: &CompiledWorkflow) -> (BTreeMap<String, Vec<String>>, BTreeMap<String, Vec<String>>) {
    let conn = c.connections.clone().unwrap_or_default();
    let conv = |m: BTreeMap<String, alula_idl::flyteidl::core::connection_set::IdList>| {
        m.into_iter().map(|(k, v)| (k, v.ids)).collect()
    };
    (conv(conn.upstream), conv(conn.downstream))
}

fn ids(c: &CompiledWorkflow) -> Vec<String> {
    c.template
        .as_ref()
        .map(|t| t.nodes.iter().map(|n| n.id.clone()).collect())
        .unwrap_or_default()
}

fn down(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect()
}

#[test]
fn chain() {
    let wf = workflow(
        "wf",
        &[("x", int())],
        &[("o", int())],
        vec![
            task_node("n1", "double", vec![bind("x", promise("n0", "o"))]),
            task_node("n0", "double", vec![bind("x", promise("start-node", "x"))]),
        ],
        vec![bind("o", promise("n1", "o"))],
    );
    let closure = compile(&wf).expect("compiles");
    let primary = closure.primary.expect("primary");
    assert_eq!(ids(&primary), ["end-node", "n0", "n1", "start-node"]);
    let (up, dn) = edges(&primary);
    assert_eq!(
        dn,
        down(&[
            ("n0", &["n1"]),
            ("n1", &["end-node"]),
            ("start-node", &["n0"])
        ])
    );
    assert_eq!(
        up,
        down(&[
            ("end-node", &["n1"]),
            ("n0", &["start-node"]),
            ("n1", &["n0"])
        ])
    );
    let end = primary
        .template
        .as_ref()
        .and_then(|t| t.nodes.iter().find(|n| n.id == "end-node"))
        .expect("end");
    assert_eq!(end.inputs, wf.outputs);
    // Every supplied task is in the closure once, sorted by id.
    let names: Vec<String> = closure
        .tasks
        .iter()
        .filter_map(|t| Some(t.template.as_ref()?.id.as_ref()?.name.clone()))
        .collect();
    assert_eq!(names, ["add", "double", "greet"]);
}

#[test]
fn diamond_with_literal_and_explicit_upstream() {
    let wf = workflow(
        "wf",
        &[("x", int())],
        &[("o", int())],
        vec![
            task_node("a", "double", vec![bind("x", promise("start-node", "x"))]),
            task_node("b", "double", vec![bind("x", promise("a", "o"))]),
            task_node("c", "double", vec![bind("x", promise("a", "o"))]),
            task_node(
                "d",
                "add",
                vec![bind("x", promise("b", "o")), bind("y", promise("c", "o"))],
            ),
            Node {
                upstream_node_ids: vec!["d".into(), "a".into()],
                ..task_node("e", "double", vec![bind("x", int_lit(3))])
            },
        ],
        vec![bind("o", promise("d", "o"))],
    );
    let primary = compile(&wf).expect("compiles").primary.expect("primary");
    let (up, dn) = edges(&primary);
    assert_eq!(dn["a"], ["b", "c", "e"]);
    assert_eq!(up["d"], ["b", "c"]);
    assert_eq!(up["e"], ["a", "d"]);
    assert_eq!(dn["e"], ["end-node"]);
    assert_eq!(up["end-node"], ["d", "e"]);
    let e = primary
        .template
        .as_ref()
        .and_then(|t| t.nodes.iter().find(|n| n.id == "e"))
        .expect("e");
    assert_eq!(
        e.upstream_node_ids,
        ["a", "d"],
        "explicit upstreams are sorted"
    );
}

#[test]
fn empty_promise_node_id_means_start_node() {
    let mut wf = one_node_wf();
    wf.nodes[0].inputs = vec![bind("x", promise("", "x"))];
    let primary = compile(&wf).expect("compiles").primary.expect("primary");
    let n0 = primary
        .template
        .as_ref()
        .and_then(|t| t.nodes.iter().find(|n| n.id == "n0"))
        .expect("n0");
    assert_eq!(n0.inputs[0], bind("x", promise("start-node", "x")));
    assert_eq!(edges(&primary).1["start-node"], ["n0"]);
}

#[test]
fn branch_renames_then_nodes_and_wires_the_branch() {
    let wf = branch_wf(|_| {});
    let primary = compile(&wf).expect("compiles").primary.expect("primary");
    let (up, dn) = edges(&primary);
    assert_eq!(up["b"], ["start-node"]);
    assert_eq!(dn["b"], ["end-node"]);
    assert!(!up.contains_key("b-t"), "then-nodes are not top-level");
    let b = primary
        .template
        .as_ref()
        .and_then(|t| t.nodes.iter().find(|n| n.id == "b"))
        .expect("b");
    let Some(node::Target::BranchNode(branch)) = &b.target else {
        panic!("branch")
    };
    let if_else = branch.if_else.as_ref().expect("if_else");
    assert_eq!(
        if_else
            .case
            .as_ref()
            .and_then(|c| c.then_node.as_ref())
            .map(|n| n.id.as_str()),
        Some("b-t")
    );
    let Some(if_else_block::Default::ElseNode(e)) = &if_else.default else {
        panic!("else")
    };
    assert_eq!(e.id, "b-e");
}

#[test]
fn array_node_uses_inner_interface() {
    let tasks = vec![task("sq", &[("x", list(int()))], &[("o", list(int()))])];
    let wf = workflow(
        "wf",
        &[("xs", list(int()))],
        &[("o", list(int()))],
        vec![Node {
            id: "m".into(),
            inputs: vec![bind("x", promise("start-node", "xs"))],
            target: Some(node::Target::ArrayNode(Box::new(ArrayNode {
                node: Some(Box::new(task_node(
                    "n0",
                    "sq",
                    vec![bind("x", promise("start-node", "xs"))],
                ))),
                ..Default::default()
            }))),
            ..Default::default()
        }],
        vec![bind("o", promise("m", "o"))],
    );
    compile_workflow(&wf, &[], &tasks, &[]).expect("compiles");
}

#[test]
fn subworkflow_node_compiles_with_its_subworkflow() {
    let sub = workflow(
        "sub",
        &[("x", int())],
        &[("o", int())],
        vec![task_node(
            "n0",
            "double",
            vec![bind("x", promise("start-node", "x"))],
        )],
        vec![bind("o", promise("n0", "o"))],
    );
    let wf = workflow(
        "wf",
        &[("x", int())],
        &[("o", int())],
        vec![subworkflow_node(
            "s",
            "sub",
            vec![bind("x", promise("start-node", "x"))],
        )],
        vec![bind("o", promise("s", "o"))],
    );
    let closure = compile_workflow(&wf, &[sub], &std_tasks(), &[]).expect("compiles");
    assert_eq!(closure.sub_workflows.len(), 1);
    assert_eq!(
        ids(&closure.sub_workflows[0]),
        ["end-node", "n0", "start-node"]
    );
}

#[test]
fn launch_plan_node_exposes_required_and_bound_defaults() {
    let lp = launch_plan(
        "lp",
        &[("x", int())],
        &[("y", int()), ("z", string())],
        &[("o", int())],
    );
    let node = |inputs| launch_plan_node("l", "lp", inputs);
    let wf = |n| {
        workflow(
            "wf",
            &[("x", int())],
            &[("o", int())],
            vec![n],
            vec![bind("o", promise("l", "o"))],
        )
    };
    // Defaults may be left out...
    compile_workflow(
        &wf(node(vec![bind("x", int_lit(1))])),
        &[],
        &[],
        std::slice::from_ref(&lp),
    )
    .expect("defaults optional");
    // ...or overridden, and are then type-checked.
    compile_workflow(
        &wf(node(vec![bind("x", int_lit(1)), bind("y", int_lit(2))])),
        &[],
        &[],
        std::slice::from_ref(&lp),
    )
    .expect("override");
    let err = compile_workflow(
        &wf(node(vec![bind("x", int_lit(1)), bind("z", int_lit(2))])),
        &[],
        &[],
        std::slice::from_ref(&lp),
    )
    .expect_err("z is a str");
    assert!(
        err.to_string()
            .contains("Variable [z] (type [int]) doesn't match expected type [str]."),
        "{err}"
    );
    // Required inputs may not.
    let err = compile_workflow(&wf(node(vec![])), &[], &[], &[lp]).expect_err("x required");
    assert!(
        err.to_string().contains("ParameterNotBound, Node Id: l"),
        "{err}"
    );
}

#[test]
fn launch_plan_interface_from_admin_launch_plan() {
    let lp = launch_plan("lp", &[("x", int())], &[], &[("o", int())]);
    let admin = LaunchPlan {
        id: Some(lp.id.clone()),
        spec: None,
        closure: Some(LaunchPlanClosure {
            expected_inputs: Some(lp.inputs.clone()),
            expected_outputs: Some(lp.outputs.clone()),
            ..Default::default()
        }),
    };
    assert_eq!(LaunchPlanInterface::try_from(&admin), Ok(lp));
    let bare = LaunchPlan {
        closure: None,
        ..admin
    };
    assert!(matches!(
        LaunchPlanInterface::try_from(&bare),
        Err(LaunchPlanInterfaceError::MissingClosure(_))
    ));
}

#[test]
fn gates() {
    let gate = |id: &str, c: gate_node::Condition, inputs| Node {
        id: id.into(),
        inputs,
        target: Some(node::Target::GateNode(GateNode { condition: Some(c) })),
        ..Default::default()
    };
    let wf = workflow(
        "wf",
        &[("x", int())],
        &[("o", int())],
        vec![
            task_node("n0", "double", vec![bind("x", promise("start-node", "x"))]),
            gate(
                "approve",
                gate_node::Condition::Approve(ApproveCondition {
                    signal_id: "ok".into(),
                }),
                vec![bind("o", promise("n0", "o"))],
            ),
            // An approve gate reading another approve gate's passed-through output.
            Node {
                output_aliases: vec![Alias {
                    var: "o".into(),
                    alias: "checked".into(),
                }],
                ..gate(
                    "again",
                    gate_node::Condition::Approve(ApproveCondition {
                        signal_id: "ok2".into(),
                    }),
                    vec![bind("o", promise("approve", "o"))],
                )
            },
            gate(
                "signal",
                gate_node::Condition::Signal(SignalCondition {
                    signal_id: "factor".into(),
                    r#type: Some(int()),
                    output_variable_name: "o".into(),
                }),
                vec![],
            ),
            Node {
                upstream_node_ids: vec!["signal".into()],
                ..gate(
                    "sleep",
                    gate_node::Condition::Sleep(SleepCondition::default()),
                    vec![],
                )
            },
            task_node(
                "n1",
                "add",
                vec![
                    bind("x", promise("again", "checked")),
                    bind("y", promise("signal", "o")),
                ],
            ),
        ],
        vec![bind("o", promise("n1", "o"))],
    );
    let primary = compile(&wf).expect("compiles").primary.expect("primary");
    let (up, _) = edges(&primary);
    assert_eq!(up["n1"], ["again", "signal"]);
    assert_eq!(up["sleep"], ["signal"]);
    assert_eq!(up["end-node"], ["n1", "sleep"]);
}

#[test]
fn failure_node_gets_upstream_edges_only() {
    let mut wf = one_node_wf();
    wf.failure_node = Some(task_node(
        "fail",
        "double",
        vec![bind("x", promise("n0", "o"))],
    ));
    let primary = compile(&wf).expect("compiles").primary.expect("primary");
    let (up, dn) = edges(&primary);
    assert_eq!(up["fail"], ["n0"]);
    assert_eq!(
        dn["n0"],
        ["end-node"],
        "the failure node is not a downstream"
    );
    assert!(!ids(&primary).contains(&"fail".to_string()));
}

#[test]
fn optional_inputs_may_be_left_unbound() {
    let tasks = vec![task(
        "t",
        &[(
            "maybe",
            union(vec![
                int(),
                simple(alula_idl::flyteidl::core::SimpleType::None),
            ]),
        )],
        &[],
    )];
    let wf = workflow("wf", &[], &[], vec![task_node("n0", "t", vec![])], vec![]);
    compile_workflow(&wf, &[], &tasks, &[]).expect("optional input");
}

#[test]
fn compiling_twice_gives_identical_bytes() {
    let mut wf = branch_wf(|_| {});
    wf.nodes.push(task_node(
        "z",
        "add",
        vec![bind("x", promise("b", "o")), bind("y", int_lit(1))],
    ));
    wf.nodes
        .push(task_node("a", "greet", vec![bind("name", str_lit("n"))]));
    let first = compile(&wf).expect("compiles").encode_to_vec();
    for _ in 0..5 {
        assert_eq!(compile(&wf).expect("compiles").encode_to_vec(), first);
    }
    // Node order in the input does not matter either.
    wf.nodes.reverse();
    assert_eq!(compile(&wf).expect("compiles").encode_to_vec(), first);
}
