//! RelaunchExecution and RecoverExecution through a real tonic client, on both backends.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use alula_admin::Store;
use alula_idl::flyteidl::admin::{
    self as admin, execution_metadata::ExecutionMode, ExecutionRecoverRequest,
    ExecutionRelaunchRequest, LaunchPlanCreateRequest, LaunchPlanSpec, TaskCreateRequest, TaskSpec,
    WorkflowCreateRequest, WorkflowSpec,
};
use alula_idl::flyteidl::core::{
    parameter, Identifier, Parameter, ParameterMap, ResourceType, SimpleType, Variable,
    WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::service::admin_service_client::AdminServiceClient;
use common::builders::*;
use common::server::TestServer;
use tonic::transport::Channel;
use tonic::Code;

fn execution_id(name: &str) -> WorkflowExecutionIdentifier {
    WorkflowExecutionIdentifier {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        org: String::new(),
    }
}

/// Registers task `t@v1`, workflow `wf@v1` and launch plan `lp@v1` (input `x` defaults to 5).
async fn register(admin: &mut AdminServiceClient<Channel>) -> Identifier {
    let task = int_task("t", "v1", "img:1");
    let task_id = task.id.clone().unwrap();
    admin
        .create_task(TaskCreateRequest {
            id: task.id.clone(),
            spec: Some(TaskSpec {
                template: Some(task),
                description: None,
            }),
        })
        .await
        .unwrap();
    let wf = one_node_workflow("wf", "v1", &task_id, SimpleType::Integer);
    let wf_id = wf.id.clone().unwrap();
    admin
        .create_workflow(WorkflowCreateRequest {
            id: wf.id.clone(),
            spec: Some(WorkflowSpec {
                template: Some(wf),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let lp_id = id(ResourceType::LaunchPlan, "lp", "v1");
    let x = Parameter {
        var: Some(Variable {
            r#type: Some(simple(SimpleType::Integer)),
            ..Default::default()
        }),
        behavior: Some(parameter::Behavior::Default(int_literal(5))),
    };
    admin
        .create_launch_plan(LaunchPlanCreateRequest {
            id: Some(lp_id.clone()),
            spec: Some(LaunchPlanSpec {
                workflow_id: Some(wf_id),
                default_inputs: Some(ParameterMap {
                    parameters: [("x".to_string(), x)].into(),
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    lp_id
}

async fn get(admin: &mut AdminServiceClient<Channel>, name: &str) -> admin::Execution {
    admin
        .get_execution(admin::WorkflowExecutionGetRequest {
            id: Some(execution_id(name)),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn inputs(
    admin: &mut AdminServiceClient<Channel>,
    name: &str,
) -> admin::WorkflowExecutionGetDataResponse {
    admin
        .get_execution_data(admin::WorkflowExecutionGetDataRequest {
            id: Some(execution_id(name)),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn relaunch_and_recover_copy_the_original(store: Store) {
    let s = TestServer::start(store).await;
    let mut admin = AdminServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let lp_id = register(&mut admin).await;
    admin
        .create_execution(admin::ExecutionCreateRequest {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            name: "orig".into(),
            spec: Some(admin::ExecutionSpec {
                launch_plan: Some(lp_id.clone()),
                ..Default::default()
            }),
            inputs: Some(literals(&[("x", int_literal(7))])),
            org: String::new(),
        })
        .await
        .unwrap();

    // Relaunch under a given name: same launch plan and inputs, mode RELAUNCH, reference set.
    let relaunched = admin
        .relaunch_execution(ExecutionRelaunchRequest {
            id: Some(execution_id("orig")),
            name: "again".into(),
            overwrite_cache: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(relaunched.id, Some(execution_id("again")));
    let again = get(&mut admin, "again").await;
    let spec = again.spec.unwrap();
    assert_eq!(spec.launch_plan, Some(lp_id.clone()));
    assert!(spec.overwrite_cache);
    let metadata = spec.metadata.unwrap();
    assert_eq!(metadata.mode, ExecutionMode::Relaunch as i32);
    assert_eq!(metadata.reference_execution, Some(execution_id("orig")));
    assert_eq!(
        inputs(&mut admin, "again").await.full_inputs,
        Some(literals(&[("x", int_literal(7))]))
    );
    // The original is untouched.
    let orig = get(&mut admin, "orig")
        .await
        .spec
        .unwrap()
        .metadata
        .unwrap();
    assert_eq!(orig.mode, ExecutionMode::Manual as i32);
    assert_eq!(orig.reference_execution, None);

    // Without a name one is generated; a taken name is refused.
    let generated = admin
        .relaunch_execution(ExecutionRelaunchRequest {
            id: Some(execution_id("orig")),
            name: String::new(),
            overwrite_cache: false,
        })
        .await
        .unwrap()
        .into_inner()
        .id
        .unwrap();
    assert_eq!(generated.name.len(), 20);
    assert_ne!(generated.name, "orig");
    let err = admin
        .relaunch_execution(ExecutionRelaunchRequest {
            id: Some(execution_id("orig")),
            name: "again".into(),
            overwrite_cache: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");

    // Recover: mode RECOVERED, reference set, same inputs.
    let recovered = admin
        .recover_execution(ExecutionRecoverRequest {
            id: Some(execution_id("again")),
            name: "recovered".into(),
            metadata: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(recovered.id, Some(execution_id("recovered")));
    let metadata = get(&mut admin, "recovered")
        .await
        .spec
        .unwrap()
        .metadata
        .unwrap();
    assert_eq!(metadata.mode, ExecutionMode::Recovered as i32);
    assert_eq!(metadata.reference_execution, Some(execution_id("again")));
    assert_eq!(
        inputs(&mut admin, "recovered").await.full_inputs,
        Some(literals(&[("x", int_literal(7))]))
    );

    // Unknown and missing references.
    let err = admin
        .recover_execution(ExecutionRecoverRequest {
            id: Some(execution_id("nosuch")),
            name: String::new(),
            metadata: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().contains("nosuch"), "{}", err.message());
    let err = admin
        .relaunch_execution(ExecutionRelaunchRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().contains("missing execution id"),
        "{}",
        err.message()
    );
}

on_both_backends!(relaunch_and_recover_copy_the_original);
