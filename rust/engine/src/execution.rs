//! The state machine of one workflow execution.
//!
//! It performs no I/O: the driver calls [`Execution::poll`] to get the [`Action`]s to carry out
//! (start or abort a task attempt, launch a child execution, wait for a signal or a time), and
//! reports back with [`Execution::task_finished`], [`Execution::child_finished`] and
//! [`Execution::signal`]. Local runs and propeller differ only in their drivers, so both get the
//! same semantics: readiness, bindings, branches, subworkflows, dynamic workflows, array nodes,
//! gates, retries with separate user and system budgets, timeouts and failure policies.
//!
//! This file holds the execution's state and its interface to drivers. Each node kind's state
//! machine is in `nodes/` (one file per kind, behind `nodes::NodeKind`), scopes (workflows,
//! subworkflows, branch cases, dynamic workflows) in `scope.rs`, and slots and deadlines in
//! `schedule.rs`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alula_idl::flyteidl::core::{
    execution_error::ErrorKind, node, CatalogCacheStatus, CompiledWorkflowClosure, DynamicJobSpec,
    ExecutionError, Identifier, Literal, LiteralMap, LiteralType, Node, TaskNodeOverrides,
    TaskTemplate, WorkflowExecutionIdentifier,
};

use crate::bindings::Outputs;
use crate::events::{Event, EventBuilder};
use crate::nodes;
use crate::program::{is_start_node, Program};
use crate::schedule::Deadline;
use crate::state::{ExecutionState, KindState, NodePhase, ScopeState, WorkflowPhase};
use crate::EngineError;

/// Identifies one task attempt within an execution.
pub type AttemptId = u64;

/// Settings of one execution.
#[derive(Debug, Clone)]
pub struct ExecutionSettings {
    pub execution_id: WorkflowExecutionIdentifier,
    /// Most task attempts in flight at once (0: no limit).
    pub max_parallelism: u32,
    /// Retries granted for system errors, on top of the task's retries for user errors.
    pub max_system_retries: u32,
    /// Build flyteidl events (local runs without observers skip them).
    pub record_events: bool,
    pub producer_id: String,
}

impl Default for ExecutionSettings {
    fn default() -> Self {
        ExecutionSettings {
            execution_id: WorkflowExecutionIdentifier::default(),
            max_parallelism: 0,
            max_system_retries: 3,
            record_events: false,
            producer_id: "alula".into(),
        }
    }
}

/// One attempt of a task for the driver to run.
#[derive(Debug, Clone)]
pub struct TaskAttempt {
    pub id: AttemptId,
    pub node_execution_id: String,
    pub retry_attempt: u32,
    /// The element index when the task runs as part of an array node.
    pub array_index: Option<u32>,
    pub task: Arc<TaskTemplate>,
    pub inputs: LiteralMap,
    pub overrides: Option<TaskNodeOverrides>,
}

/// How a task attempt ended.
#[derive(Debug, Clone)]
pub enum TaskOutcome {
    Succeeded {
        outputs: LiteralMap,
        cache_status: CatalogCacheStatus,
    },
    Failed(ExecutionError),
    /// A failure the task declared not worth retrying (flytekit's NON_RECOVERABLE user errors):
    /// counted like `Failed`, but the node fails without using its remaining retries.
    FailedPermanently(ExecutionError),
    /// A dynamic task returned the workflow to run in its place.
    Dynamic(DynamicJobSpec),
}

/// What a gate node waits for.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalKind {
    /// A yes/no approval; the gate's inputs pass through when approved.
    Approve,
    /// A typed value, which becomes the gate's output `output`.
    Value {
        r#type: Option<Box<LiteralType>>,
        output: String,
    },
}

/// Work for the driver.
#[derive(Debug, Clone)]
pub enum Action {
    StartTask(Box<TaskAttempt>),
    AbortTask {
        attempt: AttemptId,
        reason: String,
    },
    StartChild {
        node_execution_id: String,
        launch_plan: Identifier,
        inputs: LiteralMap,
    },
    AbortChild {
        node_execution_id: String,
    },
    WaitForSignal {
        node_execution_id: String,
        signal_id: String,
        kind: SignalKind,
    },
    /// Call `poll` again at this time (a sleep gate or a timeout is due).
    WakeAt(SystemTime),
}

pub(crate) fn micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

pub(crate) fn from_micros(us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us)
}

pub(crate) fn to_std(d: &alula_idl::wkt::Duration) -> Option<Duration> {
    let total = d.seconds as f64 + f64::from(d.nanos) / 1e9;
    (total > 0.0).then(|| Duration::from_secs_f64(total))
}

