//! The flyteidl events an execution records: what admin needs to nest node executions under
//! their parents and what flytekit needs to match them with their specs.

mod support;

use alula_engine::driver::run;
use alula_engine::{Event, Execution, ExecutionSettings, TaskOutcome, WorkflowPhase};
use alula_idl::flyteidl::core::{
    boolean_expression, comparison_expression, if_else_block, node, node_execution, operand,
    task_execution, workflow_node, ArrayNode, BooleanExpression, BranchNode, ComparisonExpression,
    CompiledWorkflowClosure, DynamicJobSpec, IfBlock, IfElseBlock, Literal, Node, Operand,
    ResourceType, WorkflowExecutionIdentifier, WorkflowNode,
};
use alula_idl::flyteidl::event::{node_execution_event, NodeExecutionEvent, TaskExecutionEvent};
use std::collections::BTreeMap;
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

fn execute(
    closure: &CompiledWorkflowClosure,
    ins: &[(&str, Literal)],
    fake: &mut Fake,
) -> (Execution, Vec<Event>) {
    let mut exec = Execution::new(closure, inputs(ins), settings()).expect("valid closure");
    let mut events = Vec::new();
    run(&mut exec, fake, |e| events.push(e)).expect("driver");
    (exec, events)
}

fn node_events<'a>(events: &'a [Event], id: &str) -> Vec<&'a NodeExecutionEvent> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Node(n) if n.id.as_ref().map(|i| i.node_id.as_str()) == Some(id) => {
                Some(n.as_ref())
            }
            _ => None,
        })
        .collect()
}

fn task_events<'a>(events: &'a [Event], id: &str) -> Vec<&'a TaskExecutionEvent> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Task(t)
                if t.parent_node_execution_id
                    .as_ref()
                    .map(|i| i.node_id.as_str())
                    == Some(id) =>
            {
                Some(t.as_ref())
            }
            _ => None,
        })
        .collect()
}

fn parent_of(e: &NodeExecutionEvent) -> Option<&str> {
    e.parent_node_metadata.as_ref().map(|m| m.node_id.as_str())
}

/// Every event of node execution `id`: its spec id, its parent and its flags.
fn assert_node(
    events: &[Event],
    id: &str,
    spec: &str,
    parent: Option<&str>,
    flags: (bool, bool, bool),
) {
    let evs = node_events(events, id);
    assert!(!evs.is_empty(), "no events for {id}");
    for e in &evs {
        assert_eq!(e.spec_node_id, spec, "{id}: spec_node_id");
        assert_eq!(parent_of(e), parent, "{id}: parent");
    }
    let (is_parent, is_dynamic, is_array) = flags;
    assert_eq!(
        evs.iter().any(|e| e.is_parent),
        is_parent,
        "{id}: is_parent"
    );
    assert_eq!(
        evs.iter().any(|e| e.is_dynamic),
        is_dynamic,
        "{id}: is_dynamic"
    );
    assert_eq!(evs.iter().any(|e| e.is_array), is_array, "{id}: is_array");
}

fn positive(var: &str) -> BooleanExpression {
    let zero = match int(0).value {
        Some(alula_idl::flyteidl::core::literal::Value::Scalar(s)) => *s,
        _ => unreachable!(),
    };
    BooleanExpression {
        expr: Some(boolean_expression::Expr::Comparison(ComparisonExpression {
            operator: comparison_expression::Operator::Gt as i32,
            left_value: Some(Operand {
                val: Some(operand::Val::Var(var.into())),
            }),
            right_value: Some(Operand {
                val: Some(operand::Val::Scalar(zero)),
            }),
        })),
    }
}

fn branch_node(id: &str, then: Node, other: Node) -> Node {
    Node {
        id: id.into(),
        inputs: vec![bind("x", promise("start-node", "x"))],
        target: Some(node::Target::BranchNode(Box::new(BranchNode {
            if_else: Some(Box::new(IfElseBlock {
                case: Some(Box::new(IfBlock {
                    condition: Some(positive("x")),
                    then_node: Some(Box::new(then)),
                })),
                other: vec![],
                default: Some(if_else_block::Default::ElseNode(Box::new(other))),
            })),
        }))),
        ..Default::default()
    }
}

