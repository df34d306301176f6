//! Scheduling and time: which ready nodes start now (a task or array node needs one of
//! `max_parallelism` slots), and the deadlines of sleeps and timeouts, kept in memory and
//! re-armed after a restart.

use std::cmp::Reverse;
use std::time::Duration;

use alula_idl::flyteidl::core::{
    execution_error::ErrorKind, node, ExecutionError, Identifier, LiteralMap,
};

use crate::execution::{engine_error, from_micros, Action, AttemptId, Execution, TaskOutcome};
use crate::state::{KindState, NodePhase};

/// Something due at a time: an attempt's timeout, or a node's (a timeout or a sleep's end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Deadline {
    Attempt(AttemptId),
    Node(u32),
}

impl Execution {
    pub(crate) fn has_slot(&self) -> bool {
        self.settings.max_parallelism == 0 || self.running < self.settings.max_parallelism
    }

    /// Task and array nodes run attempts, so they wait for a free slot; other kinds start at once.
    pub(crate) fn needs_slot(&self, n: u32) -> bool {
        matches!(
            self.spec(n).target,
            Some(node::Target::TaskNode(_)) | Some(node::Target::ArrayNode(_))
        ) && !self.recovers(n)
    }

    /// Whether node `n` will be recovered rather than run (it then needs no slot). A failure
    /// node never is: it reacts to this run's failure, whatever it did before.
    pub(crate) fn recovers(&self, n: u32) -> bool {
        if self.recovery.is_empty() {
            return false;
        }
        let node = &self.state.nodes[n as usize];
        self.state.scopes[node.scope as usize].failure_node != Some(n)
            && self.recovery.contains_key(&node.id)
    }

    pub(crate) fn schedule(&mut self) {
        if self.state.phase.is_terminal() {
            return;
        }
        loop {
            let mut progressed = false;
            while self.has_slot() {
                let Some(n) = self.waiting_arrays.pop_front() else {
                    break;
                };
                self.launch_elements(n);
                progressed = true;
            }
            while let Some(&n) = self.ready.front() {
                if !self.has_slot() && self.needs_slot(n) {
                    break;
                }
                self.ready.pop_front();
                self.start_node(n);
                progressed = true;
            }
            if !progressed || self.state.phase.is_terminal() {
                break;
            }
        }
    }

    pub(crate) fn fire_deadlines(&mut self) {
        while let Some(&Reverse((at, deadline))) = self.deadlines.peek() {
            if at > self.now_us {
                self.actions.push(Action::WakeAt(from_micros(at)));
                break;
            }
            self.deadlines.pop();
            match deadline {
                Deadline::Attempt(a) => {
                    if let Some(&(n, element)) = self.attempts.get(&a) {
                        self.cancel_attempt(a, "timeout");
                        self.attempt_deadlines.remove(&a);
                        let err = self.timeout_error(n);
                        match element {
                            Some(e) => self.element_finished(n, e, TaskOutcome::Failed(err)),
                            None => {
                                self.state.nodes[n as usize].running = None;
                                self.node_attempt_finished(n, TaskOutcome::Failed(err));
                            }
                        }
                    }
                }
                Deadline::Node(n) => {
                    let node = &self.state.nodes[n as usize];
                    if node.phase.is_terminal() || node.phase == NodePhase::NotYetStarted {
                        continue;
                    }
                    if let KindState::Sleep { .. } = node.kind {
                        let inputs = LiteralMap::default();
                        self.succeed_node(n, inputs);
                        continue;
                    }
                    let id = node.id.clone();
                    self.abort_node(n, "node timeout");
                    let err = engine_error(
                        "Timeout",
                        ErrorKind::User,
                        format!("node {id:?} exceeded its timeout"),
                    );
                    self.fail_node(n, err, NodePhase::TimedOut);
                }
            }
        }
    }

    pub(crate) fn timeout_error(&self, n: u32) -> ExecutionError {
        engine_error(
            "Timeout",
            ErrorKind::User,
            format!(
                "task attempt exceeded its timeout of {}",
                self.timeout_text(n)
            ),
        )
    }

    pub(crate) fn timeout_text(&self, n: u32) -> String {
        self.program
            .task(self.task_id(n).unwrap_or(&Identifier::default()))
            .ok()
            .and_then(|t| t.metadata.as_ref()?.timeout)
            .map(|d| d.to_json_string())
            .unwrap_or_else(|| "?".into())
    }

    pub(crate) fn add_deadline(&mut self, after: Duration, deadline: Deadline) {
        let at = self.now_us + after.as_micros() as u64;
        self.deadlines.push(Reverse((at, deadline)));
        self.actions.push(Action::WakeAt(from_micros(at)));
    }
}
