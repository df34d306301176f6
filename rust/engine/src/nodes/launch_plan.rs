//! Launch-plan nodes: the driver starts a child execution of the launch plan (and aborts it
//! with the node); the node ends as the child does.

use std::time::SystemTime;

use alula_idl::flyteidl::core::{node, workflow_node, ExecutionError, LiteralMap, Node};

use super::NodeKind;
use crate::execution::{micros, Action, Execution};
use crate::state::{KindState, NodePhase};
use crate::EngineError;

pub(crate) struct LaunchPlan;

impl NodeKind for LaunchPlan {
    fn start(&self, ex: &mut Execution, n: u32, spec: &Node, inputs: LiteralMap) {
        ex.state.nodes[n as usize].kind = KindState::Child;
        match start_child(ex, n, spec, inputs) {
            Some(action) => ex.actions.push(action),
            None => ex.kind_mismatch(n, spec),
        }
    }

    fn repeat_wait(&self, ex: &Execution, n: u32, spec: &Node) -> Option<Action> {
        let node = &ex.state.nodes[n as usize];
        if !matches!(node.kind, KindState::Child) {
            return None;
        }
        start_child(ex, n, spec, node.inputs.clone().unwrap_or_default())
    }
}

/// The request for node `n`'s child execution.
fn start_child(ex: &Execution, n: u32, spec: &Node, inputs: LiteralMap) -> Option<Action> {
    let Some(node::Target::WorkflowNode(w)) = &spec.target else {
        return None;
    };
    let Some(workflow_node::Reference::LaunchplanRef(id)) = &w.reference else {
        return None;
    };
    Some(Action::StartChild {
        node_execution_id: ex.state.nodes[n as usize].id.clone(),
        launch_plan: id.clone(),
        inputs,
    })
}

impl Execution {
    /// Reports how a launch-plan node's child execution ended.
    pub fn child_finished(
        &mut self,
        node_execution_id: &str,
        result: Result<LiteralMap, Box<ExecutionError>>,
        now: SystemTime,
    ) -> Result<(), EngineError> {
        self.now_us = micros(now);
        let n = self.find_waiting(node_execution_id, |k| matches!(k, KindState::Child))?;
        match result {
            Ok(outputs) => self.succeed_node(n, outputs),
            Err(err) => self.fail_node(n, *err, NodePhase::Failed),
        }
        self.schedule();
        Ok(())
    }
}
