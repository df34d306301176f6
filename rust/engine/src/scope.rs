//! Scopes: the workflow, a subworkflow, a branch case's graph or a dynamic workflow, each a set
//! of nodes that starts together, ends when its last node ends (or at the first failure under
//! FAIL_IMMEDIATELY), runs its failure node when it failed, and hands its outputs or error to
//! the node that opened it.

use std::sync::Arc;

use alula_idl::flyteidl::core::{
    execution_error::ErrorKind, literal_type, node, scalar, task_node, LiteralMap, LiteralType,
    Node, SimpleType, Union,
};

use crate::bindings;
use crate::execution::{engine_error, Action, AttemptId, Execution, ScopeOutputs};
use crate::nodes::new_node;
use crate::state::{KindState, NodePhase, ScopeState, WorkflowPhase};

impl Execution {
    pub(crate) fn start_scope(
        &mut self,
        graph_index: usize,
        parent: Option<u32>,
        prefix: String,
        inputs: LiteralMap,
    ) -> u32 {
        let graph = Arc::clone(&self.program.graphs[graph_index]);
        let scope = self.state.scopes.len() as u32;
        let first_node = self.state.nodes.len() as u32;
        self.state.scopes.push(ScopeState {
            graph: graph_index as u32,
            parent,
            prefix: prefix.clone(),
            inputs,
            first_node,
            remaining: graph.nodes.len() as u32,
            error: None,
            failure_node: None,
            done: false,
        });
        for (i, spec) in graph.nodes.iter().enumerate() {
            let n = self.state.nodes.len() as u32;
            self.state.nodes.push(new_node(
                format!("{prefix}{}", spec.id),
                scope,
                graph_index as u32,
                i as u32,
                graph.upstream_count[i],
            ));
            if graph.upstream_count[i] == 0 {
                self.ready.push_back(n);
            }
        }
        if graph.nodes.is_empty() {
            self.finish_scope(scope);
        }
        scope
    }

    pub(crate) fn finish_scope(&mut self, scope: u32) {
        let s = &self.state.scopes[scope as usize];
        if s.done {
            return;
        }
        // A failed workflow with a failure node runs it first; its end finishes the scope.
        if s.error.is_some() && s.failure_node.is_none() {
            if let Some(g) = self.program.graphs[s.graph as usize].failure_graph {
                return self.start_failure_node(scope, g);
            }
        }
        let result = match &s.error {
            Some(err) => Err(err.clone()),
            None => {
                let graph = Arc::clone(&self.program.graphs[s.graph as usize]);
                let outputs = ScopeOutputs {
                    exec: self,
                    scope: s,
                };
                bindings::resolve("end-node", &graph.outputs, &outputs)
                    .map_err(|e| engine_error("OutputsNotFound", ErrorKind::System, e.to_string()))
            }
        };
        let s = &mut self.state.scopes[scope as usize];
        s.done = true;
        match (s.parent, result) {
            (None, Ok(outputs)) => {
                self.state.outputs = Some(outputs);
                self.set_workflow_phase(WorkflowPhase::Succeeding);
                self.set_workflow_phase(WorkflowPhase::Succeeded);
            }
            (None, Err(err)) => {
                self.state.error = Some(err);
                self.set_workflow_phase(WorkflowPhase::Failing);
                self.set_workflow_phase(WorkflowPhase::Failed);
            }
            (Some(parent), Ok(outputs)) => self.succeed_node(parent, outputs),
            (Some(parent), Err(err)) => self.fail_node(parent, err, NodePhase::Failed),
        }
    }

    pub(crate) fn start_failure_node(&mut self, scope: u32, graph: usize) {
        let n = self.state.nodes.len() as u32;
        let id = &self.program.graphs[graph].nodes[0].id;
        let prefix = &self.state.scopes[scope as usize].prefix;
        self.state
            .nodes
            .push(new_node(format!("{prefix}{id}"), scope, graph as u32, 0, 0));
        self.state.scopes[scope as usize].failure_node = Some(n);
        self.ready.push_front(n);
    }

    pub(crate) fn abort_scope(&mut self, scope: u32, reason: &str) {
        let s = &self.state.scopes[scope as usize];
        if s.done {
            return;
        }
        let graph = Arc::clone(&self.program.graphs[s.graph as usize]);
        let first = s.first_node;
        for i in 0..graph.nodes.len() as u32 {
            self.abort_node(first + i, reason);
        }
        let s = &mut self.state.scopes[scope as usize];
        s.remaining = 0;
        s.done = true;
    }

