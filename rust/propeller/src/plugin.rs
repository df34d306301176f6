//! The plugin trait: how propeller runs one task attempt, whatever runs it (a local process, a
//! warm Python worker, a Kubernetes pod). Shaped like flyteplugins' `Plugin` (Handle/Abort/
//! Finalize), split so that a restarted propeller can re-attach: `start` once per attempt,
//! `check` as often as needed, `abort` and `finalize` at the end.
//!
//! Plugins never decide a task's outcome from its outputs: they say whether the attempt is
//! still running or has stopped, and the driver reads `outputs.pb` / `futures.pb` / `error.pb`
//! from the attempt's output prefix (the same for every plugin, as in Flyte).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use alula_idl::flyteidl::core::{
    LiteralMap, TaskNodeOverrides, TaskTemplate, WorkflowExecutionIdentifier,
};
use async_trait::async_trait;
use tokio::sync::mpsc;

/// One task attempt, with everything a plugin needs to run it. Its data locations are local
/// paths under the storage root with local storage, and the storage's URIs (`s3://...`) when
/// execution data lives in a bucket (see [`crate::Layout::location`]).
#[derive(Debug, Clone)]
pub struct Attempt {
    pub execution: WorkflowExecutionIdentifier,
    /// The node execution id (unique within the execution, nested ids included).
    pub node_id: String,
    pub retry_attempt: u32,
    /// The element of an array node this attempt runs, if any.
    pub array_index: Option<u32>,
    pub task: Arc<TaskTemplate>,
    pub overrides: Option<TaskNodeOverrides>,
    pub inputs: Arc<LiteralMap>,
    /// `inputs.pb` (already written when `start` is called).
    pub inputs_path: PathBuf,
    /// Where the task writes `outputs.pb`, `futures.pb` or `error.pb`.
    pub output_prefix: PathBuf,
    /// Where the task writes offloaded data (files, directories, dataframes).
    pub raw_output_prefix: PathBuf,
    pub checkpoint_prefix: PathBuf,
    /// The previous attempt's checkpoint folder (empty on the first attempt).
    pub prev_checkpoint_prefix: Option<PathBuf>,
    /// Environment Flyte gives every task (`FLYTE_INTERNAL_*`, `FLYTE_ATTEMPT_NUMBER`).
    pub env: BTreeMap<String, String>,
    /// The execution's settings that reach its tasks, resolved with Flyte's precedence.
    pub settings: Arc<AttemptSettings>,
}

/// What an execution asks of every task it runs (issue 13), resolved by admin when the
/// execution is created with Flyte's precedence (execution spec > launch plan > matchable
/// attributes: workflow > project-domain > project > server defaults) and stored in its spec.
/// Plugins apply what they can: a pod carries all of it; a local process gets the envs,
/// secrets and raw output prefix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptSettings {
    /// Labels and annotations for the pod (and shown on the execution).
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Environment variables for the task (the execution's `envs`), below Flyte's own.
    pub envs: BTreeMap<String, String>,
    /// The execution's security context: run-as (Kubernetes service account, IAM role),
    /// secrets and tokens it adds to the task's own.
    pub security_context: Option<alula_idl::flyteidl::core::SecurityContext>,
    /// The execution's interruptible override (`None`: the task's own setting).
    pub interruptible: Option<bool>,
    /// The execution's cluster label (EXECUTION_CLUSTER_LABEL), if any.
    pub cluster_label: Option<String>,
    /// Where the execution's raw data goes instead of the storage's `raw/` folder
    /// (`raw_output_data_config.output_location_prefix`), if set.
    pub raw_output_prefix: Option<String>,
}

impl Attempt {
    /// A name unique to this attempt across executions, for process groups, worker requests and
    /// pod names: execution, node, element and retry.
    pub fn unique_name(&self) -> String {
        let element = self
            .array_index
            .map(|i| format!("-{i}"))
            .unwrap_or_default();
        format!(
            "{}-{}-{}-{}{element}-{}",
            self.execution.project,
            self.execution.domain,
            self.execution.name,
            self.node_id,
            self.retry_attempt
        )
    }
}

/// Where an attempt stands, as its plugin sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptStatus {
    /// The plugin has no trace of it: it was never started (a crash came between saving the
    /// state that records it and starting it).
    NotStarted,
    Running,
    /// It stopped; the driver reads its outputs. `exit_code` is `None` when unknown (it ended
    /// while propeller was down); `message` says what the plugin saw (a log tail, a pod reason).
    Exited {
        exit_code: Option<i32>,
        message: String,
    },
    /// The platform killed it for a reason it names (Kubernetes' `OOMKilled`): like `Exited`,
    /// but without outputs the attempt fails with `code` as its error code (as Flyte reports
    /// it), a user error retried within the task's retries.
    Killed {
        exit_code: Option<i32>,
        code: String,
        message: String,
    },
    /// It stopped without a chance to finish: the worker died, the pod was evicted or
    /// preempted. A system error: retried within the system budget.
    Lost {
        message: String,
    },
    /// It cannot run as specified (bad image, bad command): a user error, not retried.
    Failed {
        message: String,
    },
}

