//! Task nodes: one attempt at a time, retried within the task's budget for user errors and
//! the execution's for system errors; a dynamic task's attempt may return a workflow instead
//! of outputs (see `dynamic.rs`). Array elements start their attempts here too.

use std::sync::Arc;

use alula_idl::flyteidl::core::{
    execution_error::ErrorKind, node, task_node, ExecutionError, Identifier, LiteralMap, Node,
    TaskTemplate,
};

use super::{invalid_spec, NodeKind};
use crate::execution::{engine_error, to_std, Action, Execution, TaskAttempt, TaskOutcome};
use crate::schedule::Deadline;
use crate::state::{KindState, NodePhase};

pub(crate) struct Task;

impl NodeKind for Task {
    fn start(&self, ex: &mut Execution, n: u32, _spec: &Node, inputs: LiteralMap) {
        ex.start_attempt(n, None, inputs);
    }
}

impl Execution {
    pub(crate) fn task_id(&self, n: u32) -> Option<&Identifier> {
        match &self.spec(n).target {
            Some(node::Target::TaskNode(t)) => match &t.reference {
                Some(task_node::Reference::ReferenceId(id)) => Some(id),
                None => None,
            },
            Some(node::Target::ArrayNode(a)) => match &a.node.as_ref()?.target {
                Some(node::Target::TaskNode(t)) => match &t.reference {
                    Some(task_node::Reference::ReferenceId(id)) => Some(id),
                    None => None,
                },
                _ => None,
            },
            _ => None,
        }
    }

    /// Starts the next attempt of a task node or of one array element.
    pub(crate) fn start_attempt(&mut self, n: u32, element: Option<u32>, inputs: LiteralMap) {
        let task = match self.node_task(n) {
            Ok(t) => t,
            Err(err) => return self.fail_node(n, *err, NodePhase::Failed),
        };
        let attempt = self.state.next_attempt;
        self.state.next_attempt += 1;
        self.attempts.insert(attempt, (n, element));
        self.running += 1;
        let node = &mut self.state.nodes[n as usize];
        let retry_attempt = match (element, &mut node.kind) {
            (Some(e), KindState::Array(arr)) => {
                let el = &mut arr.elements[e as usize];
                el.running = Some(attempt);
                el.phase = NodePhase::Running;
                el.attempts += 1;
                el.attempts - 1
            }
            _ => {
                node.running = Some(attempt);
                node.attempts += 1;
                node.attempts - 1
            }
        };
        if let Some(timeout) = task
            .metadata
            .as_ref()
            .and_then(|m| m.timeout.as_ref())
            .and_then(to_std)
        {
            self.add_deadline(timeout, Deadline::Attempt(attempt));
            self.attempt_deadlines
                .insert(attempt, self.now_us + timeout.as_micros() as u64);
        }
        let overrides = match &self.spec(n).target {
            Some(node::Target::TaskNode(t)) => t.overrides.clone(),
            _ => None,
        };
        let node = &self.state.nodes[n as usize];
        if element.is_none() {
            self.events.task(
                node,
                &task,
                retry_attempt,
                crate::events::TaskPhase::Running,
                None,
                self.now_us,
            );
        }
        self.actions.push(Action::StartTask(Box::new(TaskAttempt {
            id: attempt,
            node_execution_id: node.id.clone(),
            retry_attempt,
            array_index: element,
            task,
            inputs,
            overrides,
        })));
    }

    /// The task a task node (or an array node's elements) runs, looked up once per node: an
    /// array node starts one attempt per element.
    pub(crate) fn node_task(&mut self, n: u32) -> Result<Arc<TaskTemplate>, Box<ExecutionError>> {
        if let Some(Some(task)) = self.node_tasks.get(n as usize) {
            return Ok(Arc::clone(task));
        }
        let Some(task_id) = self.task_id(n) else {
            let id = &self.state.nodes[n as usize].id;
            return Err(Box::new(invalid_spec(
                id,
                "a task node without a task reference",
            )));
        };
        let task = self.program.task(task_id).map_err(|e| {
            Box::new(engine_error(
                "TaskNotFound",
                ErrorKind::System,
                e.to_string(),
            ))
        })?;
        if self.node_tasks.len() <= n as usize {
            self.node_tasks.resize(n as usize + 1, None);
        }
        self.node_tasks[n as usize] = Some(Arc::clone(&task));
        Ok(task)
    }