/// An error the engine itself raises (as opposed to one a task reported).
pub(crate) fn engine_error(code: &str, kind: ErrorKind, message: String) -> ExecutionError {
    ExecutionError {
        code: code.into(),
        message,
        kind: kind as i32,
        ..Default::default()
    }
}

/// A workflow execution in progress.
pub struct Execution {
    pub(crate) program: Program,
    pub(crate) state: ExecutionState,
    pub(crate) settings: ExecutionSettings,
    /// Attempt in flight → (node, array element).
    pub(crate) attempts: HashMap<AttemptId, (u32, Option<u32>)>,
    pub(crate) ready: VecDeque<u32>,
    /// Array nodes with elements left to start once slots free up.
    pub(crate) waiting_arrays: VecDeque<u32>,
    pub(crate) running: u32,
    pub(crate) deadlines: BinaryHeap<Reverse<(u64, Deadline)>>,
    /// When each attempt with a timeout must have finished (an outcome arriving later, say from
    /// a task that could not be interrupted, still counts as a timeout).
    pub(crate) attempt_deadlines: HashMap<AttemptId, u64>,
    /// Task templates by node index, filled on first use (see `node_task`).
    pub(crate) node_tasks: Vec<Option<Arc<TaskTemplate>>>,
    pub(crate) actions: Vec<Action>,
    pub(crate) events: EventBuilder,
    pub(crate) now_us: u64,
    /// Outputs by node execution id of the nodes that succeeded in the execution this one
    /// recovers (see [`Execution::recover_from`]); each is taken when its node would start.
    pub(crate) recovery: HashMap<String, LiteralMap>,
}

pub(crate) struct ScopeOutputs<'a> {
    pub(crate) exec: &'a Execution,
    pub(crate) scope: &'a ScopeState,
}

impl Outputs for ScopeOutputs<'_> {
    fn output(&self, node_id: &str, var: &str) -> Option<&Literal> {
        if is_start_node(node_id) {
            return self.scope.inputs.literals.get(var);
        }
        let graph = &self.exec.program.graphs[self.scope.graph as usize];
        let &i = graph.index.get(node_id)?;
        let node = &self.exec.state.nodes[self.scope.first_node as usize + i];
        node.outputs.as_ref()?.literals.get(var)
    }
}

impl Execution {
    /// Prepares an execution of `closure` with complete inputs (defaults already applied).
    pub fn new(
        closure: &CompiledWorkflowClosure,
        inputs: LiteralMap,
        settings: ExecutionSettings,
    ) -> Result<Self, EngineError> {
        let program = Program::new(closure)?;
        let state = ExecutionState {
            execution_id: settings.execution_id.clone(),
            phase: WorkflowPhase::Queued,
            nodes: Vec::new(),
            scopes: Vec::new(),
            graph_sources: Vec::new(),
            next_attempt: 1,
            outputs: None,
            error: None,
        };
        let mut exec = Execution::with_state(program, state, settings);
        let primary = exec.program.primary;
        exec.start_scope(primary, None, String::new(), inputs);
        Ok(exec)
    }

    fn with_state(program: Program, state: ExecutionState, settings: ExecutionSettings) -> Self {
        let events = EventBuilder::new(&settings);
        Execution {
            program,
            state,
            settings,
            attempts: HashMap::new(),
            ready: VecDeque::new(),
            waiting_arrays: VecDeque::new(),
            running: 0,
            deadlines: BinaryHeap::new(),
            attempt_deadlines: HashMap::new(),
            node_tasks: Vec::new(),
            actions: Vec::new(),
            events,
            now_us: 0,
            recovery: HashMap::new(),
        }
    }

    /// Rebuilds an execution from persisted state. Attempts that were in flight are returned by
    /// [`Execution::running_attempts`] for the driver to re-attach to; their timeouts restart now.
    pub fn resume(
        closure: &CompiledWorkflowClosure,
        state: ExecutionState,
        settings: ExecutionSettings,
        now: SystemTime,
    ) -> Result<Self, EngineError> {
        let mut program = Program::new(closure)?;
        for source in &state.graph_sources {
            program.build(source)?;
        }
        // Events about the dynamic workflows were sent when they were made.
        program.take_dynamic_closure();
        let mut exec = Execution::with_state(program, state, settings);
        for (i, n) in exec.state.nodes.iter().enumerate() {
            if let Some(a) = n.running {
                exec.attempts.insert(a, (i as u32, None));
            }
            if let KindState::Array(arr) = &n.kind {
                for (e, el) in arr.elements.iter().enumerate() {
                    if let Some(a) = el.running {
                        exec.attempts.insert(a, (i as u32, Some(e as u32)));
                    }
                }
                if arr.next < arr.elements.len() as u32 && !n.phase.is_terminal() {
                    exec.waiting_arrays.push_back(i as u32);
                }
            }
            let scope_live = !exec.state.scopes[n.scope as usize].done;
            // A branch's case exists once chosen; chosen and not started yet, it is ready like
            // any other node (leaving it out left the branch running forever after a restart).
            let chosen_or_plain = n
                .branch_parent
                .is_none_or(|p| exec.state.nodes[p as usize].phase == NodePhase::Running);
            if scope_live
                && n.phase == NodePhase::NotYetStarted
                && n.pending == 0
                && chosen_or_plain
            {
                exec.ready.push_back(i as u32);
            }
        }
        exec.running = exec.attempts.len() as u32;
        exec.now_us = micros(now);
        exec.rearm_deadlines();
        exec.repeat_waits();
        Ok(exec)
    }

