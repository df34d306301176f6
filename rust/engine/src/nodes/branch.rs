//! Branch nodes: the first case whose condition holds runs as a one-node graph under the
//! branch (through the scheduler, so a case that runs a task waits for a slot); the branch
//! ends as its case does, or fails when no case holds and there is no else.

use alula_idl::flyteidl::core::{execution_error::ErrorKind, LiteralMap, Node};

use super::{new_node, NodeKind};
use crate::branch::{self, Decision};
use crate::execution::{engine_error, Execution};
use crate::program::GraphSource;
use crate::state::{KindState, NodePhase};

pub(crate) struct Branch;

impl NodeKind for Branch {
    fn start(&self, ex: &mut Execution, n: u32, spec: &Node, inputs: LiteralMap) {
        ex.start_branch(n, spec, &inputs);
    }
}

impl Execution {
    fn start_branch(&mut self, n: u32, spec: &Node, inputs: &LiteralMap) {
        match branch::decide(spec, inputs) {
            Ok(Decision::Case(case)) => {
                let node = &self.state.nodes[n as usize];
                let source = GraphSource::BranchCase {
                    graph: node.graph as usize,
                    node_id: spec.id.clone(),
                    case,
                };
                let g = match self.program.build(&source) {
                    Ok(g) => g,
                    Err(e) => {
                        return self.fail_node(
                            n,
                            engine_error("BranchError", ErrorKind::System, e.to_string()),
                            NodePhase::Failed,
                        )
                    }
                };
                self.state.graph_sources.push(source);
                let child = self.state.nodes.len() as u32;
                let then_id = &self.program.graphs[g].nodes[0].id;
                let prefix = &self.state.scopes[node.scope as usize].prefix;
                let mut state = new_node(format!("{prefix}{then_id}"), node.scope, g as u32, 0, 0);
                state.branch_parent = Some(n);
                self.state.nodes.push(state);
                self.state.nodes[n as usize].kind = KindState::Branch { child: Some(child) };
                // Next in line, but through the scheduler: a case that runs a task needs a slot
                // like any other (starting it here let branches exceed max_parallelism).
                self.ready.push_front(child);
            }
            Ok(Decision::Fail(message)) => self.fail_node(
                n,
                engine_error("UserError", ErrorKind::User, message),
                NodePhase::Failed,
            ),
            Err(e) => self.fail_node(
                n,
                engine_error("BranchError", ErrorKind::User, e.to_string()),
                NodePhase::Failed,
            ),
        }
    }
}