    pub(crate) fn abort_node(&mut self, n: u32, reason: &str) {
        let phase = self.state.nodes[n as usize].phase;
        if phase.is_terminal() {
            return;
        }
        if phase == NodePhase::NotYetStarted {
            self.state.nodes[n as usize].phase = NodePhase::Skipped;
            return;
        }
        if let Some(a) = self.state.nodes[n as usize].running.take() {
            self.cancel_attempt(a, reason);
        }
        match self.state.nodes[n as usize].kind.clone() {
            KindState::Scope { scope } => self.abort_scope(scope, reason),
            KindState::Branch { child: Some(c) } => self.abort_node(c, reason),
            KindState::Child => self.actions.push(Action::AbortChild {
                node_execution_id: self.state.nodes[n as usize].id.clone(),
            }),
            KindState::Array(arr) => {
                for el in arr.elements.iter() {
                    if let Some(a) = el.running {
                        self.cancel_attempt(a, reason);
                    }
                }
                self.events.array_task(
                    &self.state,
                    n,
                    alula_idl::flyteidl::core::task_execution::Phase::Aborted,
                    self.now_us,
                );
            }
            _ => {}
        }
        self.state.nodes[n as usize].phase = NodePhase::Aborted;
        self.events.node(&self.program, &self.state, n, self.now_us);
    }

    pub(crate) fn cancel_attempt(&mut self, attempt: AttemptId, reason: &str) {
        if self.attempts.remove(&attempt).is_some() {
            self.running = self.running.saturating_sub(1);
            self.actions.push(Action::AbortTask {
                attempt,
                reason: reason.to_string(),
            });
        }
    }

    /// Gives a failure node's `err` input the workflow's error (a `core.Error` scalar, wrapped
    /// in the union its Optional type asks for), as propeller does.
    pub(crate) fn inject_error(&self, inputs: &mut LiteralMap, scope: u32, spec: &Node) {
        let Some(slot) = inputs.literals.get_mut("err") else {
            return;
        };
        let error = self.state.scopes[scope as usize]
            .error
            .clone()
            .unwrap_or_default();
        let failed_node_id = self
            .state
            .nodes
            .iter()
            .find(|n| n.scope == scope && n.error.as_ref() == Some(&error))
            .map(|n| n.id.clone())
            .unwrap_or_default();
        let value =
            crate::literals::scalar(scalar::Value::Error(alula_idl::flyteidl::core::Error {
                failed_node_id,
                message: error.message,
            }));
        let variant = self.failure_error_type(spec);
        *slot = match variant {
            Some(t) => crate::literals::scalar(scalar::Value::Union(Box::new(Union {
                value: Some(Box::new(value)),
                r#type: Some(t),
            }))),
            None => value,
        };
    }

    /// The non-None variant of a failure task's `err: Optional[...]` input, if it is a union.
    fn failure_error_type(&self, spec: &Node) -> Option<LiteralType> {
        let Some(node::Target::TaskNode(t)) = &spec.target else {
            return None;
        };
        let Some(task_node::Reference::ReferenceId(id)) = &t.reference else {
            return None;
        };
        let task = self.program.task(id).ok()?;
        let var = task
            .interface
            .as_ref()?
            .inputs
            .as_ref()?
            .variables
            .get("err")?;
        match &var.r#type.as_ref()?.r#type {
            Some(literal_type::Type::UnionType(u)) => u
                .variants
                .iter()
                .find(|v| !matches!(v.r#type, Some(literal_type::Type::Simple(s)) if s == SimpleType::None as i32))
                .cloned(),
            _ => None,
        }
    }

    /// Under FAIL_IMMEDIATELY: abort what runs, skip what has not started; the scope then ends.
    pub(crate) fn abort_scope_nodes(&mut self, scope: u32, reason: &str) {
        let s = &self.state.scopes[scope as usize];
        let graph = Arc::clone(&self.program.graphs[s.graph as usize]);
        let first = s.first_node;
        for i in 0..graph.nodes.len() as u32 {
            self.abort_node(first + i, reason);
        }
        self.state.scopes[scope as usize].remaining = 0;
    }

    pub(crate) fn set_workflow_phase(&mut self, phase: WorkflowPhase) {
        self.state.phase = phase;
        self.events.workflow(&self.state, self.now_us);
    }
}
