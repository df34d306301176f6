//! The data plane's interface served over gRPC (`alula.plane.v1.ControlPlaneService`): each RPC
//! is one [`ControlPlane`] call on admin's in-process implementation, behind the gate (the
//! admin role on every project, [`Need::DataPlane`](crate::authz::table::Need::DataPlane)).
//! A propeller in another process reaches it through `alula_plane::client::GrpcPlane`.

use alula_idl::alula::plane::v1 as pb;
use alula_idl::alula::plane::v1::control_plane_service_server::{
    ControlPlaneService, ControlPlaneServiceServer,
};
use alula_idl::flyteidl::admin::{ExecutionCreateRequest, SignalGetOrCreateRequest};
use alula_idl::flyteidl::core::LiteralMap;
use alula_plane::client::MAX_MESSAGE_BYTES;
use alula_plane::wire::{self, error_to_status, key_from_wire};
use alula_plane::{ControlPlane, Save};
use tonic::{Request, Response, Status};

use crate::authz::Gate;
use crate::AdminApi;

/// Longest owner (a propeller instance id) or cache key accepted.
const MAX_NAME_BYTES: usize = 1024;
/// Most runs one claim leases, and most outbox events one read returns.
const MAX_LIMIT: i64 = 10_000;

/// The service, guarded.
#[derive(Clone)]
pub struct PlaneService {
    api: AdminApi,
    gate: Gate,
}

impl PlaneService {
    pub fn new(api: AdminApi, gate: Gate) -> Self {
        Self { api, gate }
    }

    /// The tonic server, with room for large engine states.
    pub fn server(self) -> ControlPlaneServiceServer<Self> {
        ControlPlaneServiceServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    async fn admit<T>(&self, request: &Request<T>, method: &'static str) -> Result<(), Status> {
        self.gate.admit_everywhere(request, method).await.map(drop)
    }
}

fn name<'a>(what: &str, value: &'a str) -> Result<&'a str, Status> {
    if value.is_empty() || value.len() > MAX_NAME_BYTES {
        return Err(Status::invalid_argument(format!(
            "{what} must be 1 to {MAX_NAME_BYTES} bytes long"
        )));
    }
    Ok(value)
}

fn limit(value: i64) -> Result<i64, Status> {
    if !(1..=MAX_LIMIT).contains(&value) {
        return Err(Status::invalid_argument(format!(
            "limit must be 1 to {MAX_LIMIT}, not {value}"
        )));
    }
    Ok(value)
}

/// The full method name the authorization table knows the RPC by.
macro_rules! method {
    ($name:literal) => {
        concat!("/alula.plane.v1.ControlPlaneService/", $name)
    };
}

#[tonic::async_trait]
impl ControlPlaneService for PlaneService {
    async fn claim_runs(
        &self,
        request: Request<pb::ClaimRunsRequest>,
    ) -> Result<Response<pb::ClaimRunsResponse>, Status> {
        self.admit(&request, method!("ClaimRuns")).await?;
        let r = request.into_inner();
        let runs = self
            .api
            .claim_runs(
                name("owner", &r.owner)?,
                r.now,
                r.lease_until,
                limit(r.limit)?,
            )
            .await
            .map_err(error_to_status)?;
        Ok(Response::new(pb::ClaimRunsResponse {
            runs: runs.into_iter().map(wire::run_to_wire).collect(),
        }))
    }

    async fn renew_run(
        &self,
        request: Request<pb::RenewRunRequest>,
    ) -> Result<Response<pb::LeaseResponse>, Status> {
        self.admit(&request, method!("RenewRun")).await?;
        let r = request.into_inner();
        let key = key_from_wire(r.key)?;
        let held = self
            .api
            .renew_run(&key, name("owner", &r.owner)?, r.until)
            .await
            .map_err(error_to_status)?;
        Ok(Response::new(pb::LeaseResponse { held }))
    }

