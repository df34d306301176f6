//! RecoverExecution, propeller's side: an execution created in mode RECOVERED names the one it
//! recovers (`metadata.reference_execution`); every node that succeeded there (or was itself
//! recovered) is not run again but ends RECOVERED with the outputs recorded for it, as
//! flytepropeller does through GetNodeExecution / GetNodeExecutionData. Node executions are
//! matched by their unique ids, so task nodes inside subworkflows and dynamic workflows are
//! found at any depth, and an array node that succeeded is recovered whole.

use std::collections::HashMap;

use alula_idl::flyteidl::admin::{execution_metadata::ExecutionMode, ExecutionSpec};
use alula_idl::flyteidl::core::LiteralMap;
use alula_plane::ExecutionKey;

use crate::{Context, DriveError};

/// The execution `spec` recovers, if it is a recovery.
pub(super) fn reference(spec: &ExecutionSpec) -> Option<ExecutionKey> {
    let metadata = spec.metadata.as_ref()?;
    if metadata.mode != ExecutionMode::Recovered as i32 {
        return None;
    }
    let id = metadata.reference_execution.as_ref()?;
    Some(ExecutionKey {
        project: id.project.clone(),
        domain: id.domain.clone(),
        name: id.name.clone(),
    })
}

/// The outputs of every node execution of `original` that may be reused, by node execution id.
pub(super) async fn succeeded_nodes(
    ctx: &Context,
    original: &ExecutionKey,
) -> Result<HashMap<String, LiteralMap>, DriveError> {
    Ok(ctx.plane.recoverable_outputs(original).await?)
}
