//! The node kinds' state machines, one file each, behind [`NodeKind`]; and what all nodes
//! share: starting (inputs resolved, recovery, timeout), succeeding or failing, and passing a
//! terminal phase on to the branch or scope that holds the node.
//!
//! A kind decides what a started node does (run an attempt, open a scope, ask the driver for a
//! child execution or a signal) and what it still waits on after a restart; how it ends comes
//! back through [`Execution::succeed_node`] and [`Execution::fail_node`].

mod array;
mod branch;
mod dynamic;
mod gate;
mod launch_plan;
mod subworkflow;
mod task;

use std::sync::Arc;

use alula_idl::flyteidl::core::ExecutionError;
use alula_idl::flyteidl::core::{
    execution_error::ErrorKind, node, workflow_node, LiteralMap, Node,
};

use crate::bindings;
use crate::execution::{engine_error, to_std, Action, Execution, ScopeOutputs};
use crate::schedule::Deadline;
use crate::state::{KindState, NodePhase, NodeState};

/// One kind of node (task, subworkflow, launch plan, gate, branch, array). A node that fails
/// before its kind is known (no target) fails with an invalid-spec error.
pub(crate) trait NodeKind: Sync {
    /// Starts node `n`, already RUNNING with its inputs resolved.
    fn start(&self, ex: &mut Execution, n: u32, spec: &Node, inputs: LiteralMap);

    /// What the RUNNING node `n` waits on from the driver (a child execution, a signal), asked
    /// again after a restart: a new driver knows nothing of it.
    fn repeat_wait(&self, _ex: &Execution, _n: u32, _spec: &Node) -> Option<Action> {
        None
    }
}

/// The kind of `spec`, or what is wrong with it.
pub(crate) fn kind_of(spec: &Node) -> Result<&'static dyn NodeKind, &'static str> {
    match &spec.target {
        Some(node::Target::TaskNode(_)) => Ok(&task::Task),
        Some(node::Target::WorkflowNode(w)) => match &w.reference {
            Some(workflow_node::Reference::SubWorkflowRef(_)) => Ok(&subworkflow::Subworkflow),
            Some(workflow_node::Reference::LaunchplanRef(_)) => Ok(&launch_plan::LaunchPlan),
            None => Err("a workflow node without a reference"),
        },
        Some(node::Target::BranchNode(_)) => Ok(&branch::Branch),
        Some(node::Target::GateNode(_)) => Ok(&gate::Gate),
        Some(node::Target::ArrayNode(_)) => Ok(&array::Array),
        None => Err("a node without a target"),
    }
}

impl Execution {
    /// `kind_of` chose a kind whose target `spec` does not have: cannot happen, but a node
    /// left RUNNING would hang its execution, so it fails instead.
    pub(crate) fn kind_mismatch(&mut self, n: u32, spec: &Node) {
        let err = invalid_spec(&spec.id, "not of the kind it was started as");
        self.fail_node(n, err, NodePhase::Failed);
    }

    pub(crate) fn start_node(&mut self, n: u32) {
        let node = &self.state.nodes[n as usize];
        if node.phase != NodePhase::NotYetStarted {
            return;
        }
        let scope = node.scope;
        if node.blocked || self.state.scopes[scope as usize].done {
            self.state.nodes[n as usize].phase = NodePhase::Skipped;
            self.events.node(&self.program, &self.state, n, self.now_us);
            self.complete(n);
            return;
        }
        // Borrow the spec through its own Arc: cloning a Node per start costs more than the
        // rest of the transition.
        let graph = Arc::clone(&self.program.graphs[self.state.nodes[n as usize].graph as usize]);
        let spec = &graph.nodes[self.state.nodes[n as usize].index as usize];
        let inputs = {
            let s = &self.state.scopes[scope as usize];
            bindings::resolve(
                &spec.id,
                &spec.inputs,
                &ScopeOutputs {
                    exec: self,
                    scope: s,
                },
            )
        };
        let inputs = match inputs {
            Ok(mut i) if self.state.scopes[scope as usize].failure_node == Some(n) => {
                self.inject_error(&mut i, scope, spec);
                i
            }
            Ok(i) => i,
            Err(e) => {
                self.state.nodes[n as usize].phase = NodePhase::Running;
                let err = engine_error("BindingResolutionError", ErrorKind::System, e.to_string());
                return self.fail_node(n, err, NodePhase::Failed);
            }
        };
        // A task node's inputs go to its attempt; they are kept only for events (a retry or a
        // dynamic workflow resolves them again), which halves the memory of a long chain.
        let keep_inputs =
            self.settings.record_events || !matches!(spec.target, Some(node::Target::TaskNode(_)));
        let node = &mut self.state.nodes[n as usize];
        if keep_inputs {
            node.inputs = Some(inputs.clone());
        }
        let recovery = if self.recovers(n) {
            self.recovery.remove(&self.state.nodes[n as usize].id)
        } else {
            None
        };
        let node = &mut self.state.nodes[n as usize];
        if let Some(outputs) = recovery {
            // Straight to the terminal phase, as flytepropeller's recovery does: nothing runs,
            // so there is no QUEUED or RUNNING to report.
            node.recovered = true;
            return self.succeed_node(n, outputs);
        }
        node.phase = NodePhase::Running;
        self.events.node(&self.program, &self.state, n, self.now_us);
        if let Some(timeout) = spec
            .metadata
            .as_ref()
            .and_then(|m| m.timeout.as_ref())
            .and_then(to_std)
        {
            self.add_deadline(timeout, Deadline::Node(n));
        }
        match kind_of(spec) {
            Ok(kind) => kind.start(self, n, spec, inputs),
            Err(what) => self.fail_node(n, invalid_spec(&spec.id, what), NodePhase::Failed),
        }
    }

