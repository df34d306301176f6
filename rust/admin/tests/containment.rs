//! Naming the identity a task's pods run as is a project admin's decision: with built-in auth,
//! a developer registering a task (or launch plan, or execution) that names a service account
//! or IAM role gets PERMISSION_DENIED naming it, an admin may, and a developer whose
//! registration names none registers as usual (the account then comes from the project's
//! settings).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use alula_admin::auth::AuthMode;
use alula_auth::{Binding, Role, Subject};
use alula_idl::flyteidl::admin::{
    ExecutionCreateRequest, ExecutionSpec, LaunchPlanCreateRequest, LaunchPlanSpec,
};
use alula_idl::flyteidl::core::{Identity, ResourceType, SecurityContext, SimpleType};
use alula_idl::flyteidl::service::admin_service_client::AdminServiceClient;
use common::auth::{authorized, token_of};
use common::builders::*;
use common::server::TestServer;
use common::TestDb;
use tonic::Code;

const PROJECT: &str = "flytesnacks";
const DOMAIN: &str = "development";

fn run_as(service_account: &str) -> Option<SecurityContext> {
    Some(SecurityContext {
        run_as: Some(Identity {
            k8s_service_account: service_account.into(),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn binding(client: &str, role: Role) -> Binding {
    Binding {
        subject: Subject::parse(&format!("client:{client}")).unwrap(),
        project: PROJECT.into(),
        domain: "*".into(),
        role,
    }
}

#[tokio::test]
async fn naming_a_service_account_needs_the_project_admin_role() {
    let db = TestDb::sqlite().await;
    let server = TestServer::start_with(db.store.clone(), |config| {
        config.auth.mode = AuthMode::Builtin;
        // The server (`alula start`) fills the built-in issuer in from the public URL.
        config.auth.issuer = config.public_http_url.clone();
        config.auth.bindings = vec![
            binding("dev", Role::Developer),
            binding("boss", Role::Admin),
        ];
    })
    .await;
    let developer = token_of(&server, &db.store, "dev").await;
    let admin = token_of(&server, &db.store, "boss").await;
    let mut client = AdminServiceClient::connect(server.grpc_url.clone())
        .await
        .unwrap();

    // A task naming a service account: refused to the developer, with the account named.
    let mut privileged = int_task("privileged", "v1", "img");
    privileged.security_context = run_as("cluster-admin-sa");
    let refused = client
        .create_task(authorized(
            task_create_request(privileged.clone()),
            &developer,
        ))
        .await
        .expect_err("a developer may not pick the task's service account");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("cluster-admin-sa"),
        "{}",
        refused.message()
    );
    assert!(!refused.message().contains(&developer));
    // The same registration by the project's admin goes through.
    client
        .create_task(authorized(task_create_request(privileged), &admin))
        .await
        .unwrap();
    // A developer's task naming no account registers as usual.
    let plain = int_task("plain", "v1", "img");
    let plain_id = plain.id.clone().unwrap();
    client
        .create_task(authorized(task_create_request(plain.clone()), &developer))
        .await
        .unwrap();

    // The same rule for launch plans and executions.
    let workflow = one_node_workflow("wf", "v1", &plain_id, SimpleType::Integer);
    let workflow_id = workflow.id.clone().unwrap();
    client
        .create_workflow(authorized(
            alula_idl::flyteidl::admin::WorkflowCreateRequest {
                id: Some(workflow_id.clone()),
                spec: Some(alula_idl::flyteidl::admin::WorkflowSpec {
                    template: Some(workflow),
                    ..Default::default()
                }),
            },
            &developer,
        ))
        .await
        .unwrap();
    let launch_plan = |name: &str, context: Option<SecurityContext>| LaunchPlanCreateRequest {
        id: Some(id(ResourceType::LaunchPlan, name, "v1")),
        spec: Some(LaunchPlanSpec {
            workflow_id: Some(workflow_id.clone()),
            security_context: context,
            ..Default::default()
        }),
    };
    let refused = client
        .create_launch_plan(authorized(
            launch_plan("lp_sa", run_as("builder-sa")),
            &developer,
        ))
        .await
        .expect_err("a developer may not pick the launch plan's service account");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    client
        .create_launch_plan(authorized(
            launch_plan("lp_sa", run_as("builder-sa")),
            &admin,
        ))
        .await
        .unwrap();
    client
        .create_launch_plan(authorized(launch_plan("lp", None), &developer))
        .await
        .unwrap();

    let execution = |name: &str, context: Option<SecurityContext>| ExecutionCreateRequest {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        spec: Some(ExecutionSpec {
            launch_plan: Some(id(ResourceType::LaunchPlan, "lp", "v1")),
            security_context: context,
            ..Default::default()
        }),
        inputs: Some(literals(&[("x", int_literal(1))])),
        org: String::new(),
    };
    let refused = client
        .create_execution(authorized(execution("e1", run_as("root-sa")), &developer))
        .await
        .expect_err("a developer may not pick the execution's service account");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("root-sa"),
        "{}",
        refused.message()
    );

    drop(server);
    db.finish().await;
}
