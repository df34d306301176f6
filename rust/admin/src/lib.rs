//! Alula's control plane: flyteidl's `AdminService` (registration, reads, executions),
//! `DataProxyService` (uploads), `SignalService` and the auth discovery services over gRPC,
//! backed by an sqlx store that runs on SQLite or PostgreSQL, plus the HTTP endpoints (signed
//! uploads, the REST gateway, `/metrics`).

pub mod agents;
pub mod app;
pub mod auth;
pub mod authz;
pub mod config;
pub mod dataproxy;
pub mod decode_errors;
pub mod diff;
pub mod download;
pub mod error;
pub mod flyte_url;
pub mod guard;
pub mod inputs;
pub mod list;
pub mod literals;
pub mod logs;
pub mod metrics;
pub mod notify;
pub mod objects;
pub mod plane;
pub mod rest;
pub mod schedule;
pub mod served;
pub mod service;
pub mod store;
pub use alula_core::task_resources;
pub mod tls;
pub mod upload;
pub mod validate;

pub use config::{AdminConfig, HttpAccess};
pub use error::{AdminError, AdminResult};
pub use served::ServedTasks;
pub use service::{AdminApi, ExecutionNotice};
pub use store::Store;
