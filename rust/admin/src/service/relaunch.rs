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
    /// The CreateExecution request that makes an execution like `reference` under `name`
    /// (generated when empty). It goes through CreateExecution, so the launch plan or task is
    /// resolved and the inputs are checked exactly as for a new execution, and the gate checks
    /// it as a new launch (who launches, which identity it asks for). `metadata` starts from
    /// the original's (or the caller's, when given) and gets `mode` and `reference_execution`.
    async fn request_from(
        &self,
        reference: Option<WorkflowExecutionIdentifier>,
        name: String,
        mode: ExecutionMode,
        metadata: Option<ExecutionMetadata>,
        edit_spec: impl FnOnce(&mut ExecutionSpec),
    ) -> AdminResult<ExecutionCreateRequest> {
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
        Ok(ExecutionCreateRequest {
            project: key.project,
            domain: key.domain,
            name,
            spec: Some(spec),
            inputs: Some(user_inputs),
            org,
        })
    }

    pub(crate) async fn relaunch_execution(
        &self,
        req: ExecutionRelaunchRequest,
    ) -> AdminResult<ExecutionCreateResponse> {
        let create = self.relaunch_request(req).await?;
        self.create_execution(create).await
    }

    /// RelaunchExecution as a CreateExecution request: the original's spec and inputs.
    pub(crate) async fn relaunch_request(
        &self,
        req: ExecutionRelaunchRequest,
    ) -> AdminResult<ExecutionCreateRequest> {
        let overwrite_cache = req.overwrite_cache;
        self.request_from(req.id, req.name, ExecutionMode::Relaunch, None, |spec| {
            spec.overwrite_cache = overwrite_cache;
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
        let create = self.recover_request(req).await?;
        self.create_execution(create).await
    }

    /// RecoverExecution as a CreateExecution request.
    pub(crate) async fn recover_request(
        &self,
        req: ExecutionRecoverRequest,
    ) -> AdminResult<ExecutionCreateRequest> {
        self.request_from(
            req.id,
            req.name,
            ExecutionMode::Recovered,
            req.metadata,
            |_| {},
        )
        .await
    }
}
