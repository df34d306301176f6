//! The model's shapes: branches, subworkflow levels, map counts, and a 1,000-node drawing.

use super::*;
use alula_idl::flyteidl::admin::{
    NodeExecutionClosure, NodeExecutionMetaData, TaskExecutionClosure,
};
use alula_idl::flyteidl::core::{
    connection_set::IdList, task_execution, ArrayNode, IfBlock, IfElseBlock,
    NodeExecutionIdentifier, ResourceType, TaskExecutionIdentifier, TaskNode,
    WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::event::{ExternalResourceInfo, TaskExecutionMetadata};
use alula_idl::wkt::{Struct, Value};

fn task_ref(name: &str) -> Option<node::Target> {
    Some(node::Target::TaskNode(TaskNode {
        reference: Some(task_node::Reference::ReferenceId(Identifier {
            resource_type: ResourceType::Task as i32,
            name: name.into(),
            ..Default::default()
        })),
        ..Default::default()
    }))
}

pub(crate) fn task(id: &str, task: &str) -> Node {
    Node {
        id: id.into(),
        target: task_ref(task),
        ..Default::default()
    }
}

/// A node execution `id` of template node `spec` (a child when they differ).
pub(crate) fn run(id: &str, spec: &str, phase: node_execution::Phase) -> NodeExecution {
    NodeExecution {
        id: Some(NodeExecutionIdentifier {
            node_id: id.into(),
            execution_id: None,
        }),
        closure: Some(NodeExecutionClosure {
            phase: phase as i32,
            ..Default::default()
        }),
        metadata: Some(NodeExecutionMetaData {
            spec_node_id: spec.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn branch() -> BranchNode {
    let case = |id: &str, t: &str| IfBlock {
        condition: None,
        then_node: Some(Box::new(task(id, t))),
    };
    BranchNode {
        if_else: Some(Box::new(IfElseBlock {
            case: Some(Box::new(case("n1-n0", "wf.small"))),
            other: vec![case("n1-n1", "wf.medium")],
            default: Some(if_else_block::Default::ElseNode(Box::new(task(
                "n1-n2", "wf.large",
            )))),
        })),
    }
}

#[test]
fn a_branch_shows_the_taken_case_and_skips_the_others() {
    use node_execution::Phase;
    let children = [run("n1-n1", "n1-n1", Phase::Succeeded)];
    let g = branch_cases("n1", &branch(), "SUCCEEDED", &children);
    let shown: Vec<(&str, &str, &str)> = g
        .nodes
        .iter()
        .map(|n| (n.id.as_str(), n.label.as_str(), n.phase))
        .collect();
    assert_eq!(
        shown,
        [
            ("n1", "branch", "SUCCEEDED"),
            ("n1-n0", "if: small", "SKIPPED"),
            ("n1-n1", "elif: medium", "SUCCEEDED"),
            ("n1-n2", "else: large", "SKIPPED"),
        ]
    );
    assert_eq!(g.edges, [(0, 1), (0, 2), (0, 3)]);
    assert!(g.nodes[2].ran && !g.nodes[1].ran);

    // Before the branch decides, no case is skipped yet.
    let waiting = branch_cases("n1", &branch(), "RUNNING", &[]);
    assert!(waiting.nodes[1..].iter().all(|n| n.phase == "UNDEFINED"));
}

#[test]
fn a_subworkflow_level_matches_children_by_their_template_ids() {
    use node_execution::Phase;
    let template = WorkflowTemplate {
        nodes: vec![task("n0", "sub.a"), task("n1", "sub.b")],
        ..Default::default()
    };
    let mut connections = ConnectionSet::default();
    for (from, to) in [("start-node", "n0"), ("n0", "n1"), ("n1", "end-node")] {
        connections.downstream.insert(
            from.into(),
            IdList {
                ids: vec![to.into()],
            },
        );
    }
    // The subworkflow node n2 ran once and was retried: its second attempt's children win.
    let mut old = run("n2-0-n0", "n0", Phase::Failed);
    old.metadata.as_mut().unwrap().retry_group = "0".into();
    let mut new = run("n2-1-n0", "n0", Phase::Succeeded);
    new.metadata.as_mut().unwrap().retry_group = "1".into();
    let children = [new, old, run("n2-1-n1", "n1", Phase::Running)];
    let g = from_template(&template, Some(&connections), &children, None);
    let ids: Vec<(&str, &str, &str)> = g
        .nodes
        .iter()
        .map(|n| (n.id.as_str(), n.spec_id.as_str(), n.phase))
        .collect();
    assert_eq!(
        ids,
        [
            ("start-node", "start-node", "SUCCEEDED"),
            ("n2-1-n0", "n0", "SUCCEEDED"),
            ("n2-1-n1", "n1", "RUNNING"),
            ("end-node", "end-node", "UNDEFINED"),
        ]
    );
    assert_eq!(g.edges, [(1, 2), (2, 3), (0, 1)]);
}

#[test]
fn an_uncompiled_template_gets_edges_from_upstream_ids() {
    let mut b = task("b", "t.b");
    b.upstream_node_ids = vec!["a".into()];
    let template = WorkflowTemplate {
        nodes: vec![task("a", "t.a"), b],
        ..Default::default()
    };
    let g = from_template(&template, None, &[], None);
    // start -> a -> b -> end
    assert_eq!(g.edges.len(), 3);
    assert!(g.edges.contains(&(0, 1)) && g.edges.contains(&(1, 2)) && g.edges.contains(&(2, 3)));
}

fn map_attempt(
    retry: u32,
    phases: &[task_execution::Phase],
    custom: Option<Struct>,
) -> TaskExecution {
    TaskExecution {
        id: Some(TaskExecutionIdentifier {
            retry_attempt: retry,
            ..Default::default()
        }),
        closure: Some(TaskExecutionClosure {
            custom_info: custom,
            metadata: Some(TaskExecutionMetadata {
                external_resources: phases
                    .iter()
                    .enumerate()
                    .map(|(i, p)| ExternalResourceInfo {
                        index: i as u32,
                        phase: *p as i32,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn a_map_node_counts_its_elements_by_phase() {
    use task_execution::Phase;
    let latest = map_attempt(
        1,
        &[
            Phase::Succeeded,
            Phase::Running,
            Phase::Succeeded,
            Phase::Failed,
            Phase::Queued,
        ],
        None,
    );
    let older = map_attempt(0, &[Phase::Failed], None);
    let counts = element_counts(&[latest, older]);
    assert_eq!(counts.total, 5);
    assert_eq!(
        counts.by_phase,
        [
            ("SUCCEEDED".to_string(), 2),
            ("FAILED".to_string(), 1),
            ("RUNNING".to_string(), 1),
            ("QUEUED".to_string(), 1),
        ]
    );
    assert_eq!(element_counts(&[]), ElementCounts::default());
}

fn number(n: f64) -> Value {
    Value {
        kind: Some(ValueKind::NumberValue(n)),
    }
}

fn object(fields: Vec<(&str, Value)>) -> Value {
    Value {
        kind: Some(ValueKind::StructValue(Struct {
            fields: fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        })),
    }
}

#[test]
fn a_big_map_reads_the_aggregate_counts() {
    // {"elements": {"total": 100000, "phases": {"SUCCEEDED": 99990, "RUNNING": 10}}}
    let info = Struct {
        fields: [(
            "elements".to_string(),
            object(vec![
                ("total", number(100_000.0)),
                (
                    "phases",
                    object(vec![
                        ("RUNNING", number(10.0)),
                        ("SUCCEEDED", number(99_990.0)),
                        ("FAILED", number(0.0)),
                    ]),
                ),
            ]),
        )]
        .into_iter()
        .collect(),
    };
    let counts = element_counts(&[map_attempt(0, &[], Some(info))]);
    assert_eq!(counts.total, 100_000);
    assert_eq!(
        counts.by_phase,
        [
            ("SUCCEEDED".to_string(), 99_990),
            ("RUNNING".to_string(), 10)
        ]
    );
}

#[test]
fn kinds_read_from_the_template_and_the_execution() {
    use node_execution::Phase;
    let map = Node {
        id: "m".into(),
        target: Some(node::Target::ArrayNode(Box::new(ArrayNode {
            node: Some(Box::new(task("m-inner", "wf.square"))),
            ..Default::default()
        }))),
        ..Default::default()
    };
    let lp = Node {
        id: "lp".into(),
        target: Some(node::Target::WorkflowNode(
            alula_idl::flyteidl::core::WorkflowNode {
                reference: Some(workflow_node::Reference::LaunchplanRef(Identifier {
                    name: "my.child_lp".into(),
                    ..Default::default()
                })),
            },
        )),
        ..Default::default()
    };
    let mut lp_run = run("lp", "lp", Phase::Running);
    let child = WorkflowExecutionIdentifier {
        name: "child1".into(),
        ..Default::default()
    };
    lp_run.closure.as_mut().unwrap().target_metadata = Some(
        node_execution_closure::TargetMetadata::WorkflowNodeMetadata(
            alula_idl::flyteidl::admin::WorkflowNodeMetadata {
                execution_id: Some(child.clone()),
            },
        ),
    );
    let mut dyn_run = run("d", "d", Phase::DynamicRunning);
    dyn_run.metadata.as_mut().unwrap().is_dynamic = true;
    let template = WorkflowTemplate {
        nodes: vec![map, lp, task("d", "wf.make_more")],
        ..Default::default()
    };
    let g = from_template(&template, None, &[lp_run, dyn_run], Some("SUCCEEDED"));
    let m = &g.nodes[1];
    assert_eq!((m.kind, m.label.as_str()), (Kind::Map, "map square"));
    assert_eq!(m.elements, Some(ElementCounts::default()));
    assert_eq!(g.nodes[2].kind, Kind::LaunchPlan);
    assert_eq!(g.nodes[2].child_execution, Some(child));
    assert!(!g.nodes[2].expandable);
    assert_eq!(
        (g.nodes[3].kind, g.nodes[3].phase),
        (Kind::Dynamic, "DYNAMIC_RUNNING")
    );
    assert!(g.nodes[3].expandable);
    assert_eq!(
        g.nodes[4].phase, "SUCCEEDED",
        "the end box follows the level's end"
    );
}
