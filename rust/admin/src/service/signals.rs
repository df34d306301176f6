//! SignalService: the values gate nodes wait for. The propeller creates a signal with the type
//! the gate expects (GetOrCreateSignal, polled each round); users list and set them (flytekit's
//! `approve`/`reject`/`set_input`, the console). A signal is set once, with a value castable to
//! its type.

use alula_core::types::{are_types_castable, display_type, literal_type_of};
use alula_idl::flyteidl::admin::{
    Signal, SignalGetOrCreateRequest, SignalList, SignalListRequest, SignalSetRequest,
    SignalSetResponse,
};
use alula_idl::flyteidl::core::{
    Literal, LiteralType, SignalIdentifier, WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::service::signal_service_server::SignalService;
use prost::Message;
use tonic::{Request, Response, Status};

use super::executions::{display_exec, execution_key};
use super::{decode, list_params, require, AdminApi};
use crate::error::{AdminError, AdminResult};
use crate::store::{now_micros, ExecutionKey, SignalRow, SIGNAL_FIELDS};

/// The execution and signal id of a request, both present.
fn signal_key(id: Option<&SignalIdentifier>) -> AdminResult<(ExecutionKey, &str)> {
    let id = id.ok_or_else(|| AdminError::invalid("missing signal id"))?;
    require(&id.signal_id, "signal id signal_id")?;
    let execution = execution_key(id.execution_id.as_ref())
        .map_err(|e| AdminError::invalid(format!("signal {:?}: {e}", id.signal_id)))?;
    Ok((execution, &id.signal_id))
}

fn display_signal(execution: &ExecutionKey, signal_id: &str) -> String {
    format!(
        "signal {signal_id:?} of execution {}",
        display_exec(execution)
    )
}

fn signal_of(row: &SignalRow) -> AdminResult<Signal> {
    let what = || display_signal(&row.execution, &row.signal_id);
    Ok(Signal {
        id: Some(SignalIdentifier {
            signal_id: row.signal_id.clone(),
            execution_id: Some(WorkflowExecutionIdentifier {
                project: row.execution.project.clone(),
                domain: row.execution.domain.clone(),
                name: row.execution.name.clone(),
                org: String::new(),
            }),
        }),
        r#type: Some(decode::<LiteralType>(&row.literal_type, what)?),
        value: if row.value.is_empty() {
            None
        } else {
            Some(decode::<Literal>(&row.value, what)?)
        },
    })
}

impl AdminApi {
    /// Creates the signal, or returns the existing one unchanged (a gate node asks every round).
    pub(crate) async fn get_or_create_signal(
        &self,
        req: SignalGetOrCreateRequest,
    ) -> AdminResult<Signal> {
        let (execution, signal_id) = signal_key(req.id.as_ref())?;
        let literal_type = req.r#type.as_ref().ok_or_else(|| {
            AdminError::invalid(format!(
                "missing type of {}",
                display_signal(&execution, signal_id)
            ))
        })?;
        // A signal belongs to an execution; refusing unknown ones keeps typos from creating
        // signals nobody waits for.
        self.execution_row(&execution).await?;
        let now = now_micros();
        let row = SignalRow {
            execution: execution.clone(),
            signal_id: signal_id.to_string(),
            literal_type: literal_type.encode_to_vec(),
            value: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        signal_of(&self.store.get_or_create_signal(&row).await?)
    }

    pub(crate) async fn list_signals(&self, req: SignalListRequest) -> AdminResult<SignalList> {
        let execution = execution_key(req.workflow_execution_id.as_ref())?;
        let list = list_params(
            &SIGNAL_FIELDS,
            &req.filters,
            req.sort_by.as_ref(),
            req.limit,
            &req.token,
        )?;
        let rows = self.store.list_signals(&execution, &list).await?;
        Ok(SignalList {
            token: list.next_token(rows.len()),
            signals: rows.iter().map(signal_of).collect::<AdminResult<_>>()?,
        })
    }

    /// Sets the value once. A value whose type cannot be cast to the signal's is
    /// INVALID_ARGUMENT; setting a signal that holds a value is FAILED_PRECONDITION (the gate
    /// may already have acted on the first value, so it cannot be replaced).
    pub(crate) async fn set_signal(&self, req: SignalSetRequest) -> AdminResult<SignalSetResponse> {
        let (execution, signal_id) = signal_key(req.id.as_ref())?;
        let what = display_signal(&execution, signal_id);
        let value = req
            .value
            .ok_or_else(|| AdminError::invalid(format!("missing value for {what}")))?;
        let row = self
            .store
            .get_signal(&execution, signal_id)
            .await?
            .ok_or_else(|| AdminError::not_found(format!("{what} not found")))?;
        if !row.value.is_empty() {
            return Err(AdminError::FailedPrecondition(format!(
                "{what} is already set; a signal can be set only once"
            )));
        }
        let expected: LiteralType = decode(&row.literal_type, || what.clone())?;
        let actual = literal_type_of(&value).ok_or_else(|| {
            AdminError::invalid(format!(
                "the value for {what} has no type (an empty literal); expected {}",
                display_type(&expected)
            ))
        })?;
        if !are_types_castable(&actual, &expected) {
            return Err(AdminError::invalid(format!(
                "the value for {what} has type {}, which cannot be cast to the signal's type {}",
                display_type(&actual),
                display_type(&expected)
            )));
        }
        let set = self
            .store
            .set_signal_value(&execution, signal_id, value.encode_to_vec(), now_micros())
            .await?;
        if !set {
            // Someone set it between our read and our write.
            return Err(AdminError::FailedPrecondition(format!(
                "{what} is already set; a signal can be set only once"
            )));
        }
        self.notify(super::ExecutionNotice::SignalSet(execution));
        Ok(SignalSetResponse {})
    }
}

#[tonic::async_trait]
impl SignalService for AdminApi {
    async fn get_or_create_signal(
        &self,
        request: Request<SignalGetOrCreateRequest>,
    ) -> Result<Response<Signal>, Status> {
        AdminApi::get_or_create_signal(self, request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn list_signals(
        &self,
        request: Request<SignalListRequest>,
    ) -> Result<Response<SignalList>, Status> {
        AdminApi::list_signals(self, request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn set_signal(
        &self,
        request: Request<SignalSetRequest>,
    ) -> Result<Response<SignalSetResponse>, Status> {
        AdminApi::set_signal(self, request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }
}