fn subworkflow_node(id: &str, sub: &str) -> Node {
    Node {
        id: id.into(),
        inputs: vec![bind("x", promise("start-node", "x"))],
        target: Some(node::Target::WorkflowNode(WorkflowNode {
            reference: Some(workflow_node::Reference::SubWorkflowRef(ident(
                ResourceType::Workflow,
                sub,
            ))),
        })),
        ..Default::default()
    }
}

fn arithmetic_tasks() -> Vec<alula_idl::flyteidl::core::TaskTemplate> {
    vec![
        task("square", &["x"], &["o0"]),
        task("inc", &["x"], &["o0"]),
        task("add", &["x", "y"], &["o0"]),
    ]
}

#[test]
fn a_branch_reports_its_chosen_case_as_its_child() {
    let then = task_node(
        "n0-n0",
        "square",
        vec![bind("x", promise("start-node", "x"))],
    );
    let other = task_node("n0-n1", "inc", vec![bind("x", promise("start-node", "x"))]);
    let wf = workflow(
        "br",
        &["x"],
        vec![branch_node("n0", then, other)],
        vec![bind("o0", promise("n0", "o0"))],
        &["o0"],
    );
    let c = closure(wf, vec![], arithmetic_tasks());
    let (exec, events) = execute(&c, &[("x", int(3))], &mut Fake::arithmetic());
    assert_eq!(exec.phase(), WorkflowPhase::Succeeded);
    assert_node(&events, "n0", "n0", None, (true, false, false));
    assert_node(&events, "n0-n0", "n0-n0", Some("n0"), (false, false, false));
    let child = node_events(&events, "n0-n0");
    assert!(child.iter().all(|e| e.retry_group == "0"));
    // The parent's first event comes before any of its child's: admin creates it first.
    let first = |id: &str| {
        events
            .iter()
            .position(|e| matches!(e, Event::Node(n) if n.id.as_ref().unwrap().node_id == id))
            .unwrap()
    };
    assert!(first("n0") < first("n0-n0"));
    // The task events of the case's node belong to its node execution.
    let tasks = task_events(&events, "n0-n0");
    assert_eq!(tasks.len(), 2, "RUNNING and SUCCEEDED");

    let (_, events) = execute(&c, &[("x", int(-3))], &mut Fake::arithmetic());
    assert_node(&events, "n0-n1", "n0-n1", Some("n0"), (false, false, false));
    assert!(node_events(&events, "n0-n0").is_empty());
}

#[test]
fn subworkflow_nodes_report_their_parent_and_spec_ids() {
    // parent: n0 = sub(x); sub: s0 = square(x), s1 = inner(s0); inner: i0 = a branch.
    let inner = workflow(
        "inner",
        &["x"],
        vec![branch_node(
            "i0",
            task_node("i0-a", "inc", vec![bind("x", promise("start-node", "x"))]),
            task_node(
                "i0-b",
                "square",
                vec![bind("x", promise("start-node", "x"))],
            ),
        )],
        vec![bind("o0", promise("i0", "o0"))],
        &["o0"],
    );
    let mut s1 = subworkflow_node("s1", "inner");
    s1.inputs = vec![bind("x", promise("s0", "o0"))];
    let sub = workflow(
        "sub",
        &["x"],
        vec![
            task_node("s0", "square", vec![bind("x", promise("start-node", "x"))]),
            s1,
        ],
        vec![bind("o0", promise("s1", "o0"))],
        &["o0"],
    );
    let wf = workflow(
        "parent",
        &["x"],
        vec![subworkflow_node("n0", "sub")],
        vec![bind("o0", promise("n0", "o0"))],
        &["o0"],
    );
    let c = closure(wf, vec![sub, inner], arithmetic_tasks());
    let (exec, events) = execute(&c, &[("x", int(4))], &mut Fake::arithmetic());
    assert_eq!(exec.phase(), WorkflowPhase::Succeeded);
    assert_node(&events, "n0", "n0", None, (true, false, false));
    assert_node(&events, "n0-0-s0", "s0", Some("n0"), (false, false, false));
    assert_node(&events, "n0-0-s1", "s1", Some("n0"), (true, false, false));
    assert_node(
        &events,
        "n0-0-s1-0-i0",
        "i0",
        Some("n0-0-s1"),
        (true, false, false),
    );
    assert_node(
        &events,
        "n0-0-s1-0-i0-a",
        "i0-a",
        Some("n0-0-s1-0-i0"),
        (false, false, false),
    );
    assert!(node_events(&events, "n0-0-s0")
        .iter()
        .all(|e| e.retry_group == "0"));
    assert!(node_events(&events, "n0")
        .iter()
        .all(|e| e.retry_group.is_empty()));
    // Task events of nested nodes name their own node execution.
    assert_eq!(task_events(&events, "n0-0-s0").len(), 2);
    assert_eq!(task_events(&events, "n0-0-s1-0-i0-a").len(), 2);
}

