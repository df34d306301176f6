//! The state machine of one workflow execution.
//!
//! It performs no I/O: the driver calls [`Execution::poll`] to get the [`Action`]s to carry out
//! (start or abort a task attempt, launch a child execution, wait for a signal or a time), and
//! reports back with [`Execution::task_finished`], [`Execution::child_finished`] and
//! [`Execution::signal`]. Local runs and propeller differ only in their drivers, so both get the
//! same semantics: readiness, bindings, branches, subworkflows, dynamic workflows, array nodes,
//! gates, retries with separate user and system budgets, timeouts and failure policies.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alula_idl::flyteidl::core::{
    execution_error::ErrorKind, gate_node, literal_type, node, scalar, task_node, workflow_node,
    CatalogCacheStatus, CompiledWorkflowClosure, DynamicJobSpec, ExecutionError, Identifier,
    Literal, LiteralMap, LiteralType, Node, SimpleType, TaskNodeOverrides, TaskTemplate, Union,
    WorkflowExecutionIdentifier,
};

use crate::bindings::{self, Outputs};
use crate::branch::{self, Decision};
use crate::events::{Event, EventBuilder};
use crate::program::{GraphSource, Program, START_NODE};
use crate::state::{ExecutionState, KindState, NodePhase, NodeState, ScopeState, WorkflowPhase};
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Deadline {
    Attempt(AttemptId),
    Node(u32),
}

pub(crate) fn micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn from_micros(us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us)
}

fn to_std(d: &alula_idl::wkt::Duration) -> Option<Duration> {
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
    deadlines: BinaryHeap<Reverse<(u64, Deadline)>>,
    /// When each attempt with a timeout must have finished (an outcome arriving later, say from
    /// a task that could not be interrupted, still counts as a timeout).
    attempt_deadlines: HashMap<AttemptId, u64>,
    /// Task templates by node index, filled on first use (see `node_task`).
    node_tasks: Vec<Option<Arc<TaskTemplate>>>,
    pub(crate) actions: Vec<Action>,
    pub(crate) events: EventBuilder,
    pub(crate) now_us: u64,
    /// Outputs by node execution id of the nodes that succeeded in the execution this one
    /// recovers (see [`Execution::recover_from`]); each is taken when its node would start.
    recovery: HashMap<String, LiteralMap>,
}

struct ScopeOutputs<'a> {
    exec: &'a Execution,
    scope: &'a ScopeState,
}

