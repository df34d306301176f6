//! RelaunchExecution and RecoverExecution: a new execution from a recorded one, with its spec
//! and the inputs its caller sent, marked with the mode and the execution it came from.

use alula_idl::flyteidl::admin::{
    execution_metadata::ExecutionMode, ExecutionCreateRequest, ExecutionCreateResponse,
    ExecutionMetadata, ExecutionRecoverRequest, ExecutionRelaunchRequest, ExecutionSpec,
};
use alula_idl::flyteidl::core::WorkflowExecutionIdentifier;

use super::executions::{display_exec, execution_key};
use super::{decode, AdminApi};
use crate::error::AdminResult;

impl AdminApi {
    /// Creates an execution like `reference` under `name` (generated when empty). It goes
    /// through CreateExecution, so the launch plan or task is resolved and the inputs are
    /// checked exactly as for a new execution. `metadata` starts from the original's (or the
    /// caller's, when given) and gets `mode` and `reference_execution`.
    async fn create_from(
        &self,
        reference: Option<WorkflowExecutionIdentifier>,
        name: String,
        mode: ExecutionMode,
        metadata: Option<ExecutionMetadata>,
        edit_spec: impl FnOnce(&mut ExecutionSpec),
    ) -> AdminResult<ExecutionCreateResponse> {
        let key = execution_key(reference.as_ref())?;
        let row = self.execution_row(&key).await?;
        let what = || format!("execution {}", display_exec(&key));
        let mut spec: ExecutionSpec = decode(&row.spec, what)?;
        // The caller's inputs, not the resolved ones: defaults are applied again on creation.
        let user_inputs = crate::literals::load(
            &self.config.storage,
            &row.user_inputs,
            &row.user_inputs_uri,
            &format!("inputs of execution {}", display_exec(&key)),
        )
        .await?
        .unwrap_or_default();
        let mut metadata = metadata
            .or_else(|| spec.metadata.take())
            .unwrap_or_default();
        metadata.mode = mode as i32;
        let org = reference
            .as_ref()
            .map(|r| r.org.clone())
            .unwrap_or_default();
        metadata.reference_execution = reference;
        spec.metadata = Some(metadata);
        edit_spec(&mut spec);
        self.create_execution(ExecutionCreateRequest {
            project: key.project,
            domain: key.domain,
            name,
            spec: Some(spec),
            inputs: Some(user_inputs),
            org,
        })
        .await
    }

    pub(crate) async fn relaunch_execution(
        &self,
        req: ExecutionRelaunchRequest,
    ) -> AdminResult<ExecutionCreateResponse> {
        self.relaunch_execution_as(req, None).await
    }

    /// RelaunchExecution recording `principal` (the authenticated caller) as the launcher
    /// instead of the original execution's.
    pub(crate) async fn relaunch_execution_as(
        &self,
        req: ExecutionRelaunchRequest,
        principal: Option<String>,
    ) -> AdminResult<ExecutionCreateResponse> {
        let overwrite_cache = req.overwrite_cache;
        self.create_from(req.id, req.name, ExecutionMode::Relaunch, None, |spec| {
            spec.overwrite_cache = overwrite_cache;
            set_principal(spec, principal);
        })
        .await
    }

    /// Recovery means: rerun only the nodes that did not succeed in the reference execution,
    /// reusing the outputs of those that did. That reuse is the propeller's job: it sees mode
    /// RECOVERED and `reference_execution`, reads the reference's node executions that
    /// succeeded and ends those nodes RECOVERED with their recorded outputs
    /// (`rust/propeller/src/driver/recovery.rs`).
    pub(crate) async fn recover_execution(
        &self,
        req: ExecutionRecoverRequest,
    ) -> AdminResult<ExecutionCreateResponse> {
        self.recover_execution_as(req, None).await
    }

    /// RecoverExecution recording `principal` (the authenticated caller) as the launcher
    /// instead of the original's or the one the request's metadata claims.
    pub(crate) async fn recover_execution_as(
        &self,
        req: ExecutionRecoverRequest,
        principal: Option<String>,
    ) -> AdminResult<ExecutionCreateResponse> {
        self.create_from(
            req.id,
            req.name,
            ExecutionMode::Recovered,
            req.metadata,
            |spec| set_principal(spec, principal),
        )
        .await
    }
}

fn set_principal(spec: &mut ExecutionSpec, principal: Option<String>) {
    if let Some(principal) = principal {
        spec.metadata.get_or_insert_with(Default::default).principal = principal;
    }
}
