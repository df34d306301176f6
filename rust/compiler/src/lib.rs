//! The workflow compiler: checks a `WorkflowTemplate` (with its subworkflows, tasks and the
//! launch plans it calls) the way Flyte's compiler does, and produces the
//! `CompiledWorkflowClosure` that admin stores and the engine executes.
//!
//! Every problem is collected into [`CompileErrors`] rather than stopping at the first one.
//! Compiling dynamic workflows (`DynamicJobSpec`) is not provided yet.

mod bindings;
mod branch;
mod errors;
mod graph;
mod interface;
mod launch_plan;
mod names;
mod requirements;
mod task;
mod workflow;

pub use errors::{CompileError, CompileErrors, ErrorCode};
pub use launch_plan::{LaunchPlanInterface, LaunchPlanInterfaceError};
pub use names::{END_NODE_ID, START_NODE_ID};
pub use requirements::{requirements, Requirements};
pub use task::compile_task;
pub use workflow::compile_workflow;