fn dynamic_parent() -> CompiledWorkflowClosure {
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
    let mut tasks = arithmetic_tasks();
    tasks.push(task("fan_out", &["n"], &["o0"]));
    closure(wf, vec![], tasks)
}

fn dynamic_event(events: &[Event], id: &str) -> CompiledWorkflowClosure {
    let dynamic: Vec<_> = node_events(events, id)
        .into_iter()
        .filter(|e| e.phase == node_execution::Phase::DynamicRunning as i32)
        .collect();
    assert_eq!(dynamic.len(), 1, "one DYNAMIC_RUNNING event");
    let e = dynamic[0];
    assert!(e.is_parent && e.is_dynamic);
    let Some(node_execution_event::TargetMetadata::TaskNodeMetadata(meta)) = &e.target_metadata
    else {
        panic!("no task node metadata: {e:?}")
    };
    let dw = meta.dynamic_workflow.as_ref().expect("dynamic_workflow");
    assert!(dw.id.is_some());
    dw.compiled_workflow.clone().expect("compiled workflow")
}

fn template_node_ids(c: &CompiledWorkflowClosure) -> Vec<String> {
    let mut ids: Vec<String> = c
        .primary
        .as_ref()
        .and_then(|p| p.template.as_ref())
        .expect("primary template")
        .nodes
        .iter()
        .map(|n| n.id.clone())
        .filter(|id| id != "start-node" && id != "end-node")
        .collect();
    ids.sort();
    ids
}

