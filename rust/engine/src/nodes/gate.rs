//! Gate nodes: a sleep ends at its time (kept in the state, so a restart keeps it); an
//! approval or a typed signal waits for the driver to deliver it (`Execution::signal`).

use std::time::SystemTime;

use alula_idl::flyteidl::core::{
    execution_error::ErrorKind, gate_node, node, GateNode, Literal, LiteralMap, Node,
};

use super::NodeKind;
use crate::execution::{engine_error, micros, to_std, Action, Execution, SignalKind};
use crate::schedule::Deadline;
use crate::state::{KindState, NodePhase};
use crate::EngineError;

pub(crate) struct Gate;

impl NodeKind for Gate {
    fn start(&self, ex: &mut Execution, n: u32, spec: &Node, _inputs: LiteralMap) {
        let Some(node::Target::GateNode(g)) = &spec.target else {
            return ex.kind_mismatch(n, spec);
        };
        if let Some(gate_node::Condition::Sleep(s)) = &g.condition {
            let d = s.duration.as_ref().and_then(to_std).unwrap_or_default();
            ex.state.nodes[n as usize].kind = KindState::Sleep {
                wake_at_us: ex.now_us + d.as_micros() as u64,
            };
            ex.add_deadline(d, Deadline::Node(n));
            return ex.fire_deadlines();
        }
        match wait_for_signal(ex, n, g) {
            Some(action) => {
                ex.state.nodes[n as usize].kind = KindState::Signal;
                ex.actions.push(action);
            }
            None => ex.fail_node(
                n,
                super::invalid_spec(&spec.id, "a gate without a condition"),
                NodePhase::Failed,
            ),
        }
    }

    fn repeat_wait(&self, ex: &Execution, n: u32, spec: &Node) -> Option<Action> {
        if !matches!(ex.state.nodes[n as usize].kind, KindState::Signal) {
            return None;
        }
        match &spec.target {
            Some(node::Target::GateNode(g)) => wait_for_signal(ex, n, g),
            _ => None,
        }
    }
}

/// What gate `g` (node `n`) asks the driver to wait for, if it waits for a signal.
fn wait_for_signal(ex: &Execution, n: u32, g: &GateNode) -> Option<Action> {
    let node_execution_id = ex.state.nodes[n as usize].id.clone();
    match &g.condition {
        Some(gate_node::Condition::Approve(a)) => Some(Action::WaitForSignal {
            node_execution_id,
            signal_id: a.signal_id.clone(),
            kind: SignalKind::Approve,
        }),
        Some(gate_node::Condition::Signal(s)) => Some(Action::WaitForSignal {
            node_execution_id,
            signal_id: s.signal_id.clone(),
            kind: SignalKind::Value {
                r#type: s.r#type.clone().map(Box::new),
                output: s.output_variable_name.clone(),
            },
        }),
        _ => None,
    }
}

impl Execution {
    /// Delivers a gate's signal: `true`/`false` for an approval, the value for a typed signal.
    pub fn signal(
        &mut self,
        node_execution_id: &str,
        value: Literal,
        now: SystemTime,
    ) -> Result<(), EngineError> {
        self.now_us = micros(now);
        let n = self.find_waiting(node_execution_id, |k| matches!(k, KindState::Signal))?;
        let spec = self.spec(n).clone();
        let inputs = self.state.nodes[n as usize]
            .inputs
            .clone()
            .unwrap_or_default();
        match &spec.target {
            Some(node::Target::GateNode(g)) => match &g.condition {
                Some(gate_node::Condition::Approve(_)) => {
                    match crate::literals::as_primitive(&value) {
                        Some(alula_idl::flyteidl::core::primitive::Value::Boolean(true)) => {
                            self.succeed_node(n, inputs)
                        }
                        Some(alula_idl::flyteidl::core::primitive::Value::Boolean(false)) => {
                            let err = engine_error(
                                "Rejected",
                                ErrorKind::User,
                                format!("node {:?} was rejected", spec.id),
                            );
                            self.fail_node(n, err, NodePhase::Failed)
                        }
                        _ => {
                            return Err(EngineError::InvalidSignal(format!(
                                "approval of {node_execution_id:?} must be a boolean"
                            )))
                        }
                    }
                }
                Some(gate_node::Condition::Signal(s)) => {
                    let mut outputs = LiteralMap::default();
                    outputs
                        .literals
                        .insert(s.output_variable_name.clone(), value);
                    self.succeed_node(n, outputs);
                }
                _ => {
                    return Err(EngineError::InvalidSignal(format!(
                        "{node_execution_id:?} does not wait for a signal"
                    )))
                }
            },
            _ => {
                return Err(EngineError::InvalidSignal(format!(
                    "{node_execution_id:?} is not a gate"
                )))
            }
        }
        self.schedule();
        Ok(())
    }
}
