//! Admin's side of the data plane's interface ([`alula_plane::ControlPlane`]), in process: the
//! work queue and saved state are propeller's tables in admin's database (migration 0006),
//! events and child executions go through the same service methods as the RPCs (so they are
//! checked and recorded exactly as flytepropeller's would be), and launch specs are read from
//! the registered entities.

mod launch;
pub mod service;

use std::collections::HashMap;

use alula_idl::flyteidl::admin::{
    ExecutionClosure, ExecutionCreateRequest, ExecutionTerminateRequest, NodeExecutionEventRequest,
    SignalGetOrCreateRequest, TaskExecutionEventRequest, WorkflowExecutionEventRequest,
};
use alula_idl::flyteidl::core::{
    workflow_execution::Phase, Literal, LiteralMap, WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_idl::flyteidl::service::signal_service_server::SignalService;
use alula_plane::{
    ControlPlane, ExecutionEvent, ExecutionKey, ExecutionNotice, ExecutionStatus, Launch,
    OutboxEvent, PlaneError, PlaneResult, RunRecord, Save,
};
use prost::Message;

use crate::literals::LiteralsError;
use crate::store::StoreError;
use crate::AdminApi;

fn store_error(e: StoreError) -> PlaneError {
    match e {
        StoreError::Corrupt { .. } => PlaneError::Corrupt(e.to_string()),
        other => PlaneError::Unavailable(other.to_string()),
    }
}

/// Damaged stored literals are final; storage trouble is worth another try.
fn literals_error(e: LiteralsError) -> PlaneError {
    match e {
        LiteralsError::Corrupt { .. } => PlaneError::Corrupt(e.to_string()),
        other => PlaneError::Unavailable(other.to_string()),
    }
}

fn refused(status: tonic::Status) -> PlaneError {
    PlaneError::refused(&status)
}

#[async_trait::async_trait]
impl ControlPlane for AdminApi {
    async fn claim_runs(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> PlaneResult<Vec<RunRecord>> {
        self.store()
            .claim_runs(owner, now, lease_until, limit)
            .await
            .map_err(store_error)
    }

    async fn renew_run(&self, key: &ExecutionKey, owner: &str, until: i64) -> PlaneResult<bool> {
        self.store()
            .renew_run(key, owner, until)
            .await
            .map_err(store_error)
    }

    async fn save_run(&self, key: &ExecutionKey, owner: &str, save: Save<'_>) -> PlaneResult<bool> {
        self.store()
            .save_run(
                key,
                owner,
                save.state.to_vec(),
                save.first_event,
                save.events,
                save.lease_until,
                save.now,
            )
            .await
            .map_err(store_error)
    }

    async fn outbox(&self, key: &ExecutionKey, limit: i64) -> PlaneResult<Vec<OutboxEvent>> {
        self.store().outbox(key, limit).await.map_err(store_error)
    }

    async fn ack_outbox(&self, key: &ExecutionKey, last_seq: i64) -> PlaneResult<()> {
        self.store()
            .ack_outbox(key, last_seq)
            .await
            .map_err(store_error)
    }

    async fn finish_run(&self, key: &ExecutionKey, owner: &str, now: i64) -> PlaneResult<()> {
        self.store()
            .finish_run(key, owner, now)
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    async fn release_runs(&self, owner: &str) -> PlaneResult<u64> {
        self.store().release_runs(owner).await.map_err(store_error)
    }

    async fn count_open_runs(&self) -> PlaneResult<i64> {
        self.store().count_open_runs().await.map_err(store_error)
    }

    fn notices(&self) -> Option<tokio::sync::broadcast::Receiver<ExecutionNotice>> {
        Some(self.subscribe())
    }

    async fn launch(&self, key: &ExecutionKey) -> PlaneResult<Option<Launch>> {
        let Some(row) = self.store().get_execution(key).await.map_err(store_error)? else {
            return Ok(None);
        };
        launch::launch(self, &row).await.map(Some)
    }

    async fn status(&self, key: &ExecutionKey) -> PlaneResult<Option<ExecutionStatus>> {
        let Some(row) = self
            .store()
            .get_execution_event_state(key)
            .await
            .map_err(store_error)?
        else {
            return Ok(None);
        };
        let closure = ExecutionClosure::decode(row.closure.as_slice())
            .map_err(|e| PlaneError::Corrupt(format!("closure of execution {key}: {e}")))?;
        Ok(Some(ExecutionStatus {
            phase: Phase::from_str_name(&row.phase).unwrap_or(Phase::Undefined),
            closure,
        }))
    }

    async fn outputs(&self, key: &ExecutionKey) -> PlaneResult<LiteralMap> {
        let Some(row) = self
            .store()
            .get_execution_event_state(key)
            .await
            .map_err(store_error)?
        else {
            return Ok(LiteralMap::default());
        };
        Ok(
            crate::literals::execution_outputs(&self.config().storage, key, &row)
                .await
                .map_err(literals_error)?
                .unwrap_or_default(),
        )
    }

    async fn recoverable_outputs(
        &self,
        original: &ExecutionKey,
    ) -> PlaneResult<HashMap<String, LiteralMap>> {
        let rows = self
            .store()
            .recoverable_node_executions(original)
            .await
            .map_err(store_error)?;
        let mut nodes = HashMap::with_capacity(rows.len());
        for row in rows {
            let what = format!("outputs of node execution {original}/{}", row.key.node_id);
            let outputs = crate::literals::load(
                &self.config().storage,
                &row.outputs,
                &row.outputs_uri,
                &what,
            )
            .await
            .map_err(literals_error)?;
            // A node without outputs recorded none: it is recovered with none.
            nodes.insert(row.key.node_id, outputs.unwrap_or_default());
        }
        Ok(nodes)
    }

    async fn create_execution(&self, request: ExecutionCreateRequest) -> PlaneResult<()> {
        AdminService::create_execution(self, tonic::Request::new(request))
            .await
            .map(|_| ())
            .map_err(refused)
    }

    async fn terminate_execution(
        &self,
        id: WorkflowExecutionIdentifier,
        cause: String,
    ) -> PlaneResult<()> {
        let request = ExecutionTerminateRequest {
            id: Some(id),
            cause,
        };
        AdminService::terminate_execution(self, tonic::Request::new(request))
            .await
            .map(|_| ())
            .map_err(refused)
    }

    async fn record_event(&self, event: ExecutionEvent) -> PlaneResult<()> {
        let result = match event {
            ExecutionEvent::Workflow(event) => AdminService::create_workflow_event(
                self,
                tonic::Request::new(WorkflowExecutionEventRequest {
                    request_id: String::new(),
                    event: Some(*event),
                }),
            )
            .await
            .map(|_| ()),
            ExecutionEvent::Node(event) => AdminService::create_node_event(
                self,
                tonic::Request::new(NodeExecutionEventRequest {
                    request_id: String::new(),
                    event: Some(*event),
                }),
            )
            .await
            .map(|_| ()),
            ExecutionEvent::Task(event) => AdminService::create_task_event(
                self,
                tonic::Request::new(TaskExecutionEventRequest {
                    request_id: String::new(),
                    event: Some(*event),
                }),
            )
            .await
            .map(|_| ()),
        };
        result.map_err(refused)
    }

    async fn create_signal(&self, request: SignalGetOrCreateRequest) -> PlaneResult<()> {
        SignalService::get_or_create_signal(self, tonic::Request::new(request))
            .await
            .map(|_| ())
            .map_err(refused)
    }

    async fn signal_value(
        &self,
        key: &ExecutionKey,
        signal_id: &str,
    ) -> PlaneResult<Option<Literal>> {
        let Some(row) = self
            .store()
            .get_signal(key, signal_id)
            .await
            .map_err(store_error)?
        else {
            return Ok(None);
        };
        if row.value.is_empty() {
            return Ok(None);
        }
        Literal::decode(row.value.as_slice())
            .map(Some)
            .map_err(|e| PlaneError::Corrupt(format!("signal {signal_id}: {e}")))
    }

    async fn cached_outputs(&self, cache_key: &str) -> PlaneResult<Option<Vec<u8>>> {
        self.store()
            .get_cached_outputs(cache_key)
            .await
            .map_err(store_error)
    }

    async fn put_cached_outputs(
        &self,
        cache_key: &str,
        outputs: Vec<u8>,
        source: &str,
        now: i64,
    ) -> PlaneResult<()> {
        self.store()
            .put_cached_outputs(cache_key, outputs, source, now)
            .await
            .map_err(store_error)
    }

    async fn reserve(
        &self,
        cache_key: &str,
        owner: &str,
        now: i64,
        expires: i64,
    ) -> PlaneResult<String> {
        self.store()
            .get_or_extend_reservation(cache_key, owner, now, expires)
            .await
            .map(|r| r.owner)
            .map_err(store_error)
    }

    async fn release_reservation(&self, cache_key: &str, owner: &str) -> PlaneResult<()> {
        self.store()
            .release_reservation(cache_key, owner)
            .await
            .map(|_| ())
            .map_err(store_error)
    }
}