    async fn save_run(
        &self,
        request: Request<pb::SaveRunRequest>,
    ) -> Result<Response<pb::LeaseResponse>, Status> {
        self.admit(&request, method!("SaveRun")).await?;
        let r = request.into_inner();
        let key = key_from_wire(r.key)?;
        let events: Vec<(i64, Vec<u8>)> = r.events.into_iter().map(|e| (e.kind, e.event)).collect();
        let save = Save {
            state: &r.state,
            first_event: r.first_event,
            events: &events,
            lease_until: r.lease_until,
            now: r.now,
        };
        let held = self
            .api
            .save_run(&key, name("owner", &r.owner)?, save)
            .await
            .map_err(error_to_status)?;
        Ok(Response::new(pb::LeaseResponse { held }))
    }

    async fn get_outbox(
        &self,
        request: Request<pb::GetOutboxRequest>,
    ) -> Result<Response<pb::GetOutboxResponse>, Status> {
        self.admit(&request, method!("GetOutbox")).await?;
        let r = request.into_inner();
        let key = key_from_wire(r.key)?;
        let events = self
            .api
            .outbox(&key, limit(r.limit)?)
            .await
            .map_err(error_to_status)?;
        Ok(Response::new(pb::GetOutboxResponse {
            events: events.into_iter().map(wire::outbox_to_wire).collect(),
        }))
    }

