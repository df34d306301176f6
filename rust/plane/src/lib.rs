//! The interface between Alula's control plane (admin) and its data plane (propeller and its
//! plugins). Propeller never reads admin's tables: everything it needs from the control plane
//! goes through [`ControlPlane`], which admin implements in process (`alula start`, the `all`
//! role) and serves over gRPC (`proto/alula/plane/v1`) to propellers in other processes, which
//! reach it through [`client::GrpcPlane`].
//!
//! What crosses it, in Flyte's terms:
//! - a work queue of executions: claim a lease, renew it, save the engine state together with
//!   the events it produced (an outbox, one transaction), read and acknowledge the outbox,
//!   finish, release — leases and saved state stay in admin's database, behind this interface,
//!   so several propellers can share one admin and a crashed one is taken over;
//! - what an execution runs ([`Launch`]: its spec, resolved inputs and compiled workflow) and
//!   how it stands ([`ExecutionStatus`]);
//! - events (flyteidl's workflow, node and task execution events), child executions (launch
//!   plan nodes), signals (gate nodes), the task output cache and its reservations
//!   (`cache_serialize`), and the outputs of a recovered execution's nodes;
//! - the contracts plugins implement for admin: [`logs::LiveLogs`] (logs of running attempts),
//!   [`ServedTasks`] (which task types some plugin runs), [`ReadinessCheck`].

pub mod agents;
pub mod client;
pub mod logs;
pub mod wire;

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use alula_idl::flyteidl::admin::{
    ExecutionClosure, ExecutionCreateRequest, ExecutionSpec, SignalGetOrCreateRequest,
    TaskResourceAttributes,
};
use alula_idl::flyteidl::core::{
    workflow_execution::Phase, CompiledWorkflowClosure, Literal, LiteralMap, TaskTemplate,
    WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::event::{NodeExecutionEvent, TaskExecutionEvent, WorkflowExecutionEvent};

/// An execution by its names (a `WorkflowExecutionIdentifier` without the org).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ExecutionKey {
    pub project: String,
    pub domain: String,
    pub name: String,
}

impl ExecutionKey {
    pub fn id(&self) -> WorkflowExecutionIdentifier {
        WorkflowExecutionIdentifier {
            project: self.project.clone(),
            domain: self.domain.clone(),
            name: self.name.clone(),
            org: String::new(),
        }
    }
}

impl std::fmt::Display for ExecutionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.project, self.domain, self.name)
    }
}

/// A leased execution, as its new owner finds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunRecord {
    pub key: ExecutionKey,
    /// The engine state as last saved (empty before the first save).
    pub state: Vec<u8>,
    pub generation: i64,
    pub next_event: i64,
}

/// An event waiting in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEvent {
    pub seq: i64,
    /// [`EventKind`] as stored.
    pub kind: i64,
    pub event: Vec<u8>,
}

/// Which flyteidl event an outbox entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Workflow = 0,
    Node = 1,
    Task = 2,
}

/// One event for admin's ingestion.
#[derive(Clone, Debug, PartialEq)]
pub enum ExecutionEvent {
    Workflow(Box<WorkflowExecutionEvent>),
    Node(Box<NodeExecutionEvent>),
    Task(Box<TaskExecutionEvent>),
}

/// What happened to an execution, for a propeller in the same process to react at once
/// (others find out by polling).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecutionNotice {
    Created(ExecutionKey),
    Terminated(ExecutionKey),
    SignalSet(ExecutionKey),
}

/// What an execution runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Launch {
    pub spec: ExecutionSpec,
    /// The resolved inputs (defaults and fixed inputs applied).
    pub inputs: LiteralMap,
    /// The compiled workflow (a launch plan's, or a one-node wrapper around a single task),
    /// its tasks given the execution's platform resources.
    pub closure: CompiledWorkflowClosure,
    /// The execution's task resource defaults and limits, for the tasks a dynamic node
    /// generates while it runs.
    pub task_resources: Option<TaskResourceAttributes>,
    /// The execution's phase as admin records it (an execution terminated before any
    /// propeller picked it up is `Aborting`).
    pub phase: Phase,
}

/// How an execution stands.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutionStatus {
    pub phase: Phase,
    /// Its closure (the error of a failed one, the cause of an aborted one).
    pub closure: ExecutionClosure,
}

/// One save of a driver's progress: the engine state and the events it produced, stored
/// together (so none is lost or invented twice), conditional on the lease.
#[derive(Clone, Copy, Debug)]
pub struct Save<'a> {
    pub state: &'a [u8],
    /// The sequence number of `events[0]`.
    pub first_event: i64,
    /// (kind, encoded event) in order.
    pub events: &'a [(i64, Vec<u8>)],
    pub lease_until: i64,
    pub now: i64,
}

/// Why the control plane did not answer as asked.
#[derive(Debug, thiserror::Error)]
pub enum PlaneError {
    /// Trouble reaching or writing what it keeps (a database or object store error, the
    /// network): worth trying again.
    #[error("{0}")]
    Unavailable(String),
    /// Stored data that cannot be read back: trying again will not help.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Something the execution refers to does not exist (its workflow or task).
    #[error("{0} not found")]
    Missing(String),
    /// A refusal with the gRPC code admin answered (an unknown launch plan, an event for an
    /// execution that is over): a final answer.
    #[error("{message}")]
    Refused { code: tonic::Code, message: String },
}

