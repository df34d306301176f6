//! From a service and RPC name to its handler: the REST gateway calls the very trait methods
//! gRPC calls, so both transports share validation, codes and messages, and (through
//! [`GatedHandlers`]) the same authorization: the HTTP request's extensions, which hold the
//! caller the authentication layer found, travel into the `tonic::Request`.

use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_idl::flyteidl::service::agent_metadata_service_server::AgentMetadataService;
use alula_idl::flyteidl::service::auth_metadata_service_server::AuthMetadataService;
use alula_idl::flyteidl::service::data_proxy_service_server::DataProxyService;
use alula_idl::flyteidl::service::identity_service_server::IdentityService;
use alula_idl::flyteidl::service::signal_service_server::SignalService;
use axum::http::Extensions;
use prost::Message;
use tonic::{Request, Status};

use super::routes::Service;
use crate::agents::AgentMetadataProxy;
use crate::auth::discovery::Discovery;
use crate::authz::{Gate, Guarded};
use crate::dataproxy::DataProxy;
use crate::service::AdminApi;

/// The services behind the routes, each behind the gate: what the gateway serves.
#[derive(Clone)]
pub struct GatedHandlers {
    pub admin: Guarded<AdminApi>,
    pub data_proxy: Guarded<DataProxy>,
    pub discovery: Guarded<Discovery>,
    /// The configured task agents (admin's configuration names them).
    pub agents: Guarded<AgentMetadataProxy>,
}

impl GatedHandlers {
    /// The three services behind `gate` (whose authentication the discovery RPCs describe).
    pub fn new(admin: AdminApi, data_proxy: DataProxy, gate: Gate) -> Self {
        let discovery = Discovery {
            auth: gate.auth().clone(),
        };
        let agents = AgentMetadataProxy::new(admin.config().agents.clone());
        Self {
            agents: Guarded::new(agents, gate.clone()),
            admin: Guarded::new(admin, gate.clone()),
            data_proxy: Guarded::new(data_proxy, gate.clone()),
            discovery: Guarded::new(discovery, gate),
        }
    }

    /// Calls `rpc` (snake case) of `service` with an encoded request, carrying `extensions`
    /// (the caller), and returns the encoded response; `None` when the service has no RPC of
    /// that name.
    pub async fn call(
        &self,
        service: Service,
        rpc: &str,
        request: &[u8],
        extensions: &Extensions,
    ) -> Option<Result<Vec<u8>, Status>> {
        match service {
            Service::Admin => call_admin(&self.admin, rpc, request, extensions).await,
            Service::DataProxy => call_data_proxy(&self.data_proxy, rpc, request, extensions).await,
            Service::Signal => call_signal(&self.admin, rpc, request, extensions).await,
            Service::Identity => call_identity(&self.discovery, rpc, request, extensions).await,
            Service::AuthMetadata => {
                call_auth_metadata(&self.discovery, rpc, request, extensions).await
            }
            Service::AgentMetadata => {
                call_agent_metadata(&self.agents, rpc, request, extensions).await
            }
        }
    }
}

/// The same dispatch with authentication off (the suites that drive the table directly).
#[derive(Clone)]
pub struct Handlers {
    pub admin: AdminApi,
    pub data_proxy: DataProxy,
}

impl Handlers {
    /// These services behind a gate with authentication off: every call allowed, as before.
    pub fn gated(&self) -> GatedHandlers {
        let store = self.admin.store().clone();
        let gate = Gate::new(crate::auth::Auth::off(store.clone()), store);
        GatedHandlers::new(self.admin.clone(), self.data_proxy.clone(), gate)
    }

    /// [`GatedHandlers::call`] with no caller (authentication is off).
    pub async fn call(
        &self,
        service: Service,
        rpc: &str,
        request: &[u8],
    ) -> Option<Result<Vec<u8>, Status>> {
        self.gated()
            .call(service, rpc, request, &Extensions::new())
            .await
    }
}

macro_rules! dispatch_table {
    ($function:ident, $service:ident, $implementation:ty, [$($rpc:ident),* $(,)?]) => {
        async fn $function(
            handler: &$implementation,
            rpc: &str,
            request: &[u8],
            extensions: &Extensions,
        ) -> Option<Result<Vec<u8>, Status>> {
            match rpc {
                $(
                    stringify!($rpc) => Some(
                        async {
                            let req = Message::decode(request).map_err(|e| {
                                Status::invalid_argument(format!(
                                    "{} request cannot be decoded: {e}",
                                    stringify!($rpc)
                                ))
                            })?;
                            let mut req = Request::new(req);
                            *req.extensions_mut() = extensions.clone();
                            let resp = $service::$rpc(handler, req).await?;
                            Ok(resp.into_inner().encode_to_vec())
                        }
                        .await,
                    ),
                )*
                _ => None,
            }
        }
    };
}

// Every RPC of each service, routed or not (the gateway only reaches the routed ones); those
// Alula has not implemented answer UNIMPLEMENTED through the trait, which becomes a 501.
dispatch_table!(
    call_admin,
    AdminService,
    Guarded<AdminApi>,
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
        get_execution_metrics,
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
    ]
);

dispatch_table!(
    call_agent_metadata,
    AgentMetadataService,
    Guarded<AgentMetadataProxy>,
    [get_agent, list_agents]
);

dispatch_table!(
    call_data_proxy,
    DataProxyService,
    Guarded<DataProxy>,
    [
        create_upload_location,
        create_download_location,
        create_download_link,
        get_data,
    ]
);

dispatch_table!(
    call_signal,
    SignalService,
    Guarded<AdminApi>,
    [get_or_create_signal, list_signals, set_signal,]
);

dispatch_table!(
    call_identity,
    IdentityService,
    Guarded<Discovery>,
    [user_info]
);

dispatch_table!(
    call_auth_metadata,
    AuthMetadataService,
    Guarded<Discovery>,
    [get_o_auth2_metadata, get_public_client_config,]
);
