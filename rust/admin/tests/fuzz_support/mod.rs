//! Shared by the admin fuzz suites: one in-process admin on in-memory SQLite, seeded with a
//! task, a workflow, a launch plan and an execution whose names match the vocabulary of
//! `alula_fuzz::Schema` (`flytesnacks`/`development`, `t0`, `wf`, `lp`, `v1`), so random
//! requests reach records that exist and not only the NOT_FOUND paths; and the table from an
//! RPC name to its trait method for every served service.
#![allow(dead_code)] // each suite uses a different subset

use std::sync::{Arc, OnceLock};

use alula_admin::auth::NoAuth;
use alula_admin::dataproxy::DataProxy;
use alula_admin::{AdminApi, AdminConfig, Store};
use alula_idl::flyteidl::admin::{
    ExecutionCreateRequest, ExecutionSpec, LaunchPlanCreateRequest, LaunchPlanSpec,
    TaskCreateRequest, TaskSpec, WorkflowCreateRequest, WorkflowSpec,
};
use alula_idl::flyteidl::core::{ResourceType, SimpleType};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_idl::flyteidl::service::auth_metadata_service_server::AuthMetadataService;
use alula_idl::flyteidl::service::data_proxy_service_server::DataProxyService;
use alula_idl::flyteidl::service::identity_service_server::IdentityService;
use alula_idl::flyteidl::service::signal_service_server::SignalService;
use prost::Message;
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

macro_rules! table {
    ($service:ident, $handler:expr, $rpc:expr, $bytes:expr, [$($name:ident),* $(,)?]) => {
        match $rpc {
            $(
                stringify!($name) => match Message::decode($bytes) {
                    Err(_) => Outcome::Undecodable,
                    Ok(req) => Outcome::Answered(
                        $service::$name(&$handler, Request::new(req)).await.map(|_| ()),
                    ),
                },
            )*
            _ => Outcome::NotInTable,
        }
    };
}

/// Calls `rpc` (snake case) of `service` (full name) with encoded `bytes`, as tonic would.
pub async fn call(f: (AdminApi, DataProxy), service: &str, rpc: &str, bytes: &[u8]) -> Outcome {
    let (api, data_proxy) = f;
    match service {
        "flyteidl.service.AdminService" => table!(
            AdminService,
            api,
            rpc,
            bytes,
            [
                create_task,
                get_task,
                list_task_ids,
                list_tasks,
                create_workflow,
                get_workflow,
                list_workflow_ids,
                list_workflows,
                create_launch_plan,
                get_launch_plan,
                get_active_launch_plan,
                list_active_launch_plans,
                list_launch_plan_ids,
                list_launch_plans,
                update_launch_plan,
                create_execution,
                relaunch_execution,
                recover_execution,
                get_execution,
                update_execution,
                get_execution_data,
                list_executions,
                terminate_execution,
                get_node_execution,
                get_dynamic_node_workflow,
                list_node_executions,
                list_node_executions_for_task,
                get_node_execution_data,
                register_project,
                update_project,
                get_project,
                list_projects,
                get_domains,
                create_workflow_event,
                create_node_event,
                create_task_event,
                get_task_execution,
                list_task_executions,
                get_task_execution_data,
                update_project_domain_attributes,
                get_project_domain_attributes,
                delete_project_domain_attributes,
                update_project_attributes,
                get_project_attributes,
                delete_project_attributes,
                update_workflow_attributes,
                get_workflow_attributes,
                delete_workflow_attributes,
                list_matchable_attributes,
                list_named_entities,
                get_named_entity,
                update_named_entity,
                get_version,
                get_description_entity,
                list_description_entities,
                get_execution_metrics,
            ]
        ),
        "flyteidl.service.DataProxyService" => table!(
            DataProxyService,
            data_proxy,
            rpc,
            bytes,
            [
                create_upload_location,
                create_download_location,
                create_download_link,
                get_data,
            ]
        ),
        "flyteidl.service.SignalService" => table!(
            SignalService,
            api,
            rpc,
            bytes,
            [get_or_create_signal, list_signals, set_signal,]
        ),
        "flyteidl.service.IdentityService" => {
            table!(IdentityService, NoAuth, rpc, bytes, [user_info,])
        }
        "flyteidl.service.AuthMetadataService" => table!(
            AuthMetadataService,
            NoAuth,
            rpc,
            bytes,
            [get_o_auth2_metadata, get_public_client_config,]
        ),
        _ => Outcome::NotInTable,
    }
}

/// The services admin serves (gRPC and REST); the others in `proto/` (datacatalog, the cache
/// service, external plugins) are not served by Alula.
pub const SERVED: [&str; 5] = [
    "flyteidl.service.AdminService",
    "flyteidl.service.DataProxyService",
    "flyteidl.service.SignalService",
    "flyteidl.service.IdentityService",
    "flyteidl.service.AuthMetadataService",
];

/// `CreateTask` → `create_task`, as tonic names trait methods.
pub fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
