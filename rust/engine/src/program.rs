//! What an execution runs: the compiled workflows and tasks, indexed for the state machine.
//!
//! Each workflow becomes a [`Graph`]: its nodes (without the `start-node`/`end-node`
//! sentinels), how many upstream nodes each waits for, and whom it unblocks. Graphs made while
//! running (a branch's chosen case, a dynamic task's workflow) are registered here too, and
//! the recipe of each is kept in the state ([`GraphSource`]) so a restarted engine rebuilds
//! exactly the same program.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use alula_idl::flyteidl::core::{
    binding_data, node, workflow_metadata::OnFailurePolicy, Binding, BindingData, CompiledWorkflow,
    CompiledWorkflowClosure, ConnectionSet, DynamicJobSpec, Identifier, Node, TaskTemplate,
    TypedInterface, WorkflowTemplate,
};
use serde::{Deserialize, Serialize};

use crate::EngineError;

pub const START_NODE: &str = "start-node";

/// Whether a binding's node id names the workflow's inputs: `start-node`, or empty as flytekit
/// writes it (the compiler fills it in; a dynamic workflow calling launch plans runs uncompiled).
pub fn is_start_node(node_id: &str) -> bool {
    node_id == START_NODE || node_id.is_empty()
}
pub const END_NODE: &str = "end-node";

/// A workflow's nodes and their dependencies, ready to schedule.
#[derive(Debug)]
pub struct Graph {
    pub id: Identifier,
    pub nodes: Vec<Node>,
    pub index: HashMap<String, usize>,
    /// Number of upstream nodes (excluding the start node) each node waits for.
    pub upstream_count: Vec<u32>,
    pub downstream: Vec<Vec<usize>>,
    /// Bindings of the workflow outputs (the end node's inputs).
    pub outputs: Vec<Binding>,
    pub interface: Option<TypedInterface>,
    pub fail_immediately: bool,
    /// The workflow's failure node, until the program registers it as a graph of its own.
    pub failure_spec: Option<Node>,
    /// The one-node graph of the failure node, run when the workflow fails.
    pub failure_graph: Option<usize>,
}

impl Graph {
    /// Builds a graph from a template, using the compiler's connections when given and
    /// otherwise deriving them from bindings and explicit `upstream_node_ids`.
    pub fn new(
        template: &WorkflowTemplate,
        connections: Option<&ConnectionSet>,
    ) -> Result<Self, EngineError> {
        let nodes: Vec<Node> = template
            .nodes
            .iter()
            .filter(|n| n.id != START_NODE && n.id != END_NODE)
            .cloned()
            .collect();
        let mut index = HashMap::with_capacity(nodes.len());
        for (i, n) in nodes.iter().enumerate() {
            if index.insert(n.id.clone(), i).is_some() {
                return Err(EngineError::InvalidWorkflow(format!(
                    "duplicate node id {:?}",
                    n.id
                )));
            }
        }
        let mut upstream_count = vec![0u32; nodes.len()];
        let mut downstream = vec![Vec::new(); nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            let ups: BTreeSet<String> = match connections.and_then(|c| c.upstream.get(&n.id)) {
                Some(list) => list.ids.iter().cloned().collect(),
                None => derived_upstream(n),
            };
            // An empty node id is the start node too (flytekit binds workflow inputs so, and
            // propeller reads it so): a workflow run uncompiled keeps it as it came.
            for up in ups.iter().filter(|u| !is_start_node(u)) {
                let &j = index.get(up).ok_or_else(|| {
                    EngineError::InvalidWorkflow(format!(
                        "node {:?} depends on unknown node {up:?}",
                        n.id
                    ))
                })?;
                upstream_count[i] += 1;
                downstream[j].push(i);
            }
        }
        let fail_immediately = template
            .metadata
            .as_ref()
            .is_none_or(|m| m.on_failure() != OnFailurePolicy::FailAfterExecutableNodesComplete);
        Ok(Graph {
            id: template.id.clone().unwrap_or_default(),
            nodes,
            index,
            upstream_count,
            downstream,
            outputs: template.outputs.clone(),
            interface: template.interface.clone(),
            fail_immediately,
            failure_spec: template.failure_node.clone(),
            failure_graph: None,
        })
    }

    /// A one-node graph, used to run a branch's chosen case inside its parent's scope.
    pub fn single(node: Node) -> Self {
        let mut index = HashMap::new();
        index.insert(node.id.clone(), 0);
        Graph {
            id: Identifier::default(),
            nodes: vec![node],
            index,
            upstream_count: vec![0],
            downstream: vec![Vec::new()],
            outputs: Vec::new(),
            interface: None,
            fail_immediately: true,
            failure_spec: None,
            failure_graph: None,
        }
    }
}

