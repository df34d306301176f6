//! Shared Flyte model helpers used by the compiler, the engine and admin.

pub mod cache;
pub mod ids;
pub mod task_resources;
pub mod types;
