//! Array nodes (map tasks): one task attempt per element of the mapped inputs, bounded by the
//! node's parallelism, finished once enough elements succeeded (`min_successes` /
//! `min_success_ratio`) or too many failed to get there.

use std::time::SystemTime;

use alula_idl::flyteidl::core::{
    array_node, execution_error::ErrorKind, node, task_execution, ArrayNode, Literal, LiteralMap,
    Node, TaskLog,
};

use super::NodeKind;
use crate::execution::{engine_error, AttemptId, Execution, TaskOutcome};
use crate::literals;
use crate::state::{ArrayState, ElementState, KindState, NodePhase};

pub(crate) struct Array;

impl NodeKind for Array {
    fn start(&self, ex: &mut Execution, n: u32, spec: &Node, inputs: LiteralMap) {
        match &spec.target {
            Some(node::Target::ArrayNode(a)) => ex.start_array(n, a, inputs),
            _ => ex.kind_mismatch(n, spec),
        }
    }
}

impl Execution {
    /// Hands in the log links of a running attempt of an array element (a driver learns them
    /// from its plugin): the array node's task events carry them in the element's external
    /// resource, as flytepropeller reports map task elements. Call it when the attempt starts
    /// and again before reporting its end (links may change, a pod's name is known late).
    /// Returns whether `attempt` is an array element's (others carry links on their own
    /// task events).
    pub fn set_attempt_logs(&mut self, attempt: AttemptId, logs: Vec<TaskLog>) -> bool {
        let Some(&(n, Some(e))) = self.attempts.get(&attempt) else {
            return false;
        };
        let KindState::Array(arr) = &self.state.nodes[n as usize].kind else {
            return false;
        };
        let Some(el) = arr.elements.get(e as usize) else {
            return false;
        };
        if arr.elements.len() > crate::events::MAX_EXTERNAL_RESOURCES {
            // Its events carry no elements: nothing to keep links for.
            return true;
        }
        let retry = el.attempts.saturating_sub(1);
        self.events.element_logs(n, e, retry, logs);
        true
    }

    /// Reports the links handed in since the last report: one RUNNING task event per running
    /// array node whose elements got some. A driver calls it after starting attempts, so that
    /// elements' logs can be followed while they run (a terminal event carries them anyway).
    pub fn report_array_logs(&mut self, now: SystemTime) {
        self.events
            .array_logs_progress(&self.state, crate::execution::micros(now));
    }

    pub(crate) fn start_array(&mut self, n: u32, spec: &ArrayNode, inputs: LiteralMap) {
        let mapped: Vec<(&String, usize)> = inputs
            .literals
            .iter()
            .filter(|(name, _)| !spec.bound_inputs.contains(name))
            .map(|(name, lit)| {
                (
                    name,
                    literals::as_collection(lit).map_or(usize::MAX, <[Literal]>::len),
                )
            })
            .collect();
        let node_id = self.state.nodes[n as usize].id.clone();
        if let Some((name, _)) = mapped.iter().find(|(_, len)| *len == usize::MAX) {
            let err = engine_error(
                "InvalidArrayInput",
                ErrorKind::User,
                format!("array node {node_id:?}: input {name:?} is not a list and is not bound"),
            );
            return self.fail_node(n, err, NodePhase::Failed);
        }
        let size = mapped.first().map_or(0, |(_, len)| *len);
        if let Some((name, len)) = mapped.iter().find(|(_, len)| *len != size) {
            let err = engine_error(
                "InvalidArrayInput",
                ErrorKind::User,
                format!(
                    "array node {node_id:?}: input {name:?} has {len} elements but {:?} has {size}",
                    mapped[0].0
                ),
            );
            return self.fail_node(n, err, NodePhase::Failed);
        }
        let min_successes = match spec.success_criteria {
            Some(array_node::SuccessCriteria::MinSuccesses(m)) => m.min(size as u32),
            Some(array_node::SuccessCriteria::MinSuccessRatio(r)) => {
                ((f64::from(r) * size as f64).ceil() as u32).min(size as u32)
            }
            None => size as u32,
        };
        let parallelism = match spec.parallelism_option {
            Some(array_node::ParallelismOption::Parallelism(p)) => p,
            None => 0,
        };
        let element = ElementState {
            phase: NodePhase::NotYetStarted,
            attempts: 0,
            user_failures: 0,
            system_failures: 0,
            running: None,
        };
        self.state.nodes[n as usize].kind = KindState::Array(Box::new(ArrayState {
            elements: vec![element; size],
            next: 0,
            running: 0,
            succeeded: 0,
            failed: 0,
            parallelism,
            min_successes,
            first_error: None,
            outputs: Default::default(),
        }));
        if size == 0 {
            return self.finish_array(n);
        }
        self.launch_elements(n);
        self.events
            .array_task(&self.state, n, task_execution::Phase::Running, self.now_us);
    }

