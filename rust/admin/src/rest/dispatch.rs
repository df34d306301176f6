//! From a service and RPC name to its handler: the REST gateway calls the very trait methods
//! gRPC calls, so both transports share validation, codes and messages.

use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_idl::flyteidl::service::auth_metadata_service_server::AuthMetadataService;
use alula_idl::flyteidl::service::data_proxy_service_server::DataProxyService;
use alula_idl::flyteidl::service::identity_service_server::IdentityService;
use alula_idl::flyteidl::service::signal_service_server::SignalService;
use prost::Message;
use tonic::{Request, Status};

use super::routes::Service;
use crate::auth::NoAuth;
use crate::dataproxy::DataProxy;
use crate::service::AdminApi;

/// The implementations behind the routes.
#[derive(Clone)]
pub struct Handlers {
    pub admin: AdminApi,
    pub data_proxy: DataProxy,
}

impl Handlers {
    /// Calls `rpc` (snake case) of `service` with an encoded request and returns the encoded
    /// response; `None` when the service has no RPC of that name.
    pub async fn call(
        &self,
        service: Service,
        rpc: &str,
        request: &[u8],
    ) -> Option<Result<Vec<u8>, Status>> {
        match service {
            Service::Admin => call_admin(&self.admin, rpc, request).await,
            Service::DataProxy => call_data_proxy(&self.data_proxy, rpc, request).await,
            Service::Signal => call_signal(&self.admin, rpc, request).await,
            Service::Identity => call_identity(&NoAuth, rpc, request).await,
            Service::AuthMetadata => call_auth_metadata(&NoAuth, rpc, request).await,
        }
    }
}

macro_rules! dispatch_table {
    ($function:ident, $service:ident, $implementation:ty, [$($rpc:ident),* $(,)?]) => {
        async fn $function(
            handler: &$implementation,
            rpc: &str,
            request: &[u8],
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
                            let resp = $service::$rpc(handler, Request::new(req)).await?;
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
    AdminApi,
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
    call_data_proxy,
    DataProxyService,
    DataProxy,
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
    AdminApi,
    [get_or_create_signal, list_signals, set_signal,]
);

dispatch_table!(call_identity, IdentityService, NoAuth, [user_info]);

dispatch_table!(
    call_auth_metadata,
    AuthMetadataService,
    NoAuth,
    [get_o_auth2_metadata, get_public_client_config,]
);
