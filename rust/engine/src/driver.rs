//! A synchronous driver: runs an [`Execution`] to the end against an [`Executor`].
//!
//! Enough for tests and embedders whose tasks complete in-process; propeller has its own
//! asynchronous driver that persists the state between steps.

use std::time::SystemTime;

use alula_idl::flyteidl::core::{ExecutionError, Identifier, Literal, LiteralMap};

use crate::{
    Action, AttemptId, EngineError, Event, Execution, SignalKind, TaskAttempt, TaskOutcome,
};

/// Runs task attempts and answers what a workflow waits for.
pub trait Executor {
    /// Starts an attempt. Return its outcome now if it finished synchronously.
    fn start(&mut self, attempt: TaskAttempt) -> Option<TaskOutcome>;
    /// Waits for the next asynchronously finished attempt (`None`: nothing is running).
    fn wait(&mut self) -> Option<(AttemptId, TaskOutcome)> {
        None
    }
    fn abort(&mut self, _attempt: AttemptId) {}
    /// Runs a launch plan as a child execution.
    fn run_child(
        &mut self,
        launch_plan: &Identifier,
        _inputs: &LiteralMap,
    ) -> Result<LiteralMap, Box<ExecutionError>> {
        Err(Box::new(ExecutionError {
            message: format!("launch plan {} cannot run here", launch_plan.name),
            ..Default::default()
        }))
    }
    /// Answers a gate's signal (`None`: nobody will answer; the run stops waiting).
    fn signal(&mut self, _signal_id: &str, _kind: &SignalKind) -> Option<Literal> {
        None
    }
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
    /// Sleeps until `t` (a sleep gate or a timeout is due).
    fn sleep_until(&mut self, t: SystemTime) {
        if let Ok(d) = t.duration_since(SystemTime::now()) {
            std::thread::sleep(d);
        }
    }
}

/// Runs `exec` until it reaches a terminal phase (or nothing more can happen), passing each
/// event to `sink`.
pub fn run(
    exec: &mut Execution,
    executor: &mut impl Executor,
    mut sink: impl FnMut(Event),
) -> Result<(), EngineError> {
    let mut wake_at: Option<SystemTime> = None;
    loop {
        let actions = exec.poll(executor.now());
        let mut finished = Vec::new();
        for action in actions {
            match action {
                Action::StartTask(attempt) => {
                    let id = attempt.id;
                    if let Some(outcome) = executor.start(*attempt) {
                        finished.push((id, outcome));
                    }
                }
                Action::AbortTask { attempt, .. } => executor.abort(attempt),
                Action::StartChild {
                    node_execution_id,
                    launch_plan,
                    inputs,
                } => {
                    let result = executor.run_child(&launch_plan, &inputs);
                    exec.child_finished(&node_execution_id, result, executor.now())?;
                }
                Action::AbortChild { .. } => {}
                Action::WaitForSignal {
                    node_execution_id,
                    signal_id,
                    kind,
                } => {
                    if let Some(value) = executor.signal(&signal_id, &kind) {
                        exec.signal(&node_execution_id, value, executor.now())?;
                    }
                }
                Action::WakeAt(t) => wake_at = Some(wake_at.map_or(t, |w| w.min(t))),
            }
        }
        for (id, outcome) in finished {
            exec.task_finished(id, outcome, executor.now())?;
        }
        exec.take_events().into_iter().for_each(&mut sink);
        if exec.phase().is_terminal() {
            return Ok(());
        }
        if exec.running_attempts().next().is_some() {
            if let Some((id, outcome)) = executor.wait() {
                exec.task_finished(id, outcome, executor.now())?;
                continue;
            }
        }
        if !exec.has_pending_work() {
            match wake_at.take() {
                Some(t) => executor.sleep_until(t),
                None => return Ok(()),
            }
        }
    }
}