    /// Starts elements while the node's and the execution's parallelism allow.
    pub(crate) fn launch_elements(&mut self, n: u32) {
        loop {
            let KindState::Array(arr) = &self.state.nodes[n as usize].kind else {
                return;
            };
            if arr.next as usize >= arr.elements.len()
                || self.state.nodes[n as usize].phase.is_terminal()
            {
                return;
            }
            if (arr.parallelism != 0 && arr.running >= arr.parallelism) || !self.has_slot() {
                if !self.has_slot() && !self.waiting_arrays.contains(&n) {
                    self.waiting_arrays.push_back(n);
                }
                return;
            }
            let e = arr.next;
            let inputs = self.element_inputs(n, e as usize);
            if let KindState::Array(arr) = &mut self.state.nodes[n as usize].kind {
                arr.next += 1;
                arr.running += 1;
            }
            self.start_attempt(n, Some(e), inputs);
        }
    }

    pub(crate) fn element_inputs(&self, n: u32, e: usize) -> LiteralMap {
        let node = &self.state.nodes[n as usize];
        let bound: &[String] = match &self.spec(n).target {
            Some(alula_idl::flyteidl::core::node::Target::ArrayNode(a)) => &a.bound_inputs,
            _ => &[],
        };
        let mut out = LiteralMap::default();
        for (name, lit) in node.inputs.iter().flat_map(|m| m.literals.iter()) {
            let value = if bound.iter().any(|b| b == name) {
                lit.clone()
            } else {
                literals::as_collection(lit)
                    .and_then(|c| c.get(e))
                    .cloned()
                    .unwrap_or_else(literals::none)
            };
            out.literals.insert(name.clone(), value);
        }
        out
    }

    pub(crate) fn element_finished(&mut self, n: u32, e: u32, outcome: TaskOutcome) {
        if self.state.nodes[n as usize].phase.is_terminal() {
            return;
        }
        let retry = match outcome {
            TaskOutcome::Succeeded { outputs, .. } => {
                let size = self.array_size(n);
                self.update_element(n, e, |arr, el| {
                    el.phase = NodePhase::Succeeded;
                    arr.succeeded += 1;
                    for (name, value) in outputs.literals {
                        let column = arr
                            .outputs
                            .entry(name)
                            .or_insert_with(|| vec![literals::none(); size]);
                        column[e as usize] = value;
                    }
                });
                false
            }
            TaskOutcome::Failed(err) => self.element_failed(n, e, err, false),
            TaskOutcome::FailedPermanently(err) => self.element_failed(n, e, err, true),
            TaskOutcome::Dynamic(_) => {
                let err = engine_error(
                    "UnsupportedArrayNode",
                    ErrorKind::User,
                    "a dynamic task cannot be mapped".into(),
                );
                self.element_failed(n, e, err, false)
            }
        };
        if retry {
            let inputs = self.element_inputs(n, e as usize);
            return self.start_attempt(n, Some(e), inputs);
        }
        let KindState::Array(arr) = &self.state.nodes[n as usize].kind else {
            return;
        };
        let size = arr.elements.len() as u32;
        let done = arr.succeeded + arr.failed == size;
        let hopeless = arr.failed > size - arr.min_successes;
        if done || hopeless {
            self.finish_array(n);
        } else {
            self.launch_elements(n);
        }
    }

