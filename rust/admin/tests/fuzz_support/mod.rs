//! Shared by the admin fuzz suites: one in-process admin on in-memory SQLite, seeded with a
//! task, a workflow, a launch plan and an execution whose names match the vocabulary of
//! `alula_fuzz::Schema` (`flytesnacks`/`development`, `t0`, `wf`, `lp`, `v1`), so random
//! requests reach records that exist and not only the NOT_FOUND paths; and the table from an
//! RPC name to its trait method for every served service.
#![allow(dead_code)] // each suite uses a different subset

use std::sync::{Arc, OnceLock};

use alula_admin::dataproxy::DataProxy;
use alula_admin::rest::{Handlers, Service};
use alula_admin::{AdminApi, AdminConfig, Store};
use alula_idl::flyteidl::admin::{
    ExecutionCreateRequest, ExecutionSpec, LaunchPlanCreateRequest, LaunchPlanSpec,
    TaskCreateRequest, TaskSpec, WorkflowCreateRequest, WorkflowSpec,
};
use alula_idl::flyteidl::core::{ResourceType, SimpleType};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use tokio::runtime::Runtime;
use tonic::{Request, Status};

use crate::common::builders::*;

pub struct Fixture {
    pub runtime: Runtime,
    pub api: AdminApi,
    pub data_proxy: DataProxy,
}

/// The one admin every case of a suite talks to (state accumulates across cases, as on a
/// server that strangers keep calling).
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (api, data_proxy) = runtime.block_on(seeded());
        Fixture {
            runtime,
            api,
            data_proxy,
        }
    })
}

#[allow(
    clippy::unwrap_used,
    reason = "test setup: a failure is the test's failure"
)]
async fn seeded() -> (AdminApi, DataProxy) {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let storage =
        std::env::temp_dir().join(format!("alula-admin-fuzz-{:x}", rand::random::<u64>()));
    let config = Arc::new(AdminConfig::new(
        storage,
        "http://127.0.0.1:1".into(),
        b"fuzz-key".to_vec(),
    ));
    let api = AdminApi::new(store, config.clone());
    api.ensure_default_projects().await.unwrap();
    let task = int_task("t0", "v1", "image");
    let task_id = task.id.clone().unwrap();
    api.create_task(Request::new(TaskCreateRequest {
        id: Some(task_id.clone()),
        spec: Some(TaskSpec {
            template: Some(task),
            ..Default::default()
        }),
    }))
    .await
    .unwrap();
    let wf = one_node_workflow("wf", "v1", &task_id, SimpleType::Integer);
    let wf_id = wf.id.clone().unwrap();
    api.create_workflow(Request::new(WorkflowCreateRequest {
        id: Some(wf_id.clone()),
        spec: Some(WorkflowSpec {
            template: Some(wf),
            ..Default::default()
        }),
    }))
    .await
    .unwrap();
    let lp_id = id(ResourceType::LaunchPlan, "lp", "v1");
    api.create_launch_plan(Request::new(LaunchPlanCreateRequest {
        id: Some(lp_id.clone()),
        spec: Some(LaunchPlanSpec {
            workflow_id: Some(wf_id),
            ..Default::default()
        }),
    }))
    .await
    .unwrap();
    api.create_execution(Request::new(ExecutionCreateRequest {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: "x".into(),
        spec: Some(ExecutionSpec {
            launch_plan: Some(lp_id),
            ..Default::default()
        }),
        inputs: Some(literals(&[("x", int_literal(7))])),
        org: String::new(),
    }))
    .await
    .unwrap();
    let data_proxy = DataProxy::new(config, api.clone());
    (api, data_proxy)
}

/// What became of one request.
#[derive(Debug)]
pub enum Outcome {
    /// The service has no RPC of that name in this table: the table needs the new RPC.
    NotInTable,
    /// The bytes are not a valid request (the decoder's answer; gRPC would say
    /// INVALID_ARGUMENT before the handler runs).
    Undecodable,
    Answered(Result<(), Status>),
}

/// Calls `rpc` (snake case) of `service` (full name) with encoded `bytes` through the table the
/// REST gateway dispatches with, so an RPC missing there is caught here too.
pub async fn call(f: (AdminApi, DataProxy), service: &str, rpc: &str, bytes: &[u8]) -> Outcome {
    let (admin, data_proxy) = f;
    let Some(service) = Service::named(service) else {
        return Outcome::NotInTable;
    };
    let handlers = Handlers { admin, data_proxy };
    match handlers.call(service, rpc, bytes).await {
        None => Outcome::NotInTable,
        // The table's own refusal of bytes that do not decode (gRPC refuses them before the
        // handler runs).
        Some(Err(status))
            if status.code() == tonic::Code::InvalidArgument
                && status.message().contains("request cannot be decoded") =>
        {
            Outcome::Undecodable
        }
        Some(result) => Outcome::Answered(result.map(|_| ())),
    }
}

/// The services admin serves (gRPC and REST); the others in `proto/` (datacatalog, the cache
/// service, external plugins) are not served by Alula.
pub fn served() -> impl Iterator<Item = &'static str> {
    Service::ALL.into_iter().map(Service::full_name)
}
