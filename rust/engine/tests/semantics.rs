//! Behaviour of every node kind, retries, timeouts, failure policies, gates and events.

mod support;

#[path = "semantics/flow.rs"]
mod flow;
#[path = "semantics/lifecycle.rs"]
mod lifecycle;
#[path = "semantics/node_kinds.rs"]
mod node_kinds;

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