impl Outputs for ScopeOutputs<'_> {
    fn output(&self, node_id: &str, var: &str) -> Option<&Literal> {
        if node_id == START_NODE {
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
            if scope_live
                && n.phase == NodePhase::NotYetStarted
                && n.pending == 0
                && n.branch_parent.is_none()
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
            let node = &self.state.nodes[n as usize];
            if node.phase != NodePhase::Running {
                continue;
            }
            let node_execution_id = node.id.clone();
            let inputs = node.inputs.clone().unwrap_or_default();
            let waiting_child = matches!(node.kind, KindState::Child);
            let waiting_signal = matches!(node.kind, KindState::Signal);
            let spec = self.spec(n);
            let action = match &spec.target {
                Some(node::Target::WorkflowNode(w)) if waiting_child => match &w.reference {
                    Some(workflow_node::Reference::LaunchplanRef(id)) => Action::StartChild {
                        node_execution_id,
                        launch_plan: id.clone(),
                        inputs,
                    },
                    _ => continue,
                },
                Some(node::Target::GateNode(g)) if waiting_signal => match &g.condition {
                    Some(gate_node::Condition::Approve(a)) => Action::WaitForSignal {
                        node_execution_id,
                        signal_id: a.signal_id.clone(),
                        kind: SignalKind::Approve,
                    },
                    Some(gate_node::Condition::Signal(s)) => Action::WaitForSignal {
                        node_execution_id,
                        signal_id: s.signal_id.clone(),
                        kind: SignalKind::Value {
                            r#type: s.r#type.clone().map(Box::new),
                            output: s.output_variable_name.clone(),
                        },
                    },
                    _ => continue,
                },
                _ => continue,
            };
            self.actions.push(action);
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
        std::mem::take(&mut self.actions)
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

    fn find_waiting(
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

    // ---- scopes ---------------------------------------------------------------------------

    fn start_scope(
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

    fn finish_scope(&mut self, scope: u32) {
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

    fn start_failure_node(&mut self, scope: u32, graph: usize) {
        let n = self.state.nodes.len() as u32;
        let id = &self.program.graphs[graph].nodes[0].id;
        let prefix = &self.state.scopes[scope as usize].prefix;
        self.state
            .nodes
            .push(new_node(format!("{prefix}{id}"), scope, graph as u32, 0, 0));
        self.state.scopes[scope as usize].failure_node = Some(n);
        self.ready.push_front(n);
    }

    fn abort_scope(&mut self, scope: u32, reason: &str) {
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

    // ---- scheduling -----------------------------------------------------------------------

    pub(crate) fn has_slot(&self) -> bool {
        self.settings.max_parallelism == 0 || self.running < self.settings.max_parallelism
    }

    /// Task and array nodes run attempts, so they wait for a free slot; other kinds start at once.
    fn needs_slot(&self, n: u32) -> bool {
        matches!(
            self.spec(n).target,
            Some(node::Target::TaskNode(_)) | Some(node::Target::ArrayNode(_))
        ) && !self.recovers(n)
    }

    /// Whether node `n` will be recovered rather than run (it then needs no slot). A failure
    /// node never is: it reacts to this run's failure, whatever it did before.
    fn recovers(&self, n: u32) -> bool {
        if self.recovery.is_empty() {
            return false;
        }
        let node = &self.state.nodes[n as usize];
        self.state.scopes[node.scope as usize].failure_node != Some(n)
            && self.recovery.contains_key(&node.id)
    }

    fn schedule(&mut self) {
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

    fn fire_deadlines(&mut self) {
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

    fn timeout_error(&self, n: u32) -> ExecutionError {
        engine_error(
            "Timeout",
            ErrorKind::User,
            format!(
                "task attempt exceeded its timeout of {}",
                self.timeout_text(n)
            ),
        )
    }

    fn timeout_text(&self, n: u32) -> String {
        self.program
            .task(self.task_id(n).unwrap_or(&Identifier::default()))
            .ok()
            .and_then(|t| t.metadata.as_ref()?.timeout)
            .map(|d| d.to_json_string())
            .unwrap_or_else(|| "?".into())
    }

    fn add_deadline(&mut self, after: Duration, deadline: Deadline) {
        let at = self.now_us + after.as_micros() as u64;
        self.deadlines.push(Reverse((at, deadline)));
        self.actions.push(Action::WakeAt(from_micros(at)));
    }

    // ---- nodes ----------------------------------------------------------------------------

    fn task_id(&self, n: u32) -> Option<&Identifier> {
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

    fn start_node(&mut self, n: u32) {
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
        let node_execution_id = self.state.nodes[n as usize].id.clone();
        match &spec.target {
            Some(node::Target::TaskNode(_)) => self.start_attempt(n, None, inputs),
            Some(node::Target::WorkflowNode(w)) => match &w.reference {
                Some(workflow_node::Reference::SubWorkflowRef(id)) => {
                    match self.program.subworkflow(id) {
                        Ok(g) => {
                            let prefix = format!("{node_execution_id}-0-");
                            let child = self.state.scopes.len() as u32;
                            self.state.nodes[n as usize].kind = KindState::Scope { scope: child };
                            self.start_scope(g, Some(n), prefix, inputs);
                        }
                        Err(e) => self.fail_node(
                            n,
                            engine_error("SubWorkflowNotFound", ErrorKind::System, e.to_string()),
                            NodePhase::Failed,
                        ),
                    }
                }
                Some(workflow_node::Reference::LaunchplanRef(id)) => {
                    self.state.nodes[n as usize].kind = KindState::Child;
                    self.actions.push(Action::StartChild {
                        node_execution_id,
                        launch_plan: id.clone(),
                        inputs,
                    });
                }
                None => self.fail_node(
                    n,
                    invalid_spec(&spec.id, "a workflow node without a reference"),
                    NodePhase::Failed,
                ),
            },
            Some(node::Target::BranchNode(_)) => self.start_branch(n, spec, &inputs),
            Some(node::Target::GateNode(g)) => match &g.condition {
                Some(gate_node::Condition::Sleep(s)) => {
                    let d = s.duration.as_ref().and_then(to_std).unwrap_or_default();
                    self.state.nodes[n as usize].kind = KindState::Sleep {
                        wake_at_us: self.now_us + d.as_micros() as u64,
                    };
                    self.add_deadline(d, Deadline::Node(n));
                    self.fire_deadlines();
                }
                Some(gate_node::Condition::Approve(a)) => {
                    self.state.nodes[n as usize].kind = KindState::Signal;
                    self.actions.push(Action::WaitForSignal {
                        node_execution_id,
                        signal_id: a.signal_id.clone(),
                        kind: SignalKind::Approve,
                    });
                }
                Some(gate_node::Condition::Signal(s)) => {
                    self.state.nodes[n as usize].kind = KindState::Signal;
                    self.actions.push(Action::WaitForSignal {
                        node_execution_id,
                        signal_id: s.signal_id.clone(),
                        kind: SignalKind::Value {
                            r#type: s.r#type.clone().map(Box::new),
                            output: s.output_variable_name.clone(),
                        },
                    });
                }
                None => self.fail_node(
                    n,
                    invalid_spec(&spec.id, "a gate without a condition"),
                    NodePhase::Failed,
                ),
            },
            Some(node::Target::ArrayNode(a)) => self.start_array(n, a, inputs),
            None => self.fail_node(
                n,
                invalid_spec(&spec.id, "a node without a target"),
                NodePhase::Failed,
            ),
        }
    }

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
    fn node_task(&mut self, n: u32) -> Result<Arc<TaskTemplate>, Box<ExecutionError>> {
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

    fn node_attempt_finished(&mut self, n: u32, outcome: TaskOutcome) {
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
            TaskOutcome::Dynamic(spec) if spec.nodes.is_empty() => {
                // Nothing to run (a fan-out over nothing): the outputs are the spec's
                // bindings, constants all, as flytekit resolves them.
                struct NoUpstream;
                impl bindings::Outputs for NoUpstream {
                    fn output(&self, _: &str, _: &str) -> Option<&Literal> {
                        None
                    }
                }
                let node_id = self.state.nodes[n as usize].id.clone();
                match bindings::resolve(&node_id, &spec.outputs, &NoUpstream) {
                    Ok(outputs) => {
                        if let Some(task) = &task {
                            self.events.task_succeeded(
                                &self.state,
                                n,
                                task,
                                retry,
                                &outputs,
                                CatalogCacheStatus::CacheDisabled,
                                self.now_us,
                            );
                        }
                        self.succeed_node(n, outputs)
                    }
                    Err(e) => self.fail_node(
                        n,
                        engine_error("DynamicWorkflowError", ErrorKind::User, e.to_string()),
                        NodePhase::Failed,
                    ),
                }
            }
            TaskOutcome::Dynamic(spec) => {
                let inputs = self.node_inputs(n);
                let node = &self.state.nodes[n as usize];
                let source = GraphSource::Dynamic {
                    spec,
                    interface: task.as_ref().and_then(|t| t.interface.clone()),
                    node_id: node.id.clone(),
                };
                match self.program.build(&source) {
                    Ok(g) => {
                        self.state.graph_sources.push(source);
                        let prefix = format!("{}-0-", node.id);
                        let scope = self.state.scopes.len() as u32;
                        let node = &mut self.state.nodes[n as usize];
                        node.kind = KindState::Scope { scope };
                        node.phase = NodePhase::DynamicRunning;
                        let compiled = self.program.take_dynamic_closure();
                        if let Some(task) = &task {
                            // The task's attempt is over: it returned the workflow to run.
                            self.events.task(
                                &self.state.nodes[n as usize],
                                task,
                                retry,
                                crate::events::TaskPhase::Succeeded,
                                None,
                                self.now_us,
                            );
                        }
                        if self.events.enabled() {
                            let closure =
                                compiled.unwrap_or_else(|| match self.state.graph_sources.last() {
                                    Some(GraphSource::Dynamic { spec, node_id, .. }) => {
                                        crate::events::uncompiled_dynamic_closure(
                                            &self.program,
                                            g,
                                            spec,
                                            node_id,
                                        )
                                    }
                                    _ => CompiledWorkflowClosure::default(),
                                });
                            self.events.node_dynamic(
                                &self.program,
                                &self.state,
                                n,
                                closure,
                                self.now_us,
                            );
                        }
                        self.start_scope(g, Some(n), prefix, inputs);
                    }
                    Err(e) => {
                        let err =
                            engine_error("DynamicWorkflowError", ErrorKind::User, e.to_string());
                        if let Some(task) = &task {
                            self.events.task(
                                &self.state.nodes[n as usize],
                                task,
                                retry,
                                crate::events::TaskPhase::Failed,
                                Some(&err),
                                self.now_us,
                            );
                        }
                        self.fail_node(n, err, NodePhase::Failed)
                    }
                }
            }
        }
    }

    /// Gives a failure node's `err` input the workflow's error (a `core.Error` scalar, wrapped
    /// in the union its Optional type asks for), as propeller does.
    fn inject_error(&self, inputs: &mut LiteralMap, scope: u32, spec: &Node) {
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

    /// A node's inputs: as kept, or resolved again from its bindings (whose upstream outputs
    /// are still there).
    fn node_inputs(&self, n: u32) -> LiteralMap {
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
    fn complete(&mut self, n: u32) {
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

    /// Under FAIL_IMMEDIATELY: abort what runs, skip what has not started; the scope then ends.
    fn abort_scope_nodes(&mut self, scope: u32, reason: &str) {
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

fn new_node(id: String, scope: u32, graph: u32, index: u32, pending: u32) -> NodeState {
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

fn invalid_spec(node_id: &str, what: &str) -> ExecutionError {
    engine_error(
        "InvalidNodeSpec",
        ErrorKind::System,
        format!("node {node_id:?} is {what}"),
    )
}