fn child_spec_ids(events: &[Event], parent: &str) -> Vec<String> {
    let mut ids: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Node(n) if parent_of(n) == Some(parent) => Some(n.spec_node_id.clone()),
            _ => None,
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[test]
fn a_dynamic_node_reports_the_compiled_workflow_it_runs() {
    let mut fake = Fake::arithmetic().on("fan_out", |a| {
        let n = as_int(&a.inputs.literals["n"]);
        let mut nodes: Vec<Node> = (0..n)
            .map(|i| {
                task_node(
                    &format!("dn{i}"),
                    "square",
                    vec![bind("x", constant(int(i)))],
                )
            })
            .collect();
        nodes.push(task_node(
            "dn-sum",
            "add",
            vec![
                bind("x", promise("dn0", "o0")),
                bind("y", promise("dn1", "o0")),
            ],
        ));
        Some(TaskOutcome::Dynamic(DynamicJobSpec {
            nodes,
            outputs: vec![bind("o0", promise("dn-sum", "o0"))],
            ..Default::default()
        }))
    });
    let (exec, events) = execute(&dynamic_parent(), &[("n", int(3))], &mut fake);
    assert_eq!(exec.phase(), WorkflowPhase::Succeeded);
    let compiled = dynamic_event(&events, "n0");
    assert_eq!(
        template_node_ids(&compiled),
        vec!["dn-sum", "dn0", "dn1", "dn2"]
    );
    assert_eq!(child_spec_ids(&events, "n0"), template_node_ids(&compiled));
    assert!(
        compiled
            .tasks
            .iter()
            .any(|t| t.template.as_ref().unwrap().id.as_ref().unwrap().name == "square"),
        "the closure carries the tasks its nodes run"
    );
    assert_node(
        &events,
        "n0-0-dn0",
        "dn0",
        Some("n0"),
        (false, false, false),
    );
    assert_node(&events, "n0", "n0", None, (true, true, false));
    // The task events of the children belong to their own node executions.
    assert_eq!(task_events(&events, "n0-0-dn0").len(), 2);
    // The dynamic task itself ran under n0.
    assert_eq!(task_events(&events, "n0").len(), 2);
}

#[test]
fn a_dynamic_workflow_calling_a_launch_plan_reports_it_uncompiled() {
    let mut fake = Fake::arithmetic().on("fan_out", |_| {
        let call = Node {
            id: "dn0".into(),
            inputs: vec![bind("x", constant(int(2)))],
            target: Some(node::Target::WorkflowNode(WorkflowNode {
                reference: Some(workflow_node::Reference::LaunchplanRef(ident(
                    ResourceType::LaunchPlan,
                    "lp",
                ))),
            })),
            ..Default::default()
        };
        let then = task_node("dn1", "inc", vec![bind("x", promise("dn0", "o0"))]);
        Some(TaskOutcome::Dynamic(DynamicJobSpec {
            nodes: vec![call, then],
            outputs: vec![bind("o0", promise("dn1", "o0"))],
            ..Default::default()
        }))
    });
    let (exec, events) = execute(&dynamic_parent(), &[("n", int(1))], &mut fake);
    assert_eq!(exec.phase(), WorkflowPhase::Succeeded);
    let closure = dynamic_event(&events, "n0");
    assert_eq!(template_node_ids(&closure), vec!["dn0", "dn1"]);
    assert_eq!(child_spec_ids(&events, "n0"), vec!["dn0", "dn1"]);
    let connections = closure.primary.unwrap().connections.unwrap();
    assert_eq!(connections.upstream["dn1"].ids, vec!["dn0".to_string()]);
    assert!(closure
        .tasks
        .iter()
        .any(|t| t.template.as_ref().unwrap().id.as_ref().unwrap().name == "inc"));
}

fn map_closure() -> CompiledWorkflowClosure {
    let array = ArrayNode {
        success_criteria: Some(
            alula_idl::flyteidl::core::array_node::SuccessCriteria::MinSuccessRatio(0.5),
        ),
        ..Default::default()
    };
    support::map_closure(task("maybe", &["x"], &["o0"]), array)
}

fn maybe() -> Fake {
    Fake::new().on("maybe", |a| {
        let x = as_int(&a.inputs.literals["x"]);
        Some(if x < 0 {
            TaskOutcome::Failed(user_error("negative"))
        } else {
            ok(&[("o0", int(x))])
        })
    })
}

fn list(xs: impl Iterator<Item = i64>) -> Literal {
    alula_engine::literals::collection(xs.map(int).collect())
}

#[test]
fn an_array_node_reports_is_array_and_its_elements() {
    let (exec, events) = execute(
        &map_closure(),
        &[("xs", list([1, -2, 3].into_iter()))],
        &mut maybe(),
    );
    assert_eq!(exec.phase(), WorkflowPhase::Succeeded);
    assert_node(&events, "n0", "n0", None, (false, false, true));
    assert!(node_events(&events, "n0").iter().all(|e| e.is_array));
    let tasks = task_events(&events, "n0");
    let phases: Vec<i32> = tasks.iter().map(|t| t.phase).collect();
    assert_eq!(
        phases,
        vec![
            task_execution::Phase::Running as i32,
            task_execution::Phase::Succeeded as i32
        ]
    );
    for t in &tasks {
        assert_eq!(t.task_type, "k8s-array");
        let id = t.task_id.as_ref().unwrap();
        assert_eq!(
            (id.project.as_str(), id.domain.as_str(), id.name.as_str()),
            ("p", "d", "n0")
        );
        let resources = &t.metadata.as_ref().unwrap().external_resources;
        assert_eq!(
            resources.iter().map(|r| r.index).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
    }
    let last = &tasks[1].metadata.as_ref().unwrap().external_resources;
    assert_eq!(
        last.iter().map(|r| r.phase).collect::<Vec<_>>(),
        vec![
            task_execution::Phase::Succeeded as i32,
            task_execution::Phase::Failed as i32,
            task_execution::Phase::Succeeded as i32
        ]
    );
}

#[test]
fn a_large_array_node_reports_few_events_without_elements() {
    let size = 10_001;
    let (exec, events) = execute(&map_closure(), &[("xs", list(0..size))], &mut maybe());
    assert_eq!(exec.phase(), WorkflowPhase::Succeeded);
    let tasks = task_events(&events, "n0");
    assert_eq!(tasks.len(), 2);
    assert!(tasks
        .iter()
        .all(|t| t.metadata.as_ref().unwrap().external_resources.is_empty()));
    assert!(node_events(&events, "n0").len() <= 3);
}

/// The `custom_info.elements` of an array node task event: (total, phase name → count).
fn element_counts(t: &TaskExecutionEvent) -> (u64, BTreeMap<String, u64>) {
    use alula_idl::wkt::value::Kind;
    let number = |v: &alula_idl::wkt::Value| match v.kind {
        Some(Kind::NumberValue(n)) => n as u64,
        ref other => panic!("not a number: {other:?}"),
    };
    let object = |v: &alula_idl::wkt::Value| match &v.kind {
        Some(Kind::StructValue(s)) => s.fields.clone(),
        other => panic!("not an object: {other:?}"),
    };
    let info = t
        .custom_info
        .as_ref()
        .expect("array task events carry custom_info");
    let elements = object(&info.fields["elements"]);
    let phases = object(&elements["phases"])
        .iter()
        .map(|(k, v)| (k.clone(), number(v)))
        .collect();
    (number(&elements["total"]), phases)
}

#[test]
fn array_task_events_count_their_elements_by_phase() {
    let (_, events) = execute(
        &map_closure(),
        &[("xs", list([1, -2, 3, 4].into_iter()))],
        &mut maybe(),
    );
    let tasks = task_events(&events, "n0");
    assert!(tasks.len() >= 2);
    for t in &tasks {
        let (total, phases) = element_counts(t);
        assert_eq!(total, 4);
        assert_eq!(phases.values().sum::<u64>(), total, "{phases:?}");
        // The counts are those of the per-element resources of the same event.
        let mut expected: BTreeMap<String, u64> = BTreeMap::new();
        for r in &t.metadata.as_ref().unwrap().external_resources {
            let name = task_execution::Phase::try_from(r.phase)
                .unwrap()
                .as_str_name();
            *expected.entry(name.to_string()).or_default() += 1;
        }
        assert_eq!(phases, expected);
    }
    let (_, last) = element_counts(tasks.last().unwrap());
    assert_eq!(
        last,
        BTreeMap::from([("FAILED".to_string(), 1), ("SUCCEEDED".to_string(), 3)])
    );
}

#[test]
fn a_large_array_node_still_counts_its_elements() {
    let size = 10_001;
    let xs = (0..size).map(|i| if i % 4 == 0 { -1 } else { i });
    let (_, events) = execute(&map_closure(), &[("xs", list(xs))], &mut maybe());
    let tasks = task_events(&events, "n0");
    let (total, first) = element_counts(tasks[0]);
    assert_eq!(total, size as u64);
    assert_eq!(first.values().sum::<u64>(), total);
    let (total, last) = element_counts(tasks.last().unwrap());
    assert_eq!(total, size as u64);
    assert_eq!(
        last,
        BTreeMap::from([
            ("FAILED".to_string(), 2501),
            ("SUCCEEDED".to_string(), 7500)
        ])
    );
}

#[test]
fn no_events_are_recorded_unless_asked() {
    let settings = ExecutionSettings {
        record_events: false,
        ..settings()
    };
    let mut exec = Execution::new(&map_closure(), inputs(&[("xs", list(0..3))]), settings)
        .expect("valid closure");
    let mut events = Vec::new();
    run(&mut exec, &mut maybe(), |e| events.push(e)).expect("driver");
    assert_eq!(exec.phase(), WorkflowPhase::Succeeded);
    assert!(events.is_empty());
}