/// Where one of an attempt's logs is, for the driver to store once the attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogData {
    /// A local file (stored as is when it already is the storage's object).
    File(PathBuf),
    /// Read by the plugin (a pod's log from the API server).
    Bytes(Vec<u8>),
}

/// Why a plugin call failed (not the task: the call itself).
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The attempt cannot be started as specified (no command, unknown task type...).
    #[error("{0}")]
    Invalid(String),
    /// Was already started (the plugin found its marker); the driver re-attaches instead.
    #[error("attempt {0} was already started")]
    AlreadyStarted(String),
    /// Infrastructure trouble (spawn failed, API server unreachable); worth retrying later.
    #[error("{0}")]
    Transient(String),
}

/// Tells the driver of an execution that one of its attempts may have changed state; the
/// driver then calls `check`. Plugins that cannot notify are checked periodically.
#[derive(Clone, Debug)]
pub struct Waker {
    pub(crate) tx: mpsc::UnboundedSender<u64>,
    pub(crate) attempt: u64,
}

impl Waker {
    pub fn new(tx: mpsc::UnboundedSender<u64>, attempt: u64) -> Self {
        Self { tx, attempt }
    }

    pub fn wake(&self) {
        // The driver may be gone (execution finished or aborted): nothing to tell.
        let _ = self.tx.send(self.attempt);
    }
}

#[async_trait]
pub trait Plugin: Send + Sync + 'static {
    /// A short name for logs and metrics ("process", "warm", "k8s").
    fn name(&self) -> &'static str;

    /// Whether this plugin runs `task`. Which plugin runs a task is decided by
    /// [`crate::registry::PluginRegistry`]: the one configured for its type, else one that
    /// names its type in [`Plugin::task_types`], else the first generic one accepting it.
    fn can_run(&self, task: &TaskTemplate) -> bool;

    /// The task types this plugin serves by name (`spark`, `sensor`, ...; Flyte's
    /// `RegisteredTaskTypes`). Empty (the default): a generic plugin, offered every task of a
    /// type no plugin names (the container plugins). Read at every selection, so a plugin
    /// that discovers its types (the agent plugin) may change them.
    fn task_types(&self) -> Vec<crate::registry::TaskType> {
        Vec::new()
    }

    /// Whether map task elements read the array node's whole inputs and pick theirs by index
    /// (`BATCH_JOB_ARRAY_INDEX_VAR_NAME`, what flytekit's map tasks expect), rather than a file
    /// of their own inputs.
    fn whole_array_inputs(&self) -> bool {
        true
    }

    /// Starts the attempt. Called once per attempt; the plugin leaves a marker so that a
    /// second call (after a crash) is refused with `AlreadyStarted` instead of running twice.
    async fn start(&self, attempt: &Attempt, waker: Waker) -> Result<(), PluginError>;

    /// Where the attempt stands. After a restart, this also re-attaches (and arranges for the
    /// waker to be called when it ends, if the plugin can).
    async fn check(&self, attempt: &Attempt, waker: Waker) -> Result<AttemptStatus, PluginError>;

    /// Stops a running attempt. Idempotent; an attempt already gone is not an error.
    async fn abort(&self, attempt: &Attempt) -> Result<(), PluginError>;

    /// The logs this plugin keeps of every attempt (`stdout`, `stderr`; `output` for one
    /// combined log): task events link to them on admin's log route. None by default.
    fn log_streams(&self) -> &'static [&'static str] {
        &[]
    }

    /// Links of the attempt's logs elsewhere (a log system's, from configured templates),
    /// carried by its task events besides admin's.
    fn log_links(&self, _attempt: &Attempt) -> Vec<alula_idl::flyteidl::core::TaskLog> {
        Vec::new()
    }

    /// The ended attempt's logs, by stream, for the driver to store under its output prefix
    /// (`logs/<stream>.txt`) before `finalize`: so they outlive the machine, pod or worker.
    async fn logs(&self, _attempt: &Attempt) -> Vec<(&'static str, LogData)> {
        Vec::new()
    }

    /// Releases what the attempt held (pods, temporary folders) once it is over.
    async fn finalize(&self, _attempt: &Attempt) -> Result<(), PluginError> {
        Ok(())
    }
}