    /// A node's inputs: as kept, or resolved again from its bindings (whose upstream outputs
    /// are still there).
    pub(crate) fn node_inputs(&self, n: u32) -> LiteralMap {
        let node = &self.state.nodes[n as usize];
        if let Some(inputs) = &node.inputs {
            return inputs.clone();
        }
        let spec = self.spec(n);
        let scope = &self.state.scopes[node.scope as usize];
        bindings::resolve(&spec.id, &spec.inputs, &ScopeOutputs { exec: self, scope })
            .unwrap_or_default()
    }

    pub(crate) fn succeed_node(&mut self, n: u32, outputs: LiteralMap) {
        let node = &mut self.state.nodes[n as usize];
        if node.phase.is_terminal() {
            return;
        }
        node.outputs = Some(outputs);
        node.phase = NodePhase::Succeeded;
        self.events.node(&self.program, &self.state, n, self.now_us);
        self.complete(n);
    }

    pub(crate) fn fail_node(&mut self, n: u32, err: ExecutionError, phase: NodePhase) {
        let node = &mut self.state.nodes[n as usize];
        if node.phase.is_terminal() && node.phase != NodePhase::Aborted {
            return;
        }
        node.error = Some(err);
        node.phase = phase;
        self.events.node(&self.program, &self.state, n, self.now_us);
        self.complete(n);
    }

    /// Propagates a node's terminal phase: to its branch, or through its scope's graph.
    pub(crate) fn complete(&mut self, n: u32) {
        let node = &self.state.nodes[n as usize];
        if let Some(parent) = node.branch_parent {
            let (phase, outputs, error) = (node.phase, node.outputs.clone(), node.error.clone());
            return match phase {
                NodePhase::Succeeded => self.succeed_node(parent, outputs.unwrap_or_default()),
                NodePhase::Skipped | NodePhase::Aborted => {}
                _ => self.fail_node(parent, error.unwrap_or_default(), NodePhase::Failed),
            };
        }
        let scope = node.scope;
        let phase = node.phase;
        let s = &self.state.scopes[scope as usize];
        if s.done {
            return;
        }
        if s.failure_node == Some(n) {
            // Whatever the failure node did, the workflow stays failed with its first error.
            return self.finish_scope(scope);
        }
        let graph = Arc::clone(&self.program.graphs[s.graph as usize]);
        let first = s.first_node;
        let index = node.index as usize;
        self.state.scopes[scope as usize].remaining -= 1;
        let failed = !matches!(phase, NodePhase::Succeeded | NodePhase::Skipped);
        if failed {
            let err = node.error.clone();
            let s = &mut self.state.scopes[scope as usize];
            if s.error.is_none() {
                s.error = err.or_else(|| {
                    Some(engine_error(
                        "NodeFailed",
                        ErrorKind::System,
                        format!("node {:?} failed", self.state.nodes[n as usize].id),
                    ))
                });
            }
            if graph.fail_immediately {
                self.abort_scope_nodes(scope, "another node failed");
                return self.finish_scope(scope);
            }
        }
        for &d in &graph.downstream[index] {
            let dn = &mut self.state.nodes[first as usize + d];
            dn.pending -= 1;
            if phase != NodePhase::Succeeded {
                dn.blocked = true;
            }
            if dn.pending == 0 {
                self.ready.push_back(first + d as u32);
            }
        }
        if self.state.scopes[scope as usize].remaining == 0 {
            self.finish_scope(scope);
        }
    }
}

pub(crate) fn new_node(id: String, scope: u32, graph: u32, index: u32, pending: u32) -> NodeState {
    NodeState {
        id,
        scope,
        graph,
        index,
        branch_parent: None,
        phase: NodePhase::NotYetStarted,
        pending,
        blocked: false,
        inputs: None,
        outputs: None,
        error: None,
        attempts: 0,
        user_failures: 0,
        system_failures: 0,
        running: None,
        kind: KindState::None,
        recovered: false,
    }
}

pub(crate) fn invalid_spec(node_id: &str, what: &str) -> ExecutionError {
    engine_error(
        "InvalidNodeSpec",
        ErrorKind::System,
        format!("node {node_id:?} is {what}"),
    )
}
