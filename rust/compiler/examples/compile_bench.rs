//! Compile-time benchmark (not a test): `cargo run --release -p alula-compiler --example
//! compile_bench [nodes]` builds a chain and a wide fan-in workflow of `nodes` task nodes
//! (10,000 by default) and prints the best of several compile times.

use std::time::{Duration, Instant};

use alula_compiler::compile_workflow;
use alula_idl::flyteidl::core::{
    binding_data, literal_type::Type, node, task_node, task_template, Binding, BindingData,
    BindingDataCollection, CompiledTask, Container, Identifier, LiteralType, Node, OutputReference,
    ResourceType, SimpleType, TaskNode, TaskTemplate, TypedInterface, Variable, VariableMap,
    WorkflowTemplate,
};

fn id(kind: ResourceType, name: &str) -> Identifier {
    Identifier {
        resource_type: kind as i32,
        project: "bench".into(),
        domain: "development".into(),
        name: name.into(),
        version: "v1".into(),
        org: String::new(),
    }
}

fn int() -> LiteralType {
    LiteralType {
        r#type: Some(Type::Simple(SimpleType::Integer as i32)),
        ..Default::default()
    }
}

fn vars(vs: &[(&str, LiteralType)]) -> Option<VariableMap> {
    Some(VariableMap {
        variables: vs
            .iter()
            .map(|(n, t)| {
                (
                    n.to_string(),
                    Variable {
                        r#type: Some(t.clone()),
                        ..Default::default()
                    },
                )
            })
            .collect(),
    })
}

fn task(name: &str, input: LiteralType) -> CompiledTask {
    CompiledTask {
        template: Some(TaskTemplate {
            id: Some(id(ResourceType::Task, name)),
            interface: Some(TypedInterface {
                inputs: vars(&[("x", input)]),
                outputs: vars(&[("o", int())]),
            }),
            target: Some(task_template::Target::Container(Container {
                image: "img".into(),
                args: vec!["run".into()],
                ..Default::default()
            })),
            ..Default::default()
        }),
    }
}

fn promise(node_id: &str) -> BindingData {
    BindingData {
        value: Some(binding_data::Value::Promise(OutputReference {
            node_id: node_id.into(),
            var: if node_id == "start-node" { "x" } else { "o" }.into(),
            attr_path: vec![],
        })),
        ..Default::default()
    }
}

fn task_node(node_id: String, task_name: &str, x: BindingData) -> Node {
    Node {
        id: node_id,
        inputs: vec![Binding {
            var: "x".into(),
            binding: Some(x),
        }],
        target: Some(node::Target::TaskNode(TaskNode {
            reference: Some(task_node::Reference::ReferenceId(id(
                ResourceType::Task,
                task_name,
            ))),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn workflow(nodes: Vec<Node>, last: &str) -> WorkflowTemplate {
    WorkflowTemplate {
        id: Some(id(ResourceType::Workflow, "bench")),
        interface: Some(TypedInterface {
            inputs: vars(&[("x", int())]),
            outputs: vars(&[("o", int())]),
        }),
        nodes,
        outputs: vec![Binding {
            var: "o".into(),
            binding: Some(promise(last)),
        }],
        ..Default::default()
    }
}

/// n0 <- start, n(i) <- n(i-1).
fn chain(n: usize) -> WorkflowTemplate {
    let nodes = (0..n)
        .map(|i| {
            let up = if i == 0 {
                "start-node".to_string()
            } else {
                format!("n{}", i - 1)
            };
            task_node(format!("n{i}"), "inc", promise(&up))
        })
        .collect();
    workflow(nodes, &format!("n{}", n - 1))
}

/// n-1 nodes reading the workflow input, all gathered by one node taking a list.
fn fan_in(n: usize) -> WorkflowTemplate {
    let mut nodes: Vec<Node> = (0..n - 1)
        .map(|i| task_node(format!("n{i}"), "inc", promise("start-node")))
        .collect();
    let gathered = BindingData {
        value: Some(binding_data::Value::Collection(BindingDataCollection {
            bindings: (0..n - 1).map(|i| promise(&format!("n{i}"))).collect(),
        })),
        ..Default::default()
    };
    nodes.push(task_node("sum".into(), "sum", gathered));
    workflow(nodes, "sum")
}

fn best_of(runs: usize, wf: &WorkflowTemplate, tasks: &[CompiledTask]) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            let closure = compile_workflow(wf, &[], tasks, &[])
                .unwrap_or_else(|e| panic!("benchmark workflow must compile: {e}"));
            let took = start.elapsed();
            std::hint::black_box(closure);
            took
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let tasks = [
        task("inc", int()),
        task(
            "sum",
            LiteralType {
                r#type: Some(Type::CollectionType(Box::new(int()))),
                ..Default::default()
            },
        ),
    ];
    for (name, wf) in [("chain", chain(n)), ("fan-in", fan_in(n))] {
        let t = best_of(5, &wf, &tasks);
        println!(
            "{name:>7}: {n} nodes compiled in {:.1} ms (best of 5)",
            t.as_secs_f64() * 1e3
        );
    }
}