/// Upstream nodes named by promises in a node's bindings plus its explicit ordering edges.
fn derived_upstream(n: &Node) -> BTreeSet<String> {
    fn walk(b: &BindingData, out: &mut BTreeSet<String>) {
        match &b.value {
            Some(binding_data::Value::Promise(p)) => {
                out.insert(p.node_id.clone());
            }
            Some(binding_data::Value::Collection(c)) => {
                c.bindings.iter().for_each(|b| walk(b, out))
            }
            Some(binding_data::Value::Map(m)) => m.bindings.values().for_each(|b| walk(b, out)),
            _ => {}
        }
    }
    let mut out: BTreeSet<String> = n.upstream_node_ids.iter().cloned().collect();
    for b in &n.inputs {
        if let Some(data) = &b.binding {
            walk(data, &mut out);
        }
    }
    // Branch cases bind to the branch's own upstreams; they are part of the branch node.
    if let Some(node::Target::BranchNode(branch)) = &n.target {
        if let Some(ie) = &branch.if_else {
            let cases = ie
                .case
                .iter()
                .map(|c| c.then_node.as_deref())
                .chain(ie.other.iter().map(|c| c.then_node.as_deref()));
            for then in cases.flatten() {
                out.extend(derived_upstream(then));
            }
        }
    }
    out
}

/// How a graph made at run time was made, so that it can be remade after a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum GraphSource {
    /// The case `case` (0 = if, 1.. = elifs, usize::MAX = else) of branch node `node_id` in graph `graph`.
    BranchCase {
        graph: usize,
        node_id: String,
        case: usize,
    },
    /// The workflow a dynamic task returned, with the parent task's interface.
    Dynamic {
        #[serde(with = "crate::state_codec::proto")]
        spec: DynamicJobSpec,
        #[serde(with = "crate::state_codec::proto_option")]
        interface: Option<TypedInterface>,
        node_id: String,
    },
}

/// Every graph and task an execution can reach.
#[derive(Debug, Default)]
pub struct Program {
    pub graphs: Vec<Arc<Graph>>,
    /// The primary workflow's graph.
    pub primary: usize,
    graph_by_id: HashMap<String, usize>,
    tasks: HashMap<String, Arc<TaskTemplate>>,
    /// The closure the compiler made of the last dynamic workflow built, for the event that
    /// reports it (see [`Program::take_dynamic_closure`]).
    last_dynamic: Option<CompiledWorkflowClosure>,
}

/// Identifies a versioned entity regardless of its resource type.
pub fn id_key(id: &Identifier) -> String {
    format!(
        "{}/{}/{}/{}/{}",
        id.org, id.project, id.domain, id.name, id.version
    )
}

impl Program {
    pub fn new(closure: &CompiledWorkflowClosure) -> Result<Self, EngineError> {
        let mut program = Program::default();
        let primary = closure.primary.as_ref().ok_or_else(|| {
            EngineError::InvalidWorkflow("the closure has no primary workflow".into())
        })?;
        program.primary = program.add_compiled(primary)?;
        for sub in &closure.sub_workflows {
            program.add_compiled(sub)?;
        }
        for task in &closure.tasks {
            if let Some(t) = &task.template {
                program.add_task(t.clone());
            }
        }
        Ok(program)
    }

    fn add_compiled(&mut self, wf: &CompiledWorkflow) -> Result<usize, EngineError> {
        let template = wf.template.as_ref().ok_or_else(|| {
            EngineError::InvalidWorkflow("a compiled workflow has no template".into())
        })?;
        let graph = Graph::new(template, wf.connections.as_ref())?;
        Ok(self.add_graph(graph))
    }

    pub fn add_graph(&mut self, mut graph: Graph) -> usize {
        if let Some(failure) = graph.failure_spec.take() {
            graph.failure_graph = Some(self.graphs.len());
            self.graphs.push(Arc::new(Graph::single(failure)));
        }
        let i = self.graphs.len();
        if graph.id != Identifier::default() {
            self.graph_by_id.insert(id_key(&graph.id), i);
        }
        self.graphs.push(Arc::new(graph));
        i
    }

    pub fn add_task(&mut self, template: TaskTemplate) {
        if let Some(id) = &template.id {
            self.tasks.insert(id_key(id), Arc::new(template));
        }
    }

    pub fn task(&self, id: &Identifier) -> Result<Arc<TaskTemplate>, EngineError> {
        self.tasks.get(&id_key(id)).cloned().ok_or_else(|| {
            EngineError::InvalidWorkflow(format!("task {} is not in the closure", id_key(id)))
        })
    }

    pub fn subworkflow(&self, id: &Identifier) -> Result<usize, EngineError> {
        self.graph_by_id.get(&id_key(id)).copied().ok_or_else(|| {
            EngineError::InvalidWorkflow(format!(
                "subworkflow {} is not in the closure",
                id_key(id)
            ))
        })
    }