    /// Records a failed attempt; returns whether the element gets another one.
    fn element_failed(
        &mut self,
        n: u32,
        e: u32,
        err: alula_idl::flyteidl::core::ExecutionError,
        permanent: bool,
    ) -> bool {
        let (mut user, mut system) = match &self.state.nodes[n as usize].kind {
            KindState::Array(arr) => (
                arr.elements[e as usize].user_failures,
                arr.elements[e as usize].system_failures,
            ),
            _ => return false,
        };
        let retry = self.may_retry(n, &err, permanent, &mut user, &mut system);
        self.update_element(n, e, |arr, el| {
            el.user_failures = user;
            el.system_failures = system;
            if retry {
                arr.running += 1; // start_attempt runs again for the same slot
            } else {
                el.phase = NodePhase::Failed;
                arr.failed += 1;
                if arr.first_error.is_none() {
                    arr.first_error = Some(err);
                }
            }
        });
        retry
    }

    fn update_element(
        &mut self,
        n: u32,
        e: u32,
        f: impl FnOnce(&mut ArrayState, &mut ElementState),
    ) {
        if let KindState::Array(arr) = &mut self.state.nodes[n as usize].kind {
            arr.running = arr.running.saturating_sub(1);
            let mut el = std::mem::replace(&mut arr.elements[e as usize], placeholder());
            el.running = None;
            f(arr, &mut el);
            arr.elements[e as usize] = el;
        }
    }

    fn finish_array(&mut self, n: u32) {
        let node_id = self.state.nodes[n as usize].id.clone();
        let KindState::Array(arr) = &self.state.nodes[n as usize].kind else {
            return;
        };
        let (succeeded, failed, size, min) = (
            arr.succeeded,
            arr.failed,
            arr.elements.len(),
            arr.min_successes,
        );
        let running: Vec<u64> = arr.elements.iter().filter_map(|el| el.running).collect();
        let first_error = arr.first_error.clone();
        for a in running {
            self.cancel_attempt(a, "the array node finished");
        }
        let phase = if succeeded < min {
            task_execution::Phase::Failed
        } else {
            task_execution::Phase::Succeeded
        };
        self.events.array_task(&self.state, n, phase, self.now_us);
        if succeeded < min {
            let mut err = first_error.unwrap_or_default();
            err.message = format!(
                "array node {node_id:?}: {failed} of {size} elements failed and at least {min} had to succeed; first error: {}",
                err.message
            );
            return self.fail_node(n, err, NodePhase::Failed);
        }
        let output_names: Vec<String> = self
            .task_id_of_array(n)
            .and_then(|t| {
                t.interface
                    .as_ref()?
                    .outputs
                    .as_ref()
                    .map(|o| o.variables.keys().cloned().collect())
            })
            .unwrap_or_default();
        let KindState::Array(arr) = &mut self.state.nodes[n as usize].kind else {
            return;
        };
        // Columns not written by any element (every element failed or there were none) are
        // lists of None, as long as the input.
        let size = arr.elements.len();
        let mut outputs = LiteralMap::default();
        for name in output_names {
            let column = arr
                .outputs
                .remove(&name)
                .unwrap_or_else(|| vec![literals::none(); size]);
            outputs.literals.insert(name, literals::collection(column));
        }
        self.succeed_node(n, outputs);
    }

    fn array_size(&self, n: u32) -> usize {
        match &self.state.nodes[n as usize].kind {
            KindState::Array(arr) => arr.elements.len(),
            _ => 0,
        }
    }

    fn task_id_of_array(
        &self,
        n: u32,
    ) -> Option<std::sync::Arc<alula_idl::flyteidl::core::TaskTemplate>> {
        match &self.spec(n).target {
            Some(alula_idl::flyteidl::core::node::Target::ArrayNode(a)) => {
                match &a.node.as_ref()?.target {
                    Some(alula_idl::flyteidl::core::node::Target::TaskNode(t)) => {
                        match &t.reference {
                            Some(alula_idl::flyteidl::core::task_node::Reference::ReferenceId(
                                id,
                            )) => self.program.task(id).ok(),
                            None => None,
                        }
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

fn placeholder() -> ElementState {
    ElementState {
        phase: NodePhase::NotYetStarted,
        attempts: 0,
        user_failures: 0,
        system_failures: 0,
        running: None,
    }
}