impl PlaneError {
    pub fn refused(status: &tonic::Status) -> Self {
        PlaneError::Refused {
            code: status.code(),
            message: status.message().to_string(),
        }
    }

    /// The gRPC code of a refusal.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            PlaneError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

pub type PlaneResult<T> = Result<T, PlaneError>;

/// What the data plane asks of the control plane. Times are microseconds since the epoch
/// ([`now_micros`]); `owner` is the asking propeller instance.
#[async_trait::async_trait]
pub trait ControlPlane: Send + Sync + 'static {
    // The work queue.

    /// Leases up to `limit` executions that need a propeller and nobody else holds: new ones,
    /// those whose lease expired, and those `owner` held before a restart.
    async fn claim_runs(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> PlaneResult<Vec<RunRecord>>;
    /// Extends `owner`'s lease; false when it lost it.
    async fn renew_run(&self, key: &ExecutionKey, owner: &str, until: i64) -> PlaneResult<bool>;
    /// Saves the state and appends the events to the outbox in one transaction; false when
    /// `owner` lost the lease (nothing is written then).
    async fn save_run(&self, key: &ExecutionKey, owner: &str, save: Save<'_>) -> PlaneResult<bool>;
    /// Events saved and not yet acknowledged, oldest first.
    async fn outbox(&self, key: &ExecutionKey, limit: i64) -> PlaneResult<Vec<OutboxEvent>>;
    /// Forgets outbox events up to `last_seq` (delivered).
    async fn ack_outbox(&self, key: &ExecutionKey, last_seq: i64) -> PlaneResult<()>;
    /// Marks the run done (the execution reached a terminal phase) and drops the lease.
    async fn finish_run(&self, key: &ExecutionKey, owner: &str, now: i64) -> PlaneResult<()>;
    /// Releases every lease `owner` holds (a clean stop); returns how many.
    async fn release_runs(&self, owner: &str) -> PlaneResult<u64>;
    /// Executions that still need a propeller.
    async fn count_open_runs(&self) -> PlaneResult<i64>;
    /// Notices of created and terminated executions and set signals, when the control plane
    /// can push them (in process); `None`: the data plane polls.
    fn notices(&self) -> Option<tokio::sync::broadcast::Receiver<ExecutionNotice>>;

    // Executions.

    /// What `key` runs; `None` when no such execution exists.
    async fn launch(&self, key: &ExecutionKey) -> PlaneResult<Option<Launch>>;
    /// How `key` stands; `None` when no such execution exists.
    async fn status(&self, key: &ExecutionKey) -> PlaneResult<Option<ExecutionStatus>>;
    /// The outputs of a succeeded execution (empty when it has none).
    async fn outputs(&self, key: &ExecutionKey) -> PlaneResult<LiteralMap>;
    /// The outputs of every node execution of `original` that may be reused by a recovery, by
    /// node execution id.
    async fn recoverable_outputs(
        &self,
        original: &ExecutionKey,
    ) -> PlaneResult<HashMap<String, LiteralMap>>;
    /// Creates a child execution (a launch plan node); `Refused` with `AlreadyExists` when it
    /// was created before.
    async fn create_execution(&self, request: ExecutionCreateRequest) -> PlaneResult<()>;
    /// Terminates an execution (a child of an aborted parent).
    async fn terminate_execution(
        &self,
        id: WorkflowExecutionIdentifier,
        cause: String,
    ) -> PlaneResult<()>;
    /// Records one event; `Refused` when admin will not record it (already recorded, the
    /// execution is over, an invalid transition).
    async fn record_event(&self, event: ExecutionEvent) -> PlaneResult<()>;

    // Signals (gate nodes).

    /// Creates the signal a gate waits for (nothing when it exists).
    async fn create_signal(&self, request: SignalGetOrCreateRequest) -> PlaneResult<()>;
    /// The value of a set signal; `None` while unset.
    async fn signal_value(
        &self,
        key: &ExecutionKey,
        signal_id: &str,
    ) -> PlaneResult<Option<Literal>>;

    // The task output cache.

    /// Cached outputs (an encoded `LiteralMap`) under `cache_key`.
    async fn cached_outputs(&self, cache_key: &str) -> PlaneResult<Option<Vec<u8>>>;
    async fn put_cached_outputs(
        &self,
        cache_key: &str,
        outputs: Vec<u8>,
        source: &str,
        now: i64,
    ) -> PlaneResult<()>;
    /// Asks for (or extends) `owner`'s reservation of `cache_key` until `expires`; returns who
    /// holds it now.
    async fn reserve(
        &self,
        cache_key: &str,
        owner: &str,
        now: i64,
        expires: i64,
    ) -> PlaneResult<String>;
    async fn release_reservation(&self, cache_key: &str, owner: &str) -> PlaneResult<()>;
}

/// Answers whether some plugin runs a task (the data plane tells the control plane, which
/// refuses at registration and launch what nothing would run).
pub trait ServedTasks: Send + Sync + 'static {
    /// Why no plugin runs `task` (a message naming it and its type), or `None` when one does.
    fn refusal(&self, task: &TaskTemplate) -> Option<String>;
}

/// A condition `/readyz` requires besides a database that answers (a propeller's loop being
/// alive, the process not shutting down).
pub trait ReadinessCheck: Send + Sync + 'static {
    /// Why the component is not ready, or `None` when it is.
    fn not_ready(&self) -> Option<String>;
}

/// Microseconds since the epoch: the clock of leases, saves and reservations.
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
