//! [`ControlPlane`] across processes: a propeller apart from admin (`ALULA_ROLE=propeller` with
//! an admin endpoint) asks admin's `alula.plane.v1.ControlPlaneService` over gRPC, with a
//! bearer token from a [`TokenSource`], and needs no database of its own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use alula_idl::alula::plane::v1 as pb;
use alula_idl::alula::plane::v1::control_plane_service_client::ControlPlaneServiceClient;
use alula_idl::flyteidl::admin::{ExecutionCreateRequest, SignalGetOrCreateRequest};
use alula_idl::flyteidl::core::{Literal, LiteralMap, WorkflowExecutionIdentifier};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::Request;

use crate::wire::{self, key_to_wire, status_to_error};
use crate::{
    ControlPlane, ExecutionEvent, ExecutionKey, ExecutionNotice, ExecutionStatus, Launch,
    OutboxEvent, PlaneError, PlaneResult, RunRecord, Save,
};

/// The largest message either side accepts: an engine state (a big map's) and the outbox of
/// one save can be tens of megabytes; tonic's 4 MiB default would refuse them.
pub const MAX_MESSAGE_BYTES: usize = 512 << 20;

/// How long one call may take before it counts as unavailable (and is tried again).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the client's bearer token comes from (client credentials from an identity provider,
/// cached until shortly before they expire).
#[async_trait::async_trait]
pub trait TokenSource: Send + Sync + 'static {
    /// A token to send; `Unavailable` when the provider cannot be reached, `Refused` when it
    /// refuses the credentials.
    async fn token(&self) -> PlaneResult<String>;
}

/// The control plane as admin serves it over gRPC.
#[derive(Clone)]
pub struct GrpcPlane {
    client: ControlPlaneServiceClient<Channel>,
    token: Option<Arc<dyn TokenSource>>,
}

impl GrpcPlane {
    /// A client on `channel` (connected lazily: admin may start after the propeller), sending
    /// `token`'s bearer token with every call when there is one.
    pub fn new(channel: Channel, token: Option<Arc<dyn TokenSource>>) -> Self {
        let client = ControlPlaneServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Self { client, token }
    }

