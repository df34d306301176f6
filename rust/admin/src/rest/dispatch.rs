//! From an RPC name to the `AdminService` handler: the REST gateway calls the very trait
//! methods gRPC calls, so both transports share validation, codes and messages.

use alula_idl::flyteidl::service::admin_service_server::AdminService;
use prost::Message;
use tonic::{Request, Status};

use crate::service::AdminApi;

macro_rules! dispatch_table {
    ($($rpc:ident),* $(,)?) => {
        /// Calls the RPC named `rpc` (snake case) with an encoded request and returns the encoded
        /// response; `None` when `AdminService` has no RPC of that name.
        pub async fn call(
            api: &AdminApi,
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
                            let resp = AdminService::$rpc(api, Request::new(req)).await?;
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

// Every AdminService RPC; those Alula has not implemented answer UNIMPLEMENTED through the
// trait, which the gateway turns into 501.
dispatch_table! {
    create_task, get_task, list_task_ids, list_tasks,
    create_workflow, get_workflow, list_workflow_ids, list_workflows,
    create_launch_plan, get_launch_plan, get_active_launch_plan, list_active_launch_plans,
    list_launch_plan_ids, list_launch_plans, update_launch_plan,
    create_execution, relaunch_execution, recover_execution, get_execution, update_execution,
    get_execution_data, list_executions, terminate_execution, get_execution_metrics,
    get_node_execution, get_dynamic_node_workflow, list_node_executions,
    list_node_executions_for_task, get_node_execution_data,
    register_project, update_project, get_project, list_projects, get_domains,
    create_workflow_event, create_node_event, create_task_event,
    get_task_execution, list_task_executions, get_task_execution_data,
    update_project_domain_attributes, get_project_domain_attributes,
    delete_project_domain_attributes, update_project_attributes, get_project_attributes,
    delete_project_attributes, update_workflow_attributes, get_workflow_attributes,
    delete_workflow_attributes, list_matchable_attributes,
    list_named_entities, get_named_entity, update_named_entity,
    get_version, get_description_entity, list_description_entities,
}