    /// Asks the driver again for what waiting nodes wait on (child executions, signals): a
    /// new driver knows nothing of them. Drivers must treat these requests idempotently.
    fn repeat_waits(&mut self) {
        for n in 0..self.state.nodes.len() as u32 {
            if self.state.nodes[n as usize].phase != NodePhase::Running {
                continue;
            }
            let spec = self.spec(n);
            if let Some(action) = nodes::kind_of(spec)
                .ok()
                .and_then(|kind| kind.repeat_wait(self, n, spec))
            {
                self.actions.push(action);
            }
        }
    }

    /// Deadlines live only in memory: a sleep gate wakes at the time it recorded; attempts in
    /// flight get their task timeout again from `now`.
    fn rearm_deadlines(&mut self) {
        for (i, n) in self.state.nodes.iter().enumerate() {
            if let (NodePhase::Running, KindState::Sleep { wake_at_us }) = (n.phase, &n.kind) {
                self.deadlines
                    .push(Reverse((*wake_at_us, Deadline::Node(i as u32))));
            }
        }
        let attempts: Vec<(AttemptId, u32)> =
            self.attempts.iter().map(|(&a, &(n, _))| (a, n)).collect();
        for (attempt, n) in attempts {
            let timeout = self
                .task_id(n)
                .and_then(|id| self.program.task(id).ok())
                .and_then(|t| t.metadata.as_ref()?.timeout.as_ref().and_then(to_std));
            if let Some(timeout) = timeout {
                self.add_deadline(timeout, Deadline::Attempt(attempt));
                self.attempt_deadlines
                    .insert(attempt, self.now_us + timeout.as_micros() as u64);
            }
        }
    }

    pub fn state(&self) -> &ExecutionState {
        &self.state
    }

    pub fn phase(&self) -> WorkflowPhase {
        self.state.phase
    }

    pub fn outputs(&self) -> Option<&LiteralMap> {
        self.state.outputs.as_ref()
    }

    pub fn error(&self) -> Option<&ExecutionError> {
        self.state.error.as_ref()
    }

