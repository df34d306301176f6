//! The graph drawn end to end: 1,000 nodes (each exactly once, with its phase, laid out without
//! overlaps, timed), and the section, nested route and elements route against a real admin API
//! over in-memory SQLite (the execution page's fixture).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::collections::HashMap;

use alula_idl::flyteidl::core::{
    node, node_execution, task_execution, workflow_node, ResourceType, TaskLog, WorkflowNode,
    WorkflowTemplate,
};
use alula_idl::flyteidl::event::{
    ExternalResourceInfo, ParentNodeExecutionMetadata, TaskExecutionMetadata,
};
use axum::http::StatusCode;

use super::model::{self, Graph};
use super::*;
use crate::fixture::{
    at, bind, exec_id, int_workflow, node_event, post_node_event, post_task_event, promise,
    task_event, v1, workflow_and_plan, Console,
};

const PHASES: [node_execution::Phase; 4] = [
    node_execution::Phase::Succeeded,
    node_execution::Phase::Running,
    node_execution::Phase::Failed,
    node_execution::Phase::Queued,
];

/// A 1,000-node workflow graph (fan-outs, chains, diamonds) whose nodes ran in turn through
/// four phases.
fn big_graph(n: usize) -> Graph {
    let edges = layout::tests::workflow_dag(n);
    let mut template = WorkflowTemplate::default();
    let mut runs = Vec::new();
    for i in 0..n {
        let mut node = super::model::tests::task(&format!("n{i}"), "wf.step");
        node.upstream_node_ids = edges
            .iter()
            .filter(|(_, to)| *to == i)
            .map(|(from, _)| format!("n{from}"))
            .collect();
        template.nodes.push(node);
        runs.push(super::model::tests::run(
            &format!("n{i}"),
            &format!("n{i}"),
            PHASES[i % 4],
        ));
    }
    model::from_template(&template, None, &runs, None)
}

/// `data-node-id` → `data-phase` of every `<g class="node">` of a drawing.
fn drawn_nodes(svg: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in svg
        .split("<g class=\"node")
        .skip(1)
        .filter(|p| !p.starts_with("-link"))
    {
        let attr = |name: &str| {
            let start = part.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
            part[start..start + part[start..].find('"').unwrap()].to_string()
        };
        out.push((attr("data-node-id"), attr("data-phase")));
    }
    out
}