    async fn ack_outbox(
        &self,
        request: Request<pb::AckOutboxRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.admit(&request, method!("AckOutbox")).await?;
        let r = request.into_inner();
        let key = key_from_wire(r.key)?;
        self.api
            .ack_outbox(&key, r.last_seq)
            .await
            .map_err(error_to_status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn finish_run(
        &self,
        request: Request<pb::FinishRunRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.admit(&request, method!("FinishRun")).await?;
        let r = request.into_inner();
        let key = key_from_wire(r.key)?;
        self.api
            .finish_run(&key, name("owner", &r.owner)?, r.now)
            .await
            .map_err(error_to_status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn release_runs(
        &self,
        request: Request<pb::ReleaseRunsRequest>,
    ) -> Result<Response<pb::ReleaseRunsResponse>, Status> {
        self.admit(&request, method!("ReleaseRuns")).await?;
        let r = request.into_inner();
        let released = self
            .api
            .release_runs(name("owner", &r.owner)?)
            .await
            .map_err(error_to_status)?;
        Ok(Response::new(pb::ReleaseRunsResponse { released }))
    }

    async fn count_open_runs(
        &self,
        request: Request<pb::CountOpenRunsRequest>,
    ) -> Result<Response<pb::CountOpenRunsResponse>, Status> {
        self.admit(&request, method!("CountOpenRuns")).await?;
        let open = self.api.count_open_runs().await.map_err(error_to_status)?;
        Ok(Response::new(pb::CountOpenRunsResponse { open }))
    }

    async fn get_launch(
        &self,
        request: Request<pb::ExecutionRequest>,
    ) -> Result<Response<pb::GetLaunchResponse>, Status> {
        self.admit(&request, method!("GetLaunch")).await?;
        let key = key_from_wire(request.into_inner().key)?;
        let launch = self.api.launch(&key).await.map_err(error_to_status)?;
        Ok(Response::new(pb::GetLaunchResponse {
            launch: launch.map(wire::launch_to_wire),
        }))
    }

    async fn get_status(
        &self,
        request: Request<pb::ExecutionRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        self.admit(&request, method!("GetStatus")).await?;
        let key = key_from_wire(request.into_inner().key)?;
        let status = self.api.status(&key).await.map_err(error_to_status)?;
        Ok(Response::new(pb::GetStatusResponse {
            status: status.map(wire::status_to_wire),
        }))
    }

    async fn get_outputs(
        &self,
        request: Request<pb::ExecutionRequest>,
    ) -> Result<Response<LiteralMap>, Status> {
        self.admit(&request, method!("GetOutputs")).await?;
        let key = key_from_wire(request.into_inner().key)?;
        let outputs = self.api.outputs(&key).await.map_err(error_to_status)?;
        Ok(Response::new(outputs))
    }

    async fn get_recoverable_outputs(
        &self,
        request: Request<pb::ExecutionRequest>,
    ) -> Result<Response<pb::GetRecoverableOutputsResponse>, Status> {
        self.admit(&request, method!("GetRecoverableOutputs"))
            .await?;
        let key = key_from_wire(request.into_inner().key)?;
        let outputs = self
            .api
            .recoverable_outputs(&key)
            .await
            .map_err(error_to_status)?;
        Ok(Response::new(pb::GetRecoverableOutputsResponse {
            outputs: outputs.into_iter().collect(),
        }))
    }

    async fn create_execution(
        &self,
        request: Request<ExecutionCreateRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.admit(&request, method!("CreateExecution")).await?;
        ControlPlane::create_execution(&self.api, request.into_inner())
            .await
            .map_err(error_to_status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn terminate_execution(
        &self,
        request: Request<pb::TerminateExecutionRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.admit(&request, method!("TerminateExecution")).await?;
        let r = request.into_inner();
        let id =
            r.id.ok_or_else(|| Status::invalid_argument("the execution id is missing"))?;
        ControlPlane::terminate_execution(&self.api, id, r.cause)
            .await
            .map_err(error_to_status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn record_event(
        &self,
        request: Request<pb::RecordEventRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.admit(&request, method!("RecordEvent")).await?;
        let event = wire::event_from_wire(request.into_inner())?;
        self.api
            .record_event(event)
            .await
            .map_err(error_to_status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn create_signal(
        &self,
        request: Request<SignalGetOrCreateRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.admit(&request, method!("CreateSignal")).await?;
        self.api
            .create_signal(request.into_inner())
            .await
            .map_err(error_to_status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn get_signal_value(
        &self,
        request: Request<pb::GetSignalValueRequest>,
    ) -> Result<Response<pb::GetSignalValueResponse>, Status> {
        self.admit(&request, method!("GetSignalValue")).await?;
        let r = request.into_inner();
        let key = key_from_wire(r.key)?;
        let value = self
            .api
            .signal_value(&key, name("signal_id", &r.signal_id)?)
            .await
            .map_err(error_to_status)?;
        Ok(Response::new(pb::GetSignalValueResponse { value }))
    }

    async fn get_cached_outputs(
        &self,
        request: Request<pb::CacheKeyRequest>,
    ) -> Result<Response<pb::GetCachedOutputsResponse>, Status> {
        self.admit(&request, method!("GetCachedOutputs")).await?;
        let r = request.into_inner();
        let outputs = self
            .api
            .cached_outputs(name("cache_key", &r.cache_key)?)
            .await
            .map_err(error_to_status)?;
        Ok(Response::new(pb::GetCachedOutputsResponse { outputs }))
    }

    async fn put_cached_outputs(
        &self,
        request: Request<pb::PutCachedOutputsRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.admit(&request, method!("PutCachedOutputs")).await?;
        let r = request.into_inner();
        self.api
            .put_cached_outputs(
                name("cache_key", &r.cache_key)?,
                r.outputs,
                &r.source,
                r.now,
            )
            .await
            .map_err(error_to_status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn reserve(
        &self,
        request: Request<pb::ReserveRequest>,
    ) -> Result<Response<pb::ReserveResponse>, Status> {
        self.admit(&request, method!("Reserve")).await?;
        let r = request.into_inner();
        let holder = self
            .api
            .reserve(
                name("cache_key", &r.cache_key)?,
                name("owner", &r.owner)?,
                r.now,
                r.expires,
            )
            .await
            .map_err(error_to_status)?;
        Ok(Response::new(pb::ReserveResponse { holder }))
    }

    async fn release_reservation(
        &self,
        request: Request<pb::ReleaseReservationRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.admit(&request, method!("ReleaseReservation")).await?;
        let r = request.into_inner();
        self.api
            .release_reservation(name("cache_key", &r.cache_key)?, name("owner", &r.owner)?)
            .await
            .map_err(error_to_status)?;
        Ok(Response::new(pb::Empty {}))
    }
}