    /// Attempts in flight, with the node execution each belongs to.
    pub fn running_attempts(&self) -> impl Iterator<Item = (AttemptId, &str, Option<u32>)> + '_ {
        self.attempts
            .iter()
            .map(|(&a, &(n, e))| (a, self.state.nodes[n as usize].id.as_str(), e))
    }

    /// The attempt in flight under `id`, rebuilt from the state: after [`Execution::resume`],
    /// the driver needs what each running attempt was started with to re-attach to it.
    pub fn running_attempt(&mut self, id: AttemptId) -> Option<TaskAttempt> {
        let &(n, element) = self.attempts.get(&id)?;
        let task = self.node_task(n).ok()?;
        let node = &self.state.nodes[n as usize];
        let (retry_attempt, inputs) = match (element, &node.kind) {
            (Some(e), KindState::Array(arr)) => (
                arr.elements.get(e as usize)?.attempts.saturating_sub(1),
                self.element_inputs(n, e as usize),
            ),
            _ => (
                node.attempts.saturating_sub(1),
                node.inputs.clone().unwrap_or_default(),
            ),
        };
        let overrides = match &self.spec(n).target {
            Some(node::Target::TaskNode(t)) => t.overrides.clone(),
            _ => None,
        };
        Some(TaskAttempt {
            id,
            node_execution_id: self.state.nodes[n as usize].id.clone(),
            retry_attempt,
            array_index: element,
            task,
            inputs,
            overrides,
        })
    }

    /// The resolved inputs of the node execution `node_execution_id` (an array node's are the
    /// whole lists its elements are taken from).
    pub fn node_execution_inputs(&self, node_execution_id: &str) -> Option<&LiteralMap> {
        let (n, _) = self
            .attempts
            .values()
            .find(|(n, _)| self.state.nodes[*n as usize].id == node_execution_id)?;
        self.state.nodes[*n as usize].inputs.as_ref()
    }

    /// Makes this execution a recovery (flyteadmin's RecoverExecution): a node whose execution
    /// id is in `succeeded` does not run when it becomes ready; it takes those outputs and ends
    /// RECOVERED, as flytepropeller does. Whole nodes are recovered (an array node without its
    /// elements, a subworkflow without its nodes); what did not succeed runs as usual. The
    /// driver gathers them from the original execution's records before the first `poll` (and
    /// again after a resume: they are not part of the saved state).
    pub fn recover_from(&mut self, succeeded: HashMap<String, LiteralMap>) {
        self.recovery = succeeded;
    }

    /// Whether `poll` would do something right away: queued actions, or ready nodes and waiting
    /// array elements that may start now. Work held back by `max_parallelism` is not pending:
    /// only a finished attempt frees a slot, so a driver that polled again would spin.
    pub fn has_pending_work(&self) -> bool {
        if !self.actions.is_empty() {
            return true;
        }
        if self.state.phase.is_terminal() {
            return false;
        }
        if self.has_slot() {
            return !self.ready.is_empty() || !self.waiting_arrays.is_empty();
        }
        self.ready.front().is_some_and(|&n| !self.needs_slot(n))
    }

    /// Events recorded since the last call (empty unless `record_events`).
    pub fn take_events(&mut self) -> Vec<Event> {
        self.events.take()
    }

    /// Advances the execution to `now` and returns the work to do.
    pub fn poll(&mut self, now: SystemTime) -> Vec<Action> {
        self.now_us = micros(now);
        if self.state.phase == WorkflowPhase::Queued {
            self.set_workflow_phase(WorkflowPhase::Running);
        }
        self.fire_deadlines();
        self.schedule();
        let mut actions = std::mem::take(&mut self.actions);
        // A wait asked for before its node stopped waiting is no longer wanted: a resumed
        // execution repeats its waits, and the signal or the child's end may come before the
        // driver polls.
        actions.retain(|action| match action {
            Action::WaitForSignal {
                node_execution_id, ..
            } => self
                .find_waiting(node_execution_id, |k| matches!(k, KindState::Signal))
                .is_ok(),
            Action::StartChild {
                node_execution_id, ..
            } => self
                .find_waiting(node_execution_id, |k| matches!(k, KindState::Child))
                .is_ok(),
            _ => true,
        });
        actions
    }

    /// Reports how a task attempt ended.
    pub fn task_finished(
        &mut self,
        attempt: AttemptId,
        outcome: TaskOutcome,
        now: SystemTime,
    ) -> Result<(), EngineError> {
        self.now_us = micros(now);
        let (n, element) = self
            .attempts
            .remove(&attempt)
            .ok_or(EngineError::UnknownAttempt(attempt))?;
        self.running = self.running.saturating_sub(1);
        let outcome = match self.attempt_deadlines.remove(&attempt) {
            Some(deadline) if self.now_us > deadline => TaskOutcome::Failed(self.timeout_error(n)),
            _ => outcome,
        };
        match element {
            Some(e) => self.element_finished(n, e, outcome),
            None => {
                self.state.nodes[n as usize].running = None;
                self.node_attempt_finished(n, outcome);
            }
        }
        self.schedule();
        Ok(())
    }

    /// Stops everything in flight and ends the execution as ABORTED.
    pub fn abort(&mut self, reason: &str, now: SystemTime) -> Vec<Action> {
        self.now_us = micros(now);
        if !self.state.phase.is_terminal() {
            self.set_workflow_phase(WorkflowPhase::Aborting);
            self.abort_scope(0, reason);
            self.state.error = Some(engine_error("Aborted", ErrorKind::User, reason.to_string()));
            self.set_workflow_phase(WorkflowPhase::Aborted);
        }
        std::mem::take(&mut self.actions)
    }

    pub(crate) fn find_waiting(
        &self,
        id: &str,
        kind: impl Fn(&KindState) -> bool,
    ) -> Result<u32, EngineError> {
        self.state
            .nodes
            .iter()
            .position(|n| n.id == id && n.phase == NodePhase::Running && kind(&n.kind))
            .map(|i| i as u32)
            .ok_or_else(|| {
                EngineError::InvalidSignal(format!("no node execution {id:?} is waiting"))
            })
    }

    pub(crate) fn spec(&self, n: u32) -> &Node {
        let node = &self.state.nodes[n as usize];
        &self.program.graphs[node.graph as usize].nodes[node.index as usize]
    }
}
