//! Subworkflow nodes: the subworkflow's graph runs in a scope of its own under the node, whose
//! node executions are prefixed `<node>-0-`; the node ends with that scope.

use alula_idl::flyteidl::core::{execution_error::ErrorKind, workflow_node, LiteralMap, Node};

use super::NodeKind;
use crate::execution::{engine_error, Execution};
use crate::state::{KindState, NodePhase};

pub(crate) struct Subworkflow;

impl NodeKind for Subworkflow {
    fn start(&self, ex: &mut Execution, n: u32, spec: &Node, inputs: LiteralMap) {
        let Some(alula_idl::flyteidl::core::node::Target::WorkflowNode(w)) = &spec.target else {
            return;
        };
        let Some(workflow_node::Reference::SubWorkflowRef(id)) = &w.reference else {
            return;
        };
        match ex.program.subworkflow(id) {
            Ok(g) => {
                let prefix = format!("{}-0-", ex.state.nodes[n as usize].id);
                let child = ex.state.scopes.len() as u32;
                ex.state.nodes[n as usize].kind = KindState::Scope { scope: child };
                ex.start_scope(g, Some(n), prefix, inputs);
            }
            Err(e) => ex.fail_node(
                n,
                engine_error("SubWorkflowNotFound", ErrorKind::System, e.to_string()),
                NodePhase::Failed,
            ),
        }
    }
}
