//! Alula's data plane (FlytePropeller's role): leases executions from the control plane, drives
//! each with the same engine as local runs, persists the engine state (and the events it
//! produced, in the same transaction) before starting what that state records, dispatches task
//! attempts through [`plugin::Plugin`]s, and delivers the events to admin's ingestion. It talks
//! to admin only through [`alula_plane::ControlPlane`], never to its database.

pub mod agent;
mod children;
mod driver;
mod give_up;
pub mod launch;
pub mod metrics;
pub mod outcome;
pub mod plugin;
pub mod process;
mod reconciler;
pub mod registry;
pub mod secrets;
pub mod settings;
pub mod template;
pub mod warm;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alula_plane::{ControlPlane, PlaneError};

pub use alula_storage::layout::Layout;
pub use metrics::PropellerMetrics;
pub use plugin::{Attempt, AttemptSettings, AttemptStatus, LogData, Plugin, PluginError, Waker};
pub use reconciler::{Heartbeat, Propeller};
pub use registry::{PluginRegistry, RegistryConfig, TaskType};

#[derive(Debug, Clone)]
pub struct PropellerConfig {
    /// Names this instance in leases. A restarted instance with the same id resumes its own
    /// executions at once; another instance waits for the lease to expire.
    pub instance_id: String,
    /// Root of the local storage (inputs, outputs, raw data).
    pub storage_root: PathBuf,
    /// The object storage execution data lives in: `storage_root` by default.
    pub storage: alula_storage::Storage,
    pub lease: Duration,
    /// How often the store is scanned for executions nobody drives (new ones arrive at once by
    /// notice when admin runs in the same process).
    pub scan_interval: Duration,
    /// Most executions driven at once by this instance.
    pub max_executions: usize,
    /// Attempts in flight per execution when its spec sets no max_parallelism (0: no limit).
    pub max_parallelism: u32,
    /// Retries for system errors, on top of a task's own retries (flytepropeller: 3).
    pub max_system_retries: u32,
    /// How long a stopping instance lets its drivers finish the round (and save) before it
    /// cuts them off and releases its leases. Below Kubernetes' default 30 s termination grace.
    pub shutdown_grace: Duration,
    /// A driver that stops on a store or storage error is tried again after this delay,
    /// doubling each time (at most 30 s)...
    pub driver_retry_backoff: Duration,
    /// ...until it failed this many times in a row; then the execution fails with a system
    /// error. Damaged data fails it at once.
    pub max_driver_failures: u32,
    /// Admin's public HTTP URL: task events link to attempts' logs on its `/api/v1/logs`
    /// route. `None`: no such links.
    pub log_base_url: Option<String>,
}

impl PropellerConfig {
    pub fn new(instance_id: impl Into<String>, storage_root: impl Into<PathBuf>) -> Self {
        let storage_root = storage_root.into();
        Self {
            instance_id: instance_id.into(),
            storage: alula_storage::Storage::local(&storage_root),
            storage_root,
            lease: Duration::from_secs(30),
            scan_interval: Duration::from_secs(1),
            max_executions: 1000,
            max_parallelism: 0,
            max_system_retries: 3,
            shutdown_grace: Duration::from_secs(10),
            driver_retry_backoff: Duration::from_secs(1),
            max_driver_failures: 10,
            log_base_url: None,
        }
    }
}

/// What every driver shares.
pub struct Context {
    /// Admin, in process or across the network.
    pub plane: Arc<dyn ControlPlane>,
    /// The enabled plugins and which runs what.
    pub registry: Arc<PluginRegistry>,
    pub config: PropellerConfig,
    pub layout: Layout,
    pub metrics: Arc<PropellerMetrics>,
}

impl Context {
    pub(crate) fn lease_until(&self) -> i64 {
        alula_plane::now_micros() + self.config.lease.as_micros() as i64
    }
}

/// What the reconciler tells a running driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notice {
    Terminated,
    SignalSet,
    Stop,
}

/// Why a driver stopped before its execution ended.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// The control plane could not be reached or could not write (retried).
    #[error("control plane: {0}")]
    Plane(String),
    #[error("engine: {0}")]
    Engine(#[from] alula_engine::EngineError),
    #[error("{0} not found")]
    Missing(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("admin refused: {0}")]
    Admin(String),
    /// Another instance holds the execution now; this one stops touching it.
    #[error("the lease was lost")]
    LeaseLost,
}

impl From<PlaneError> for DriveError {
    /// Damaged or missing data fails the execution at once; trouble reaching the control plane
    /// is retried; a refusal is admin's answer.
    fn from(e: PlaneError) -> Self {
        match e {
            PlaneError::Unavailable(m) => DriveError::Plane(m),
            PlaneError::Corrupt(m) => DriveError::Corrupt(m),
            PlaneError::Missing(m) => DriveError::Missing(m),
            PlaneError::Refused { message, .. } => DriveError::Admin(message),
        }
    }
}
