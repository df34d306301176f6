//! The execution engine: the node state machine that runs a compiled workflow.
//!
//! [`Execution`] is a pure state machine (no I/O, no threads, no Python, no gRPC). A driver
//! feeds it time and task outcomes and carries out the [`Action`]s it asks for. The local runner
//! drives it with in-process Python calls; propeller drives it with plugins (processes, warm
//! workers, Kubernetes pods) and persists [`ExecutionState`] after every transition. Because both
//! share this crate, a workflow behaves the same locally and remotely.
//!
//! [`driver::run`] is a small synchronous driver over an [`driver::Executor`], used by tests and
//! by simple embedders.

pub mod bindings;
pub mod branch;
pub mod driver;
mod events;
mod execution;
pub mod literals;
mod nodes;
pub mod program;
mod schedule;
mod scope;
mod state;
pub mod state_codec;

pub use events::{node_phase, workflow_phase, Event, TaskPhase};
pub use execution::{
    Action, AttemptId, Execution, ExecutionSettings, SignalKind, TaskAttempt, TaskOutcome,
};
pub use state::{
    ArrayState, ElementState, ExecutionState, KindState, NodePhase, NodeState, ScopeState,
    WorkflowPhase,
};

/// Why the engine could not do what it was asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The closure or a runtime-built workflow is not executable as given.
    #[error("invalid workflow: {0}")]
    InvalidWorkflow(String),
    /// An input binding of a node could not be resolved.
    #[error("node {node:?}, input {var:?}: {message}")]
    Binding {
        node: String,
        var: String,
        message: String,
    },
    /// A driver reported on an attempt the engine does not know (or no longer tracks).
    #[error("unknown task attempt {0}")]
    UnknownAttempt(AttemptId),
    /// A signal or child result that no node is waiting for.
    #[error("{0}")]
    InvalidSignal(String),
}