    /// The retry budget for user errors: the node's override, else the task's.
    pub(crate) fn user_retries(&self, n: u32) -> u32 {
        let spec = self.spec(n);
        let from_node = spec
            .metadata
            .as_ref()
            .and_then(|m| m.retries.as_ref())
            .map(|r| r.retries);
        let sub_node = match &spec.target {
            Some(node::Target::ArrayNode(a)) => a
                .node
                .as_ref()
                .and_then(|s| s.metadata.as_ref()?.retries.as_ref())
                .map(|r| r.retries),
            _ => None,
        };
        let from_task = self
            .task_id(n)
            .and_then(|id| self.program.task(id).ok())
            .and_then(|t| t.metadata.as_ref()?.retries.as_ref().map(|r| r.retries));
        sub_node.or(from_node).or(from_task).unwrap_or(0)
    }

    /// Whether a failure of this kind may be retried, given the failures so far (counted here).
    pub(crate) fn may_retry(
        &self,
        n: u32,
        err: &ExecutionError,
        permanent: bool,
        user_failures: &mut u32,
        system_failures: &mut u32,
    ) -> bool {
        if permanent {
            *user_failures += 1;
            return false;
        }
        if err.kind() == ErrorKind::System {
            *system_failures += 1;
            *system_failures <= self.settings.max_system_retries
        } else {
            *user_failures += 1;
            *user_failures <= self.user_retries(n)
        }
    }

    /// How an attempt of task node `n` ended: success, a retry or the node's failure, or
    /// the workflow a dynamic task returned.
    pub(crate) fn node_attempt_finished(&mut self, n: u32, outcome: TaskOutcome) {
        if self.state.nodes[n as usize].phase.is_terminal() {
            return;
        }
        let task = self.task_id(n).and_then(|id| self.program.task(id).ok());
        let retry = self.state.nodes[n as usize].attempts.saturating_sub(1);
        let permanent = matches!(outcome, TaskOutcome::FailedPermanently(_));
        match outcome {
            TaskOutcome::Succeeded {
                outputs,
                cache_status,
            } => {
                if let Some(task) = &task {
                    self.events.task_succeeded(
                        &self.state,
                        n,
                        task,
                        retry,
                        &outputs,
                        cache_status,
                        self.now_us,
                    );
                }
                self.succeed_node(n, outputs)
            }
            TaskOutcome::Failed(err) | TaskOutcome::FailedPermanently(err) => {
                let node = &self.state.nodes[n as usize];
                let (mut user, mut system) = (node.user_failures, node.system_failures);
                let retry_ok = self.may_retry(n, &err, permanent, &mut user, &mut system);
                let node = &mut self.state.nodes[n as usize];
                node.user_failures = user;
                node.system_failures = system;
                if let Some(task) = &task {
                    let phase = if retry_ok {
                        crate::events::TaskPhase::RetryableFailed
                    } else {
                        crate::events::TaskPhase::Failed
                    };
                    self.events.task(
                        &self.state.nodes[n as usize],
                        task,
                        retry,
                        phase,
                        Some(&err),
                        self.now_us,
                    );
                }
                if retry_ok {
                    let inputs = self.node_inputs(n);
                    self.start_attempt(n, None, inputs);
                } else {
                    self.fail_node(n, err, NodePhase::Failed);
                }
            }
            TaskOutcome::Dynamic(spec) => self.dynamic_returned(n, spec, task, retry),
        }
    }
}
