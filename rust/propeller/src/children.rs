//! Launch-plan nodes: each runs as a child execution created through admin (mode
//! CHILD_WORKFLOW, with its parent node execution recorded), under a name derived from the
//! parent and the node, so that a restarted driver finds the child it created instead of
//! creating another.

use std::collections::HashMap;
use std::sync::Arc;

use alula_idl::flyteidl::admin::{
    execution_closure::OutputResult, execution_metadata::ExecutionMode, ExecutionCreateRequest,
    ExecutionMetadata, ExecutionSpec,
};
use alula_idl::flyteidl::core::{
    execution_error::ErrorKind, workflow_execution::Phase, ExecutionError, Identifier, LiteralMap,
    NodeExecutionIdentifier, WorkflowExecutionIdentifier,
};
use alula_plane::ExecutionKey;
use sha2::{Digest, Sha256};

use crate::{Context, DriveError};

pub(crate) struct Children {
    ctx: Arc<Context>,
    parent: WorkflowExecutionIdentifier,
    /// Node execution id → the child execution it waits for.
    running: HashMap<String, ExecutionKey>,
    /// Node execution id → why admin refused to create its child (reported at the next poll).
    refused: HashMap<String, String>,
    /// The parent's settings each child is launched with (see [`Children::inheriting`]).
    inherited: ExecutionSpec,
}

/// A DNS-1123 name for the child of `node` in `parent`: readable when short, hashed when not
/// (flytepropeller does the same with an FNV hash).
fn child_name(parent: &str, node: &str) -> String {
    let plain = format!("{parent}-{node}");
    let valid = plain.len() <= 63
        && plain
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        return plain;
    }
    let digest = Sha256::digest(plain.as_bytes());
    let hex: String = digest.iter().take(10).map(|b| format!("{b:02x}")).collect();
    format!("f{hex}")
}

impl Children {
    pub(crate) fn new(ctx: Arc<Context>, parent: WorkflowExecutionIdentifier) -> Self {
        Self {
            ctx,
            parent,
            running: HashMap::new(),
            refused: HashMap::new(),
            inherited: ExecutionSpec::default(),
        }
    }

    /// Children are launched with the parent's resolved settings as their own request's, as
    /// flytepropeller launches them (labels, annotations, envs, security context, raw output
    /// prefix, interruptible, max parallelism, overwrite cache).
    pub(crate) fn inheriting(mut self, parent: &ExecutionSpec) -> Self {
        self.inherited = ExecutionSpec {
            labels: parent.labels.clone(),
            annotations: parent.annotations.clone(),
            envs: parent.envs.clone(),
            security_context: parent.security_context.clone(),
            raw_output_data_config: parent.raw_output_data_config.clone(),
            interruptible: parent.interruptible,
            max_parallelism: parent.max_parallelism,
            overwrite_cache: parent.overwrite_cache,
            ..Default::default()
        };
        self
    }

    pub(crate) async fn start(
        &mut self,
        node: &str,
        launch_plan: &Identifier,
        inputs: LiteralMap,
    ) -> Result<(), DriveError> {
        let name = child_name(&self.parent.name, node);
        let spec = ExecutionSpec {
            launch_plan: Some(launch_plan.clone()),
            metadata: Some(ExecutionMetadata {
                mode: ExecutionMode::ChildWorkflow as i32,
                parent_node_execution: Some(NodeExecutionIdentifier {
                    node_id: node.to_string(),
                    execution_id: Some(self.parent.clone()),
                }),
                ..Default::default()
            }),
            ..self.inherited.clone()
        };
        let req = ExecutionCreateRequest {
            project: self.parent.project.clone(),
            domain: self.parent.domain.clone(),
            name: name.clone(),
            spec: Some(spec),
            inputs: Some(inputs),
            org: String::new(),
        };
        match self.ctx.plane.create_execution(req).await {
            Ok(()) => {}
            // Created before a restart.
            Err(e) if e.code() == Some(tonic::Code::AlreadyExists) => {}
            Err(alula_plane::PlaneError::Refused { message, .. }) => {
                // The parent node fails with admin's reason (an unknown launch plan, bad
                // inputs): recorded as a finished child with an error.
                tracing::warn!(node, message, "cannot launch child execution");
                self.refused.insert(node.to_string(), message);
                return Ok(());
            }
            // Admin could not be reached: the driver tries again.
            Err(e) => return Err(e.into()),
        }
        self.running.insert(
            node.to_string(),
            ExecutionKey {
                project: self.parent.project.clone(),
                domain: self.parent.domain.clone(),
                name,
            },
        );
        Ok(())
    }

    pub(crate) async fn abort(&mut self, node: &str) {
        self.refused.remove(node);
        let Some(key) = self.running.remove(node) else {
            return;
        };
        let cause = "parent execution aborted".to_string();
        if let Err(e) = self.ctx.plane.terminate_execution(key.id(), cause).await {
            tracing::debug!(node, error = %e, "child not terminated");
        }
    }

    /// Children that finished since the last call, with their outputs or errors.
    #[allow(clippy::type_complexity)]
    pub(crate) async fn poll(
        &mut self,
    ) -> Result<Vec<(String, Result<LiteralMap, Box<ExecutionError>>)>, DriveError> {
        let mut done: Vec<_> = self
            .refused
            .drain()
            .map(|(node, message)| {
                let err = ExecutionError {
                    code: "ChildLaunchFailed".into(),
                    message,
                    kind: ErrorKind::User as i32,
                    ..Default::default()
                };
                (node, Err(Box::new(err)))
            })
            .collect();
        for (node, key) in &self.running {
            let Some(status) = self.ctx.plane.status(key).await? else {
                continue;
            };
            let phase = status.phase.as_str_name();
            let result = match status.phase {
                Phase::Succeeded => Ok(self.ctx.plane.outputs(key).await?),
                Phase::Failed | Phase::Aborted | Phase::TimedOut => {
                    let message = match status.closure.output_result {
                        Some(OutputResult::Error(e)) => e.message,
                        Some(OutputResult::AbortMetadata(m)) => format!("aborted: {}", m.cause),
                        _ => format!("ended {phase}"),
                    };
                    Err(Box::new(ExecutionError {
                        code: "ChildExecutionFailed".into(),
                        message: format!(
                            "child execution {} {}: {message}",
                            key.name,
                            phase.to_lowercase()
                        ),
                        kind: ErrorKind::User as i32,
                        ..Default::default()
                    }))
                }
                _ => continue,
            };
            done.push((node.clone(), result));
        }
        for (node, _) in &done {
            self.running.remove(node);
        }
        Ok(done)
    }
}
