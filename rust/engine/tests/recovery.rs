//! RecoverExecution's engine side: nodes that succeeded in the original execution end
//! RECOVERED with its outputs and run nothing; the others run as usual.

mod support;

use std::collections::HashMap;

use alula_engine::driver::run;
use alula_engine::{Event, Execution, ExecutionSettings, TaskOutcome, WorkflowPhase};
use alula_idl::flyteidl::core::{
    node, node_execution, workflow_node, ArrayNode, CompiledWorkflowClosure, Literal, LiteralMap,
    Node, ResourceType, WorkflowExecutionIdentifier, WorkflowNode,
};
use alula_idl::flyteidl::event::{node_execution_event, NodeExecutionEvent};
use support::*;

fn settings() -> ExecutionSettings {
    ExecutionSettings {
        record_events: true,
        execution_id: WorkflowExecutionIdentifier {
            project: "p".into(),
            domain: "d".into(),
            name: "recovered".into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn recover(
    closure: &CompiledWorkflowClosure,
    ins: &[(&str, Literal)],
    succeeded: &[(&str, LiteralMap)],
    fake: &mut Fake,
) -> (Execution, Vec<Event>) {
    let mut exec = Execution::new(closure, inputs(ins), settings()).expect("valid closure");
    exec.recover_from(
        succeeded
            .iter()
            .map(|(id, outputs)| (id.to_string(), outputs.clone()))
            .collect::<HashMap<_, _>>(),
    );
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

fn phases(events: &[Event], id: &str) -> Vec<node_execution::Phase> {
    node_events(events, id)
        .iter()
        .map(|e| node_execution::Phase::try_from(e.phase).expect("a known phase"))
        .collect()
}

fn task_events_of(events: &[Event], id: &str) -> usize {
    events
        .iter()
        .filter(|e| match e {
            Event::Task(t) => {
                t.parent_node_execution_id
                    .as_ref()
                    .map(|i| i.node_id.as_str())
                    == Some(id)
            }
            _ => false,
        })
        .count()
}

/// n0 = inc(x), n1 = square(n0), n2 = inc(n1).
fn chain() -> CompiledWorkflowClosure {
    let wf = workflow(
        "chain",
        &["x"],
        vec![
            task_node("n0", "inc", vec![bind("x", promise("start-node", "x"))]),
            Node {
                upstream_node_ids: vec!["n0".into()],
                ..task_node("n1", "square", vec![bind("x", promise("n0", "o0"))])
            },
            Node {
                upstream_node_ids: vec!["n1".into()],
                ..task_node("n2", "inc", vec![bind("x", promise("n1", "o0"))])
            },
        ],
        vec![bind("o0", promise("n2", "o0"))],
        &["o0"],
    );
    closure(
        wf,
        vec![],
        vec![
            task("inc", &["x"], &["o0"]),
            task("square", &["x"], &["o0"]),
        ],
    )
}

fn started_nodes(fake: &Fake) -> Vec<String> {
    fake.started
        .iter()
        .map(|(_, node, _, _)| node.clone())
        .collect()
}

#[test]
fn a_node_that_succeeded_is_recovered_and_the_rest_runs() {
    let mut fake = Fake::arithmetic();
    // The original's n0 made 7 (a value inc(2) would not): the recovered outputs are used.
    let (exec, events) = recover(
        &chain(),
        &[("x", int(2))],
        &[("n0", inputs(&[("o0", int(7))]))],
        &mut fake,
    );
    assert_eq!(exec.phase(), WorkflowPhase::Succeeded);
    assert_eq!(started_nodes(&fake), vec!["n1", "n2"], "n0 did not run");
    assert_eq!(as_int(&exec.outputs().unwrap().literals["o0"]), 50);
    assert_eq!(
        phases(&events, "n0"),
        vec![node_execution::Phase::Recovered]
    );
    let recovered = node_events(&events, "n0")[0];
    match &recovered.output_result {
        Some(node_execution_event::OutputResult::OutputData(d)) => {
            assert_eq!(as_int(&d.literals["o0"]), 7)
        }
        other => panic!("the recovered event carries the outputs: {other:?}"),
    }
    assert_eq!(
        task_events_of(&events, "n0"),
        0,
        "no attempt, no task event"
    );
    assert_eq!(
        phases(&events, "n1"),
        vec![
            node_execution::Phase::Running,
            node_execution::Phase::Succeeded
        ]
    );
}

#[test]
fn without_recovery_everything_runs() {
    let mut fake = Fake::arithmetic();
    let (exec, events) = recover(&chain(), &[("x", int(2))], &[], &mut fake);
    assert_eq!(exec.phase(), WorkflowPhase::Succeeded);
    assert_eq!(started_nodes(&fake), vec!["n0", "n1", "n2"]);
    assert_eq!(as_int(&exec.outputs().unwrap().literals["o0"]), 10);
    assert!(!phases(&events, "n0").contains(&node_execution::Phase::Recovered));
}

#[test]
fn a_recovered_node_is_saved_as_recovered_across_a_resume() {
    let fake = Fake::arithmetic();
    let closure = chain();
    let mut exec = Execution::new(&closure, inputs(&[("x", int(2))]), settings()).unwrap();
    exec.recover_from(HashMap::from([(
        "n0".to_string(),
        inputs(&[("o0", int(7))]),
    )]));
    // n0 is recovered at the first poll, which starts n1; n1 ends before the save.
    let actions = exec.poll(fake.clock);
    let [alula_engine::Action::StartTask(n1)] = actions.as_slice() else {
        panic!("n1 starts: {actions:?}");
    };
    assert_eq!(n1.node_execution_id, "n1");
    assert_eq!(as_int(&n1.inputs.literals["x"]), 7);
    exec.task_finished(n1.id, ok(&[("o0", int(49))]), fake.clock)
        .unwrap();
    let state: alula_engine::ExecutionState =
        serde_json::from_slice(&serde_json::to_vec(exec.state()).unwrap()).unwrap();
    assert!(state.nodes.iter().any(|n| n.id == "n0" && n.recovered));
    // An older saved state (before the field existed) still loads.
    let mut json: serde_json::Value = serde_json::to_value(exec.state()).unwrap();
    for node in json["nodes"].as_array_mut().unwrap() {
        node.as_object_mut().unwrap().remove("recovered");
    }
    let old: alula_engine::ExecutionState = serde_json::from_value(json).unwrap();
    assert!(old.nodes.iter().all(|n| !n.recovered));
    let mut resumed = Execution::resume(&closure, state, settings(), fake.clock).unwrap();
    // n2, started before the save, is what is left; it ends after the resume.
    let running: Vec<_> = resumed
        .running_attempts()
        .map(|(id, node, _)| (id, node.to_string()))
        .collect();
    assert_eq!(
        running.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>(),
        vec!["n2"]
    );
    resumed
        .task_finished(running[0].0, ok(&[("o0", int(50))]), fake.clock)
        .unwrap();
    let _ = resumed.poll(fake.clock);
    assert_eq!(resumed.phase(), WorkflowPhase::Succeeded);
    assert_eq!(as_int(&resumed.outputs().unwrap().literals["o0"]), 50);
}

fn subworkflow_closure() -> CompiledWorkflowClosure {
    let sub = workflow(
        "sub",
        &["x"],
        vec![
            task_node("n0", "inc", vec![bind("x", promise("start-node", "x"))]),
            Node {
                upstream_node_ids: vec!["n0".into()],
                ..task_node("n1", "square", vec![bind("x", promise("n0", "o0"))])
            },
        ],
        vec![bind("o0", promise("n1", "o0"))],
        &["o0"],
    );
    let parent = workflow(
        "parent",
        &["x"],
        vec![Node {
            id: "n0".into(),
            inputs: vec![bind("x", promise("start-node", "x"))],
            target: Some(node::Target::WorkflowNode(WorkflowNode {
                reference: Some(workflow_node::Reference::SubWorkflowRef(ident(
                    ResourceType::Workflow,
                    "sub",
                ))),
            })),
            ..Default::default()
        }],
        vec![bind("o0", promise("n0", "o0"))],
        &["o0"],
    );
    closure(
        parent,
        vec![sub],
        vec![
            task("inc", &["x"], &["o0"]),
            task("square", &["x"], &["o0"]),
        ],
    )
}

#[test]
fn a_task_node_inside_a_subworkflow_is_recovered_by_its_unique_id() {
    let mut fake = Fake::arithmetic();
    // The subworkflow node failed in the original (so it is not recovered whole); its first
    // task succeeded.
    let (exec, events) = recover(
        &subworkflow_closure(),
        &[("x", int(2))],
        &[("n0-0-n0", inputs(&[("o0", int(4))]))],
        &mut fake,
    );
    assert_eq!(exec.phase(), WorkflowPhase::Succeeded);
    assert_eq!(started_nodes(&fake), vec!["n0-0-n1"]);
    assert_eq!(as_int(&exec.outputs().unwrap().literals["o0"]), 16);
    assert_eq!(
        phases(&events, "n0-0-n0"),
        vec![node_execution::Phase::Recovered]
    );
    assert_eq!(
        node_events(&events, "n0-0-n0")[0]
            .parent_node_metadata
            .as_ref()
            .map(|p| p.node_id.as_str()),
        Some("n0"),
        "nested under its subworkflow node as before"
    );
}

fn map_closure() -> CompiledWorkflowClosure {
    support::map_closure(task("inc", &["x"], &["o0"]), ArrayNode::default())
}

#[test]
fn a_whole_array_node_is_recovered_without_running_an_element() {
    let mut fake = Fake::arithmetic();
    let list =
        |xs: &[i64]| alula_engine::literals::collection(xs.iter().map(|&x| int(x)).collect());
    let (exec, events) = recover(
        &map_closure(),
        &[("xs", list(&[1, 2, 3]))],
        &[("n0", inputs(&[("o0", list(&[2, 3, 4]))]))],
        &mut fake,
    );
    assert_eq!(exec.phase(), WorkflowPhase::Succeeded);
    assert!(fake.started.is_empty(), "{:?}", fake.started);
    assert_eq!(
        phases(&events, "n0"),
        vec![node_execution::Phase::Recovered]
    );
    assert_eq!(
        exec.outputs().unwrap().literals["o0"],
        list(&[2, 3, 4]),
        "the workflow's outputs come from the recovered node"
    );
}

#[test]
fn a_recovered_node_needs_no_slot_under_max_parallelism() {
    // With one slot taken by a task that never ends, a recoverable node still completes.
    let wf = workflow(
        "two",
        &["x"],
        vec![
            task_node("n0", "stuck", vec![bind("x", promise("start-node", "x"))]),
            task_node("n1", "inc", vec![bind("x", promise("start-node", "x"))]),
        ],
        vec![],
        &[],
    );
    let closure = closure(
        wf,
        vec![],
        vec![task("stuck", &["x"], &["o0"]), task("inc", &["x"], &["o0"])],
    );
    let mut exec = Execution::new(
        &closure,
        inputs(&[("x", int(1))]),
        ExecutionSettings {
            max_parallelism: 1,
            ..settings()
        },
    )
    .unwrap();
    exec.recover_from(HashMap::from([(
        "n1".to_string(),
        inputs(&[("o0", int(2))]),
    )]));
    let mut fake = Fake::arithmetic().on("stuck", |_| None::<TaskOutcome>);
    let mut events = Vec::new();
    run(&mut exec, &mut fake, |e| events.push(e)).unwrap();
    assert_eq!(started_nodes(&fake), vec!["n0"]);
    assert_eq!(
        phases(&events, "n1"),
        vec![node_execution::Phase::Recovered]
    );
    assert!(!exec.has_pending_work(), "nothing left that poll would do");
}

#[test]
fn a_failure_node_runs_again_even_if_it_succeeded_before() {
    let mut wf = workflow(
        "f",
        &["x"],
        vec![task_node(
            "n0",
            "boom",
            vec![bind("x", promise("start-node", "x"))],
        )],
        vec![],
        &[],
    );
    wf.failure_node = Some(task_node(
        "fn0",
        "cleanup",
        vec![bind("x", promise("start-node", "x"))],
    ));
    let closure = closure(
        wf,
        vec![],
        vec![task("boom", &["x"], &[]), task("cleanup", &["x"], &[])],
    );
    let mut fake = Fake::new()
        .on("boom", |_| Some(TaskOutcome::Failed(user_error("again"))))
        .on("cleanup", |_| Some(ok(&[])));
    // The original's failure node succeeded; the recovery fails again and cleans up again.
    let (exec, events) = recover(
        &closure,
        &[("x", int(1))],
        &[("fn0", inputs(&[]))],
        &mut fake,
    );
    assert_eq!(exec.phase(), WorkflowPhase::Failed);
    assert_eq!(started_nodes(&fake), vec!["n0", "fn0"]);
    assert!(!phases(&events, "fn0").contains(&node_execution::Phase::Recovered));
}
