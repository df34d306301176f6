//! Alula's Kubernetes pod plugin (flyteplugins' pod plugin): runs each attempt of a container
//! task as one pod, reads the pod's status back as an [`alula_propeller::AttemptStatus`], and
//! wakes the attempt's driver when its pod changes.
//!
//! - [`pod`] builds the pod from an attempt (templated command, env, resources, scheduling,
//!   deterministic name, labels and annotations, the execution's settings), from a container
//!   task or a pod task (`k8s_pod` target);
//! - [`podtemplate`] merges it onto the base `PodTemplate` as flyteplugins does;
//! - [`secrets`] mounts the secrets a task requests where flytekit looks for them;
//! - [`status`] maps a pod's status the way Flyte does;
//! - [`PodPlugin`] talks to the API server (create, get, delete, watch);
//! - [`operators`] runs `spark`, `ray`, `pytorch`, `tensorflow` and `mpi` tasks as their
//!   operators' custom resources, whose pods are built as above.
//!
//! Compatible with API servers from 1.20 on: the pod fields set here all exist there.

pub mod config;
pub mod copilot;
pub mod logs;
pub mod metrics;
pub mod operators;
pub mod plugin;
pub mod pod;
pub mod podtemplate;
pub mod ratelimit;
pub mod rbac;
pub mod secrets;
pub mod status;

#[cfg(test)]
mod testutil;

pub use config::PodPluginConfig;
pub use metrics::PodMetrics;
pub use plugin::PodPlugin;