#[test]
fn a_thousand_nodes_are_drawn_once_each_with_their_phase() {
    let n = 1000;
    let started = std::time::Instant::now();
    let graph = big_graph(n);
    let built = started.elapsed();
    let id = exec_id("big");
    let svg = svg::render(
        &graph,
        &svg::Context {
            execution: &id,
            path: &[],
            selected: Some("n7"),
            svg_id: Some("graph"),
        },
    )
    .into_string();
    println!(
        "graph of {n} nodes: model {built:?}, layout + SVG {:?} total, {} KiB of SVG",
        started.elapsed(),
        svg.len() / 1024
    );
    assert!(svg.starts_with("<svg id=\"graph\""));
    let drawn = drawn_nodes(&svg);
    assert_eq!(drawn.len(), n + 2, "every node plus start and end");
    let by_id: HashMap<&str, &str> = drawn
        .iter()
        .map(|(i, p)| (i.as_str(), p.as_str()))
        .collect();
    assert_eq!(by_id.len(), n + 2, "no node drawn twice");
    for i in 0..n {
        assert_eq!(
            by_id[format!("n{i}").as_str()],
            PHASES[i % 4].as_str_name(),
            "n{i}"
        );
    }
    assert_eq!(by_id["start-node"], "SUCCEEDED");
    assert!(svg.contains(r#"<g class="node selected" data-node-id="n7""#));
    // Each node that ran links to its panel for the click handler and for no-JS readers.
    assert_eq!(svg.matches("data-node-link=").count(), n);
    assert!(svg.contains(
        r#"href="/console/projects/flytesnacks/domains/development/executions/big?node=n7""#
    ));
    assert_eq!(
        svg.matches("<path class=\"edge\"").count(),
        graph.edges.len()
    );
}

#[test]
fn node_ids_and_labels_are_escaped() {
    let mut graph = big_graph(3);
    graph.nodes[1].spec_id = "<script>alert(1)</script>".into();
    graph.nodes[1].label = "a\"b".into();
    let id = exec_id("x");
    let svg = svg::render(
        &graph,
        &svg::Context {
            execution: &id,
            path: &[],
            selected: None,
            svg_id: None,
        },
    )
    .into_string();
    assert!(!svg.contains("<script>"));
    assert!(svg.contains("&lt;script&gt;"));
}

#[tokio::test]
async fn the_section_draws_the_registered_workflow_with_node_phases() {
    use node_execution::Phase;
    let f = Console::with_chain(3).await;
    f.launch("chain", "e1").await;
    f.node_event("e1", "n0", Phase::Running, 1, None).await;
    f.node_event("e1", "n0", Phase::Succeeded, 5, None).await;
    f.node_event("e1", "n1", Phase::Running, 6, None).await;
    let execution = f.execution("e1").await;
    let nodes = fetch::node_executions(&f.api, &exec_id("e1"), "")
        .await
        .unwrap();
    let workflow = fetch::workflow_closure(&f.api, &execution).await.unwrap();
    let html = graph_section(&f.api, &execution, workflow.as_ref(), &nodes, Some("n1"))
        .await
        .unwrap()
        .into_string();
    let drawn: HashMap<String, String> = drawn_nodes(&html).into_iter().collect();
    let expected = [
        ("start-node", "SUCCEEDED"),
        ("n0", "SUCCEEDED"),
        ("n1", "RUNNING"),
        ("n2", "UNDEFINED"),
        ("end-node", "UNDEFINED"),
    ];
    assert_eq!(drawn_nodes(&html).len(), expected.len(), "each node once");
    for (id, phase) in expected {
        assert_eq!(drawn[id], phase, "{id}");
    }
    // The compiled connections: start → n0 → n1 → n2 → end.
    assert_eq!(html.matches("<path class=\"edge\"").count(), 4);
    assert!(html.contains(r#"<g class="node selected" data-node-id="n1""#));
    // n2 has not run: no panel link, but it is still reachable by keyboard.
    assert_eq!(html.matches("data-node-link=").count(), 2);
    assert!(html.contains("data-zoom=\"in\""));

    // The page the browser gets carries the same drawing.
    let (status, page) = f
        .get("/console/projects/flytesnacks/domains/development/executions/e1")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"<svg id="graph""#), "{page}");

    // A task node has nothing nested.
    let (status, _) = f
        .get("/console/projects/flytesnacks/domains/development/executions/e1/graph?path=n0")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = f
        .get("/console/projects/flytesnacks/domains/development/executions/e1/graph?path=nope")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn elements_are_listed_a_hundred_a_page_and_filtered_by_phase() {
    use task_execution::Phase;
    let f = Console::with_chain(1).await;
    f.launch("chain", "m1").await;
    f.node_event("m1", "n0", node_execution::Phase::Running, 1, None)
        .await;
    let resources = (0..250u32)
        .map(|i| ExternalResourceInfo {
            external_id: format!("n0-{i}"),
            index: i,
            retry_attempt: u32::from(i % 10 == 0),
            phase: if i % 5 == 0 {
                Phase::Failed
            } else {
                Phase::Succeeded
            } as i32,
            logs: vec![TaskLog {
                uri: format!("https://logs.example/{i}"),
                name: "Pod".into(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    let task = v1(ResourceType::Task, "n0");
    let mut event = task_event(&task, "m1", "n0", 0, Phase::Running, at(2));
    event.metadata = Some(TaskExecutionMetadata {
        external_resources: resources,
        ..Default::default()
    });
    event.task_type = "k8s-array".into();
    post_task_event(f.admin(), event).await;
    let base = "/console/projects/flytesnacks/domains/development/executions/m1/nodes/n0/elements";
    let (status, page) = f.get(base).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(r#"data-elements="250""#));
    assert_eq!(page.matches("<tr data-element=").count(), 100);
    assert!(page.contains("Page 1 of 3 (250 elements)"));
    assert!(page.contains(r#"href="https://logs.example/0""#));

    let (_, failed) = f.get(&format!("{base}?phase=FAILED&page=1")).await;
    assert_eq!(failed.matches("<tr data-element=").count(), 50);
    assert_eq!(failed.matches(r#"data-phase="FAILED"><td>"#).count(), 50);
    assert_eq!(failed.matches(r#"data-phase="SUCCEEDED"><td>"#).count(), 0);
    let (_, last) = f.get(&format!("{base}?page=3")).await;
    assert_eq!(last.matches("<tr data-element=").count(), 50);
    assert!(last.contains("<tr data-element=\"249\""));
}

/// `outer(x)`: node `n0` runs subworkflow `inner(x)`, whose node `n0` runs task `t`.
async fn register_nested(f: &Console) {
    let mut inner_task = super::model::tests::task("n0", "t");
    if let Some(node::Target::TaskNode(t)) = &mut inner_task.target {
        t.reference = Some(
            alula_idl::flyteidl::core::task_node::Reference::ReferenceId(v1(
                ResourceType::Task,
                "t",
            )),
        );
    }
    inner_task.inputs = vec![bind("a", promise("start-node", "x"))];
    let inner = int_workflow("inner", vec![inner_task], promise("n0", "o0"));
    let outer_node = alula_idl::flyteidl::core::Node {
        id: "n0".into(),
        inputs: vec![bind("x", promise("start-node", "x"))],
        target: Some(node::Target::WorkflowNode(WorkflowNode {
            reference: Some(workflow_node::Reference::SubWorkflowRef(v1(
                ResourceType::Workflow,
                "inner",
            ))),
        })),
        ..Default::default()
    };
    let outer = int_workflow("outer", vec![outer_node], promise("n0", "out"));
    workflow_and_plan(f.admin(), outer, vec![inner]).await;
}

/// Node `node` (of spec node `spec`) of execution `exec` reaches `phase`: a child of `parent`
/// when given, else a parent node.
async fn nested_event(
    f: &Console,
    exec: &str,
    node: &str,
    spec: &str,
    parent: Option<&str>,
    phase: node_execution::Phase,
) {
    let mut event = node_event(exec, node, phase, at(10));
    event.spec_node_id = spec.into();
    event.parent_node_metadata = parent.map(|p| ParentNodeExecutionMetadata { node_id: p.into() });
    event.is_parent = parent.is_none();
    post_node_event(f.admin(), event).await;
}

#[tokio::test]
async fn a_subworkflow_expands_into_its_own_graph_with_child_phases() {
    use node_execution::Phase;
    let f = Console::with_chain(1).await;
    register_nested(&f).await;
    f.launch("outer", "s1").await;
    nested_event(&f, "s1", "n0", "n0", None, Phase::Running).await;
    nested_event(&f, "s1", "n0-0-n0", "n0", Some("n0"), Phase::Running).await;
    let execution = f.execution("s1").await;
    let nodes = fetch::node_executions(&f.api, &exec_id("s1"), "")
        .await
        .unwrap();
    assert_eq!(nodes.len(), 1, "the child is not a top-level node");
    let workflow = fetch::workflow_closure(&f.api, &execution).await.unwrap();
    let html = graph_section(&f.api, &execution, workflow.as_ref(), &nodes, None)
        .await
        .unwrap()
        .into_string();
    let expand = "/console/projects/flytesnacks/domains/development/executions/s1/graph?path=n0";
    assert!(
        html.contains(&format!(r#"data-expand="{expand}""#)),
        "{html}"
    );
    assert!(html.contains("subworkflow inner"));

    let (status, fragment) = f.get(&format!("{expand}&fragment=1")).await;
    assert_eq!(status, StatusCode::OK, "{fragment}");
    assert!(fragment.starts_with("<section class=\"graph-nested\" data-path=\"n0\""));
    let drawn: HashMap<String, String> = drawn_nodes(&fragment).into_iter().collect();
    assert_eq!(drawn["n0-0-n0"], "RUNNING", "{fragment}");
    assert_eq!(drawn.len(), 3, "start, the child, end");
    // Without JavaScript the same link opens a whole page.
    let (status, page) = f.get(expand).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<!DOCTYPE html>") && page.contains("data-node-id=\"n0-0-n0\""));
}