    /// Checks a dynamic task's workflow as propeller does, with the compiler: bindings, types,
    /// references, cycles. Launch plans it calls are known only to the driver, whose
    /// interfaces the compiler would need: such a workflow runs unchecked (`None`).
    fn compile_dynamic(
        &self,
        node_id: &str,
        template: &WorkflowTemplate,
        subworkflows: &[WorkflowTemplate],
    ) -> Result<Option<CompiledWorkflowClosure>, EngineError> {
        let required = alula_compiler::requirements(template, subworkflows);
        if !required.launch_plan_ids.is_empty() {
            return Ok(None);
        }
        // The tasks were validated when registered (or built by the SDK); only the workflow's
        // structure is checked here.
        let tasks = required
            .task_ids
            .iter()
            .map(|id| {
                self.task(id)
                    .map(|t| alula_idl::flyteidl::core::CompiledTask {
                        template: Some((*t).clone()),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        alula_compiler::compile_workflow(template, subworkflows, &tasks, &[])
            .map(Some)
            .map_err(|e| {
                EngineError::InvalidWorkflow(format!(
                    "the workflow of dynamic node {node_id:?} does not compile: {e}"
                ))
            })
    }

    /// The compiled closure of the dynamic workflow [`Program::build`] made last, if the
    /// compiler checked it (it could not when the workflow calls launch plans). Taken once: the
    /// event reporting the dynamic workflow carries it, nothing else keeps it.
    pub fn take_dynamic_closure(&mut self) -> Option<CompiledWorkflowClosure> {
        self.last_dynamic.take()
    }

    /// Registers a graph made at run time and returns its index.
    pub fn build(&mut self, source: &GraphSource) -> Result<usize, EngineError> {
        match source {
            GraphSource::BranchCase {
                graph,
                node_id,
                case,
            } => {
                let parent = self.graphs.get(*graph).cloned().ok_or_else(|| {
                    EngineError::InvalidWorkflow(format!("graph {graph} does not exist"))
                })?;
                let branch_node = parent
                    .index
                    .get(node_id)
                    .map(|&i| &parent.nodes[i])
                    .ok_or_else(|| EngineError::InvalidWorkflow(format!("no node {node_id:?}")))?;
                let then = crate::branch::case_node(branch_node, *case)?;
                Ok(self.add_graph(Graph::single(then)))
            }
            GraphSource::Dynamic {
                spec,
                interface,
                node_id,
            } => {
                for t in &spec.tasks {
                    self.add_task(t.clone());
                }
                let template = WorkflowTemplate {
                    id: Some(Identifier {
                        name: format!("{node_id}-dynamic"),
                        ..Default::default()
                    }),
                    interface: interface.clone(),
                    nodes: spec.nodes.clone(),
                    outputs: spec.outputs.clone(),
                    ..Default::default()
                };
                let graph = match self.compile_dynamic(node_id, &template, &spec.subworkflows)? {
                    Some(closure) => {
                        for sub in &closure.sub_workflows {
                            self.add_compiled(sub)?;
                        }
                        let primary = closure.primary.as_ref();
                        let compiled = primary
                            .and_then(|p| p.template.as_ref())
                            .unwrap_or(&template);
                        let graph =
                            Graph::new(compiled, primary.and_then(|p| p.connections.as_ref()))?;
                        self.last_dynamic = Some(closure);
                        graph
                    }
                    None => {
                        self.last_dynamic = None;
                        for sub in &spec.subworkflows {
                            let g = Graph::new(sub, None)?;
                            self.add_graph(g);
                        }
                        Graph::new(&template, None)?
                    }
                };
                let mut graph = graph;
                graph.id = Identifier::default();
                Ok(self.add_graph(graph))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound_to(node_id: &str) -> Node {
        Node {
            id: "n0".into(),
            inputs: vec![Binding {
                var: "x".into(),
                binding: Some(BindingData {
                    value: Some(binding_data::Value::Promise(
                        alula_idl::flyteidl::core::OutputReference {
                            node_id: node_id.into(),
                            var: "x".into(),
                            ..Default::default()
                        },
                    )),
                    ..Default::default()
                }),
            }],
            ..Default::default()
        }
    }

    /// flytekit binds workflow inputs with an empty node id; a workflow that runs without the
    /// compiler (a dynamic one calling launch plans) must read that as the start node.
    #[test]
    fn an_empty_node_id_is_the_start_node_in_an_uncompiled_graph() {
        for id in ["", START_NODE] {
            let template = WorkflowTemplate {
                nodes: vec![bound_to(id)],
                ..Default::default()
            };
            let graph = Graph::new(&template, None).expect("the graph builds");
            assert_eq!(graph.upstream_count, vec![0], "bound to {id:?}");
        }
        let template = WorkflowTemplate {
            nodes: vec![bound_to("elsewhere")],
            ..Default::default()
        };
        assert!(Graph::new(&template, None).is_err());
    }
}
