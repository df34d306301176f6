//! The graph as the console draws it, built from what the API answered: a workflow template
//! with its connections, the node executions of that level, and for a branch its cases.
//! Pure functions, so every shape is tested without a server.

use std::collections::{BTreeMap, HashMap};

use alula_idl::flyteidl::admin::{node_execution_closure, NodeExecution, TaskExecution};
use alula_idl::flyteidl::core::{
    gate_node, if_else_block, node, node_execution, task_node, workflow_node, BranchNode,
    ConnectionSet, Identifier, Node, WorkflowExecutionIdentifier, WorkflowTemplate,
};
use alula_idl::wkt::value::Kind as ValueKind;

use crate::format;

pub const START_NODE: &str = "start-node";
pub const END_NODE: &str = "end-node";

/// What a box stands for; decides its second line and what it links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Start,
    End,
    Task,
    Subworkflow,
    LaunchPlan,
    Branch,
    Gate,
    Map,
    Dynamic,
}

/// Elements of a map node by phase: what the node's box shows instead of one box per element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElementCounts {
    pub total: u64,
    /// Task phase proto names and how many elements are in each, most advanced first.
    pub by_phase: Vec<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GraphNode {
    /// `data-node-id`: the node execution's id when the node ran, else its id in the template.
    pub id: String,
    /// The node's id in its template (the box's first line).
    pub spec_id: String,
    /// What it runs: a task's short name, a subworkflow's, "branch", "approve"...
    pub label: String,
    pub kind: Kind,
    /// The node execution phase's proto name (`UNDEFINED` for a node that has not run).
    pub phase: &'static str,
    /// Whether a node execution exists, so its panel has something to show.
    pub ran: bool,
    /// Subworkflows, branches and dynamic nodes open a nested graph.
    pub expandable: bool,
    /// A launch plan node's child execution.
    pub child_execution: Option<WorkflowExecutionIdentifier>,
    pub elements: Option<ElementCounts>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    pub nodes: Vec<GraphNode>,
    /// `(from, to)` indexes into `nodes`.
    pub edges: Vec<(usize, usize)>,
}

