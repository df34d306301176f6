//! RecoverExecution, propeller's side: an execution created in mode RECOVERED names the one it
//! recovers (`metadata.reference_execution`); every node that succeeded there (or was itself
//! recovered) is not run again but ends RECOVERED with the outputs recorded for it, as
//! flytepropeller does through GetNodeExecution / GetNodeExecutionData. Node executions are
//! matched by their unique ids, so task nodes inside subworkflows and dynamic workflows are
//! found at any depth, and an array node that succeeded is recovered whole.

use std::collections::HashMap;

use alula_admin::store::ExecutionKey;
use alula_idl::flyteidl::admin::{execution_metadata::ExecutionMode, ExecutionSpec};
use alula_idl::flyteidl::core::LiteralMap;

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
    let rows = ctx.store.recoverable_node_executions(original).await?;
    let mut nodes = HashMap::with_capacity(rows.len());
    for row in rows {
        let what = format!(
            "outputs of node execution {}/{}/{}/{}",
            original.project, original.domain, original.name, row.key.node_id
        );
        let outputs =
            alula_admin::literals::load(&ctx.config.storage, &row.outputs, &row.outputs_uri, &what)
                .await?;
        // A node without outputs recorded none: it is recovered with none.
        nodes.insert(row.key.node_id, outputs.unwrap_or_default());
    }
    Ok(nodes)
}
