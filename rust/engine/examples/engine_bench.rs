//! The engine's own overhead, without Python: a chain of N task nodes and a map over N
//! elements, with tasks that answer instantly. Prints µs per node and per element, and what
//! storing the map's state costs (propeller saves it after its transitions): its size and the
//! time to write and read it in the stored form (`state_codec`) against JSON (the form before).
//!
//! `cargo run --release -p alula-engine --example engine_bench -- 100000`

use std::time::{Instant, SystemTime};

use alula_engine::{state_codec, Action, Execution, ExecutionSettings, TaskOutcome};
use alula_idl::flyteidl::core::{
    binding_data, literal, node, primitive, scalar, task_node, ArrayNode, Binding, BindingData,
    CatalogCacheStatus, CompiledTask, CompiledWorkflow, CompiledWorkflowClosure, Identifier,
    Literal, LiteralCollection, LiteralMap, Node, OutputReference, Primitive, Scalar, TaskNode,
    TaskTemplate, TypedInterface, Variable, VariableMap, WorkflowTemplate,
};

fn int(v: i64) -> Literal {
    Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::Primitive(Primitive {
                value: Some(primitive::Value::Integer(v)),
            })),
        }))),
        ..Default::default()
    }
}

fn promise(node_id: &str, var: &str) -> Binding {
    Binding {
        var: "x".into(),
        binding: Some(BindingData {
            value: Some(binding_data::Value::Promise(OutputReference {
                node_id: node_id.into(),
                var: var.into(),
                ..Default::default()
            })),
            ..Default::default()
        }),
    }
}

fn task_node(id: &str, input: Binding) -> Node {
    Node {
        id: id.into(),
        inputs: vec![input],
        target: Some(node::Target::TaskNode(TaskNode {
            reference: Some(task_node::Reference::ReferenceId(Identifier {
                name: "t".into(),
                ..Default::default()
            })),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn closure(nodes: Vec<Node>, last: &str) -> CompiledWorkflowClosure {
    let mut out = promise(last, "o0");
    out.var = "o0".into();
    CompiledWorkflowClosure {
        primary: Some(CompiledWorkflow {
            template: Some(WorkflowTemplate {
                id: Some(Identifier {
                    name: "wf".into(),
                    ..Default::default()
                }),
                nodes,
                outputs: vec![out],
                ..Default::default()
            }),
            connections: None,
        }),
        tasks: vec![CompiledTask {
            template: Some(TaskTemplate {
                id: Some(Identifier {
                    name: "t".into(),
                    ..Default::default()
                }),
                interface: Some(TypedInterface {
                    outputs: Some(VariableMap {
                        variables: [("o0".to_string(), Variable::default())]
                            .into_iter()
                            .collect(),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }],
        ..Default::default()
    }
}

/// Runs to the end, answering each attempt with its input as output; returns the time it took
/// and the execution.
fn drive(
    closure: &CompiledWorkflowClosure,
    inputs: LiteralMap,
    parallelism: u32,
) -> (f64, Execution) {
    let settings = ExecutionSettings {
        max_parallelism: parallelism,
        ..Default::default()
    };
    let start = Instant::now();
    let mut exec = Execution::new(closure, inputs, settings).expect("valid");
    loop {
        let actions = exec.poll(SystemTime::now());
        if actions.is_empty() {
            break;
        }
        for action in actions {
            if let Action::StartTask(a) = action {
                let mut outputs = LiteralMap::default();
                outputs
                    .literals
                    .insert("o0".into(), a.inputs.literals["x"].clone());
                exec.task_finished(
                    a.id,
                    TaskOutcome::Succeeded {
                        outputs,
                        cache_status: CatalogCacheStatus::CacheDisabled,
                    },
                    SystemTime::now(),
                )
                .expect("known");
            }
        }
    }
    assert!(
        exec.outputs().is_some(),
        "the run failed: {:?}",
        exec.error()
    );
    (start.elapsed().as_secs_f64(), exec)
}

/// The best of five runs of `f`, in milliseconds.
fn best_ms(mut f: impl FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

/// Size and write/read times of `exec`'s state, stored form against JSON.
fn state_costs(exec: &Execution, what: &str) {
    let state = exec.state();
    let json = serde_json::to_vec(state).expect("JSON");
    let binary = state_codec::encode(state).expect("encode");
    let json_write = best_ms(|| drop(serde_json::to_vec(state).expect("JSON")));
    let binary_write = best_ms(|| drop(state_codec::encode(state).expect("encode")));
    let json_read = best_ms(|| drop(state_codec::decode(&json).expect("JSON state")));
    let binary_read = best_ms(|| drop(state_codec::decode(&binary).expect("decode")));
    println!(
        "{what} state: {:.2} MB stored vs {:.2} MB JSON ({:.1}x smaller)",
        binary.len() as f64 / 1e6,
        json.len() as f64 / 1e6,
        json.len() as f64 / binary.len() as f64
    );
    println!(
        "  write {binary_write:.1} ms vs {json_write:.1} ms JSON ({:.1}x); read {binary_read:.1} ms vs {json_read:.1} ms JSON ({:.1}x)",
        json_write / binary_write,
        json_read / binary_read
    );
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let mut nodes = vec![task_node("n0", promise("start-node", "x"))];
    for i in 1..n {
        nodes.push(task_node(
            &format!("n{i}"),
            promise(&format!("n{}", i - 1), "o0"),
        ));
    }
    let chain = closure(nodes, &format!("n{}", n - 1));
    let mut inputs = LiteralMap::default();
    inputs.literals.insert("x".into(), int(1));
    let (secs, _) = drive(&chain, inputs, 1);
    println!("chain of {n}: {:.2} µs per node", secs * 1e6 / n as f64);

    let array = Node {
        id: "n0".into(),
        inputs: vec![promise("start-node", "xs")],
        target: Some(node::Target::ArrayNode(Box::new(ArrayNode {
            node: Some(Box::new(task_node("n0", promise("start-node", "xs")))),
            ..Default::default()
        }))),
        ..Default::default()
    };
    let mut xs = LiteralMap::default();
    xs.literals.insert(
        "xs".into(),
        Literal {
            value: Some(literal::Value::Collection(LiteralCollection {
                literals: (0..n as i64).map(int).collect(),
            })),
            ..Default::default()
        },
    );
    let map = closure(vec![array], "n0");
    let (secs, exec) = drive(&map, xs, 1);
    println!("map over {n}: {:.2} µs per element", secs * 1e6 / n as f64);
    state_costs(&exec, &format!("map over {n}"));
}