/// The last segment of a dotted name: `workflows.example.say_hello` → `say_hello`.
pub fn short_name(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// The node id in its template of a node execution (top-level ones carry it as their id).
pub fn spec_id(execution: &NodeExecution) -> &str {
    match &execution.metadata {
        Some(m) if !m.spec_node_id.is_empty() => &m.spec_node_id,
        _ => execution
            .id
            .as_ref()
            .map(|id| id.node_id.as_str())
            .unwrap_or(""),
    }
}

pub fn node_execution_id(execution: &NodeExecution) -> &str {
    execution
        .id
        .as_ref()
        .map(|id| id.node_id.as_str())
        .unwrap_or("")
}

fn phase_of(execution: &NodeExecution) -> i32 {
    execution.closure.as_ref().map_or(0, |c| c.phase)
}

/// Node executions of one level by their id in the template; the latest attempt of the parent
/// (the highest retry group) wins when a parent ran more than once.
pub fn by_spec_id(executions: &[NodeExecution]) -> HashMap<&str, &NodeExecution> {
    let mut map: HashMap<&str, &NodeExecution> = HashMap::with_capacity(executions.len());
    let group = |e: &NodeExecution| -> u32 {
        e.metadata
            .as_ref()
            .and_then(|m| m.retry_group.parse().ok())
            .unwrap_or(0)
    };
    for e in executions {
        let key = spec_id(e);
        match map.get(key) {
            Some(seen) if group(seen) > group(e) => {}
            _ => {
                map.insert(key, e);
            }
        }
    }
    map
}

/// The nodes of a branch's cases, in order (the graph draws them; the node panel finds its
/// spec among them).
pub fn case_nodes(branch: &BranchNode) -> Vec<&Node> {
    let mut out = Vec::new();
    if let Some(block) = &branch.if_else {
        out.extend(block.case.as_ref().and_then(|c| c.then_node.as_deref()));
        out.extend(block.other.iter().filter_map(|o| o.then_node.as_deref()));
        if let Some(if_else_block::Default::ElseNode(n)) = &block.default {
            out.push(n);
        }
    }
    out
}

/// What a template node runs, as its box's second line, and its kind.
fn describe(n: &Node) -> (Kind, String) {
    let id_name = |id: Option<&Identifier>| id.map(|i| short_name(&i.name).to_string());
    match &n.target {
        Some(node::Target::TaskNode(t)) => (
            Kind::Task,
            match &t.reference {
                Some(task_node::Reference::ReferenceId(id)) => {
                    id_name(Some(id)).unwrap_or_default()
                }
                None => String::new(),
            },
        ),
        Some(node::Target::WorkflowNode(w)) => match &w.reference {
            Some(workflow_node::Reference::LaunchplanRef(id)) => (
                Kind::LaunchPlan,
                format!("launch plan {}", short_name(&id.name)),
            ),
            Some(workflow_node::Reference::SubWorkflowRef(id)) => (
                Kind::Subworkflow,
                format!("subworkflow {}", short_name(&id.name)),
            ),
            None => (Kind::Subworkflow, "subworkflow".into()),
        },
        Some(node::Target::BranchNode(_)) => (Kind::Branch, "branch".into()),
        Some(node::Target::GateNode(g)) => (
            Kind::Gate,
            match &g.condition {
                Some(gate_node::Condition::Approve(a)) => format!("approve {}", a.signal_id),
                Some(gate_node::Condition::Signal(s)) => format!("signal {}", s.signal_id),
                Some(gate_node::Condition::Sleep(_)) => "sleep".into(),
                None => "gate".into(),
            },
        ),
        Some(node::Target::ArrayNode(a)) => {
            let inner = a.node.as_deref().map(describe).map(|(_, l)| l);
            (
                Kind::Map,
                format!("map {}", inner.unwrap_or_default())
                    .trim()
                    .to_string(),
            )
        }
        None => (Kind::Task, String::new()),
    }
}

/// One box for a template node and its execution, if it ran.
fn graph_node(n: &Node, execution: Option<&NodeExecution>) -> GraphNode {
    let (mut kind, label) = describe(n);
    let meta = execution.and_then(|e| e.metadata.as_ref());
    let dynamic = meta.is_some_and(|m| m.is_dynamic)
        || execution
            .and_then(|e| e.closure.as_ref())
            .is_some_and(|c| !c.dynamic_job_spec_uri.is_empty());
    if kind == Kind::Task && dynamic {
        kind = Kind::Dynamic;
    }
    let child_execution =
        execution
            .and_then(|e| e.closure.as_ref())
            .and_then(|c| match &c.target_metadata {
                Some(node_execution_closure::TargetMetadata::WorkflowNodeMetadata(w)) => {
                    w.execution_id.clone()
                }
                _ => None,
            });
    GraphNode {
        id: execution
            .map(node_execution_id)
            .filter(|id| !id.is_empty())
            .unwrap_or(&n.id)
            .to_string(),
        spec_id: n.id.clone(),
        label,
        kind,
        phase: execution.map_or("UNDEFINED", |e| format::node_phase(phase_of(e))),
        ran: execution.is_some(),
        expandable: match kind {
            Kind::Branch | Kind::Subworkflow => true,
            Kind::Dynamic => execution.is_some(),
            _ => false,
        },
        child_execution,
        elements: (kind == Kind::Map).then(ElementCounts::default),
    }
}

fn terminal_box(id: &str, kind: Kind, phase: &'static str) -> GraphNode {
    GraphNode {
        id: id.to_string(),
        spec_id: id.to_string(),
        label: if kind == Kind::Start { "start" } else { "end" }.into(),
        kind,
        phase,
        ran: false,
        expandable: false,
        child_execution: None,
        elements: None,
    }
}

/// The graph of one workflow level: a start box, a box per template node, an end box, and the
/// edges of the compiled connections (or, for an uncompiled template, the nodes' upstream ids).
/// `executions` are the node executions of this level; `ended` says the level is over, so the
/// end box shows done.
pub fn from_template(
    template: &WorkflowTemplate,
    connections: Option<&ConnectionSet>,
    executions: &[NodeExecution],
    ended: Option<&'static str>,
) -> Graph {
    let runs = by_spec_id(executions);
    let mut nodes = Vec::with_capacity(template.nodes.len() + 2);
    let started = if runs.is_empty() {
        "UNDEFINED"
    } else {
        "SUCCEEDED"
    };
    nodes.push(terminal_box(START_NODE, Kind::Start, started));
    // Compiled templates list the start and end nodes too; they are drawn once, above.
    for n in template
        .nodes
        .iter()
        .filter(|n| n.id != START_NODE && n.id != END_NODE)
    {
        nodes.push(graph_node(n, runs.get(n.id.as_str()).copied()));
    }
    nodes.push(terminal_box(
        END_NODE,
        Kind::End,
        ended.unwrap_or(match runs.get(END_NODE) {
            Some(e) => format::node_phase(phase_of(e)),
            None => "UNDEFINED",
        }),
    ));
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.spec_id.as_str(), i))
        .collect();
    let mut edges = Vec::new();
    let downstream: BTreeMap<&str, Vec<&str>> = match connections {
        Some(c) if !c.downstream.is_empty() => c
            .downstream
            .iter()
            .map(|(from, to)| (from.as_str(), to.ids.iter().map(String::as_str).collect()))
            .collect(),
        _ => fallback_connections(template),
    };
    for (from, tos) in &downstream {
        let Some(&a) = index.get(from) else { continue };
        for to in tos {
            if let Some(&b) = index.get(to) {
                edges.push((a, b));
            }
        }
    }
    Graph { nodes, edges }
}