    async fn request<T>(&self, message: T) -> PlaneResult<Request<T>> {
        let mut request = Request::new(message);
        request.set_timeout(CALL_TIMEOUT);
        if let Some(source) = &self.token {
            let token = source.token().await?;
            let value = MetadataValue::try_from(format!("Bearer {token}"))
                .map_err(|_| PlaneError::Unavailable("the bearer token is not a header".into()))?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }

    fn client(&self) -> ControlPlaneServiceClient<Channel> {
        self.client.clone()
    }
}

#[async_trait::async_trait]
impl ControlPlane for GrpcPlane {
    async fn claim_runs(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> PlaneResult<Vec<RunRecord>> {
        let request = self
            .request(pb::ClaimRunsRequest {
                owner: owner.to_string(),
                now,
                lease_until,
                limit,
            })
            .await?;
        let runs = self
            .client()
            .claim_runs(request)
            .await
            .map_err(status_to_error)?
            .into_inner()
            .runs;
        runs.into_iter().map(wire::run_from_wire).collect()
    }

    async fn renew_run(&self, key: &ExecutionKey, owner: &str, until: i64) -> PlaneResult<bool> {
        let request = self
            .request(pb::RenewRunRequest {
                key: Some(key_to_wire(key)),
                owner: owner.to_string(),
                until,
            })
            .await?;
        let answer = self.client().renew_run(request).await;
        Ok(answer.map_err(status_to_error)?.into_inner().held)
    }

    async fn save_run(&self, key: &ExecutionKey, owner: &str, save: Save<'_>) -> PlaneResult<bool> {
        let request = self
            .request(pb::SaveRunRequest {
                key: Some(key_to_wire(key)),
                owner: owner.to_string(),
                state: save.state.to_vec(),
                first_event: save.first_event,
                events: save
                    .events
                    .iter()
                    .map(|(kind, event)| pb::OutboxEntry {
                        seq: 0,
                        kind: *kind,
                        event: event.clone(),
                    })
                    .collect(),
                lease_until: save.lease_until,
                now: save.now,
            })
            .await?;
        let answer = self.client().save_run(request).await;
        Ok(answer.map_err(status_to_error)?.into_inner().held)
    }

    async fn outbox(&self, key: &ExecutionKey, limit: i64) -> PlaneResult<Vec<OutboxEvent>> {
        let request = self
            .request(pb::GetOutboxRequest {
                key: Some(key_to_wire(key)),
                limit,
            })
            .await?;
        let answer = self.client().get_outbox(request).await;
        let events = answer.map_err(status_to_error)?.into_inner().events;
        Ok(events.into_iter().map(wire::outbox_from_wire).collect())
    }

    async fn ack_outbox(&self, key: &ExecutionKey, last_seq: i64) -> PlaneResult<()> {
        let request = self
            .request(pb::AckOutboxRequest {
                key: Some(key_to_wire(key)),
                last_seq,
            })
            .await?;
        self.client()
            .ack_outbox(request)
            .await
            .map_err(status_to_error)?;
        Ok(())
    }

    async fn finish_run(&self, key: &ExecutionKey, owner: &str, now: i64) -> PlaneResult<()> {
        let request = self
            .request(pb::FinishRunRequest {
                key: Some(key_to_wire(key)),
                owner: owner.to_string(),
                now,
            })
            .await?;
        self.client()
            .finish_run(request)
            .await
            .map_err(status_to_error)?;
        Ok(())
    }

    async fn release_runs(&self, owner: &str) -> PlaneResult<u64> {
        let request = self
            .request(pb::ReleaseRunsRequest {
                owner: owner.to_string(),
            })
            .await?;
        let answer = self.client().release_runs(request).await;
        Ok(answer.map_err(status_to_error)?.into_inner().released)
    }

    async fn count_open_runs(&self) -> PlaneResult<i64> {
        let request = self.request(pb::CountOpenRunsRequest {}).await?;
        let answer = self.client().count_open_runs(request).await;
        Ok(answer.map_err(status_to_error)?.into_inner().open)
    }

    /// Across processes nothing is pushed: the propeller polls.
    fn notices(&self) -> Option<tokio::sync::broadcast::Receiver<ExecutionNotice>> {
        None
    }

    async fn launch(&self, key: &ExecutionKey) -> PlaneResult<Option<Launch>> {
        let request = self
            .request(pb::ExecutionRequest {
                key: Some(key_to_wire(key)),
            })
            .await?;
        let answer = self.client().get_launch(request).await;
        let launch = answer.map_err(status_to_error)?.into_inner().launch;
        launch.map(wire::launch_from_wire).transpose()
    }

    async fn status(&self, key: &ExecutionKey) -> PlaneResult<Option<ExecutionStatus>> {
        let request = self
            .request(pb::ExecutionRequest {
                key: Some(key_to_wire(key)),
            })
            .await?;
        let answer = self.client().get_status(request).await;
        let status = answer.map_err(status_to_error)?.into_inner().status;
        status.map(wire::status_from_wire).transpose()
    }

    async fn outputs(&self, key: &ExecutionKey) -> PlaneResult<LiteralMap> {
        let request = self
            .request(pb::ExecutionRequest {
                key: Some(key_to_wire(key)),
            })
            .await?;
        let answer = self.client().get_outputs(request).await;
        Ok(answer.map_err(status_to_error)?.into_inner())
    }

    async fn recoverable_outputs(
        &self,
        original: &ExecutionKey,
    ) -> PlaneResult<HashMap<String, LiteralMap>> {
        let request = self
            .request(pb::ExecutionRequest {
                key: Some(key_to_wire(original)),
            })
            .await?;
        let answer = self.client().get_recoverable_outputs(request).await;
        let outputs = answer.map_err(status_to_error)?.into_inner().outputs;
        Ok(outputs.into_iter().collect())
    }

    async fn create_execution(&self, request: ExecutionCreateRequest) -> PlaneResult<()> {
        let request = self.request(request).await?;
        self.client()
            .create_execution(request)
            .await
            .map_err(status_to_error)?;
        Ok(())
    }

    async fn terminate_execution(
        &self,
        id: WorkflowExecutionIdentifier,
        cause: String,
    ) -> PlaneResult<()> {
        let request = self
            .request(pb::TerminateExecutionRequest {
                id: Some(id),
                cause,
            })
            .await?;
        self.client()
            .terminate_execution(request)
            .await
            .map_err(status_to_error)?;
        Ok(())
    }

    async fn record_event(&self, event: ExecutionEvent) -> PlaneResult<()> {
        let request = self.request(wire::event_to_wire(event)).await?;
        self.client()
            .record_event(request)
            .await
            .map_err(status_to_error)?;
        Ok(())
    }

    async fn create_signal(&self, request: SignalGetOrCreateRequest) -> PlaneResult<()> {
        let request = self.request(request).await?;
        self.client()
            .create_signal(request)
            .await
            .map_err(status_to_error)?;
        Ok(())
    }

    async fn signal_value(
        &self,
        key: &ExecutionKey,
        signal_id: &str,
    ) -> PlaneResult<Option<Literal>> {
        let request = self
            .request(pb::GetSignalValueRequest {
                key: Some(key_to_wire(key)),
                signal_id: signal_id.to_string(),
            })
            .await?;
        let answer = self.client().get_signal_value(request).await;
        Ok(answer.map_err(status_to_error)?.into_inner().value)
    }

    async fn cached_outputs(&self, cache_key: &str) -> PlaneResult<Option<Vec<u8>>> {
        let request = self
            .request(pb::CacheKeyRequest {
                cache_key: cache_key.to_string(),
            })
            .await?;
        let answer = self.client().get_cached_outputs(request).await;
        Ok(answer.map_err(status_to_error)?.into_inner().outputs)
    }

    async fn put_cached_outputs(
        &self,
        cache_key: &str,
        outputs: Vec<u8>,
        source: &str,
        now: i64,
    ) -> PlaneResult<()> {
        let request = self
            .request(pb::PutCachedOutputsRequest {
                cache_key: cache_key.to_string(),
                outputs,
                source: source.to_string(),
                now,
            })
            .await?;
        self.client()
            .put_cached_outputs(request)
            .await
            .map_err(status_to_error)?;
        Ok(())
    }

    async fn reserve(
        &self,
        cache_key: &str,
        owner: &str,
        now: i64,
        expires: i64,
    ) -> PlaneResult<String> {
        let request = self
            .request(pb::ReserveRequest {
                cache_key: cache_key.to_string(),
                owner: owner.to_string(),
                now,
                expires,
            })
            .await?;
        let answer = self.client().reserve(request).await;
        Ok(answer.map_err(status_to_error)?.into_inner().holder)
    }

    async fn release_reservation(&self, cache_key: &str, owner: &str) -> PlaneResult<()> {
        let request = self
            .request(pb::ReleaseReservationRequest {
                cache_key: cache_key.to_string(),
                owner: owner.to_string(),
            })
            .await?;
        self.client()
            .release_reservation(request)
            .await
            .map_err(status_to_error)?;
        Ok(())
    }
}