/// Edges from the nodes' `upstream_node_ids`; roots hang off the start, leaves lead to the end.
fn fallback_connections(template: &WorkflowTemplate) -> BTreeMap<&str, Vec<&str>> {
    let mut down: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for n in &template.nodes {
        let ups: Vec<&str> = n
            .upstream_node_ids
            .iter()
            .map(String::as_str)
            .filter(|u| *u != n.id)
            .collect();
        if ups.is_empty() {
            down.entry(START_NODE).or_default().push(&n.id);
        }
        for u in ups {
            down.entry(u).or_default().push(&n.id);
        }
    }
    for n in &template.nodes {
        if !down.contains_key(n.id.as_str()) {
            down.entry(&n.id).or_default().push(END_NODE);
        }
    }
    down
}

/// The cases of a branch node: the branch as the root, then a box per case (`if`, `elif`...,
/// `else`). The case that ran shows its execution's phase; the others are `SKIPPED` once the
/// branch chose (or ended), `UNDEFINED` before.
pub fn branch_cases(
    branch_id: &str,
    branch: &BranchNode,
    branch_phase: &'static str,
    children: &[NodeExecution],
) -> Graph {
    let runs = by_spec_id(children);
    let mut nodes = vec![GraphNode {
        label: "branch".into(),
        kind: Kind::Branch,
        phase: branch_phase,
        ran: true,
        ..terminal_box(branch_id, Kind::Branch, branch_phase)
    }];
    let decided = !runs.is_empty() || is_terminal(branch_phase);
    let mut add = |word: &str, n: &Node| {
        let run = runs.get(n.id.as_str()).copied();
        let mut b = graph_node(n, run);
        b.label = format!("{word}: {}", b.label)
            .trim_end_matches(": ")
            .to_string();
        if run.is_none() && decided {
            b.phase = "SKIPPED";
        }
        nodes.push(b);
    };
    if let Some(block) = &branch.if_else {
        if let Some(then) = block.case.as_ref().and_then(|c| c.then_node.as_deref()) {
            add("if", then);
        }
        for other in &block.other {
            if let Some(then) = other.then_node.as_deref() {
                add("elif", then);
            }
        }
        match &block.default {
            Some(if_else_block::Default::ElseNode(n)) => add("else", n),
            Some(if_else_block::Default::Error(e)) => {
                let mut b = terminal_box(&format!("{branch_id}-else"), Kind::End, "UNDEFINED");
                b.label = format!("else: fail ({})", e.message);
                b.spec_id = "else".into();
                if decided {
                    b.phase = if is_terminal(branch_phase) && runs.is_empty() {
                        // No case ran and the branch ended: the error case was taken.
                        branch_phase
                    } else {
                        "SKIPPED"
                    };
                }
                nodes.push(b);
            }
            None => {}
        }
    }
    let edges = (1..nodes.len()).map(|i| (0, i)).collect();
    Graph { nodes, edges }
}

fn is_terminal(phase: &str) -> bool {
    node_execution::Phase::from_str_name(phase)
        .is_some_and(|p| crate::format::node_phase_is_terminal(p as i32))
}

/// A map node's elements by phase, from its task execution (the latest attempt): the per-element
/// external resources, or for maps too big for those the aggregate the engine writes into
/// `custom_info`: `{"elements": {"total": n, "phases": {"SUCCEEDED": k, ...}}}`.
pub fn element_counts(attempts: &[TaskExecution]) -> ElementCounts {
    let Some(latest) = attempts
        .iter()
        .max_by_key(|t| t.id.as_ref().map_or(0, |i| i.retry_attempt))
    else {
        return ElementCounts::default();
    };
    let Some(closure) = &latest.closure else {
        return ElementCounts::default();
    };
    let mut by_phase: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0;
    if let Some(aggregate) = closure.custom_info.as_ref().and_then(aggregate_counts) {
        return aggregate;
    }
    for r in closure
        .metadata
        .iter()
        .flat_map(|m| m.external_resources.iter())
    {
        *by_phase
            .entry(format::task_phase(r.phase).to_string())
            .or_default() += 1;
        total += 1;
    }
    ElementCounts {
        total,
        by_phase: ordered(by_phase),
    }
}

fn aggregate_counts(info: &alula_idl::wkt::Struct) -> Option<ElementCounts> {
    let struct_of = |k: &ValueKind| match k {
        ValueKind::StructValue(s) => Some(s.clone()),
        _ => None,
    };
    let number = |k: &Option<ValueKind>| match k {
        Some(ValueKind::NumberValue(n)) if *n >= 0.0 => Some(*n as u64),
        _ => None,
    };
    let elements = struct_of(info.fields.get("elements")?.kind.as_ref()?)?;
    let total = number(&elements.fields.get("total")?.kind)?;
    let mut by_phase = BTreeMap::new();
    if let Some(phases) = elements
        .fields
        .get("phases")
        .and_then(|v| v.kind.as_ref())
        .and_then(struct_of)
    {
        for (name, v) in phases.fields {
            if let Some(n) = number(&v.kind).filter(|n| *n > 0) {
                by_phase.insert(name, n);
            }
        }
    }
    Some(ElementCounts {
        total,
        by_phase: ordered(by_phase),
    })
}

/// Phases in the order a bar reads well: done, failed, running, waiting, the rest.
fn ordered(counts: BTreeMap<String, u64>) -> Vec<(String, u64)> {
    const ORDER: [&str; 7] = [
        "SUCCEEDED",
        "FAILED",
        "ABORTED",
        "TIMED_OUT",
        "RUNNING",
        "INITIALIZING",
        "QUEUED",
    ];
    let rank = |p: &str| ORDER.iter().position(|o| *o == p).unwrap_or(ORDER.len());
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| rank(&a.0).cmp(&rank(&b.0)).then(a.0.cmp(&b.0)));
    v
}

#[cfg(test)]
#[path = "model_tests.rs"]
pub(crate) mod tests;
