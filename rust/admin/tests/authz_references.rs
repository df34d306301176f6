//! A request is admitted on the project it names, but what it uses may be registered
//! elsewhere: launching another project's launch plan, or registering a workflow or launch plan
//! built from another project's definitions, runs that project's code, so it needs the runner
//! role there too. A relaunch or recovery repeats the original's request, so it asks what the
//! original asked (an identity of the launcher's choosing needs the admin role). GetProject
//! answers whoever has a role on any of the project's domains.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use alula_admin::auth::AuthMode;
use alula_auth::{Binding, Role, Subject};
use alula_idl::flyteidl::admin::{
    ExecutionCreateRequest, ExecutionRecoverRequest, ExecutionRelaunchRequest, ExecutionSpec,
    LaunchPlanCreateRequest, LaunchPlanSpec, Project, ProjectGetRequest, ProjectRegisterRequest,
    WorkflowCreateRequest, WorkflowExecutionGetRequest, WorkflowSpec,
};
use alula_idl::flyteidl::core::{
    Identifier, Identity, ResourceType, SecurityContext, SimpleType, WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::service::admin_service_client::AdminServiceClient;
use common::auth::{authorized, token_of};
use common::builders::*;
use common::server::TestServer;
use common::TestDb;
use tonic::transport::Channel;
use tonic::{Code, Status};

const PROJECT: &str = "flytesnacks";
const OTHER: &str = "other";
const DOMAIN: &str = "development";

fn binding(client: &str, project: &str, domain: &str, role: Role) -> Binding {
    Binding {
        subject: Subject::parse(&format!("client:{client}")).unwrap(),
        project: project.into(),
        domain: domain.into(),
        role,
    }
}

fn launch(
    name: &str,
    launch_plan: &Identifier,
    context: Option<SecurityContext>,
) -> ExecutionCreateRequest {
    ExecutionCreateRequest {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        spec: Some(ExecutionSpec {
            launch_plan: Some(launch_plan.clone()),
            security_context: context,
            ..Default::default()
        }),
        inputs: Some(literals(&[("x", int_literal(1))])),
        org: String::new(),
    }
}

fn workflow_request(
    template: alula_idl::flyteidl::core::WorkflowTemplate,
) -> WorkflowCreateRequest {
    WorkflowCreateRequest {
        id: template.id.clone(),
        spec: Some(WorkflowSpec {
            template: Some(template),
            ..Default::default()
        }),
    }
}

fn launch_plan_request(id: Identifier, workflow: &Identifier) -> LaunchPlanCreateRequest {
    LaunchPlanCreateRequest {
        id: Some(id),
        spec: Some(LaunchPlanSpec {
            workflow_id: Some(workflow.clone()),
            ..Default::default()
        }),
    }
}

fn execution_id(name: &str) -> Option<WorkflowExecutionIdentifier> {
    Some(WorkflowExecutionIdentifier {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        org: String::new(),
    })
}

fn denied(result: Result<impl std::fmt::Debug, Status>, naming: &[&str]) {
    let status = result.expect_err("refused");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    for word in naming {
        assert!(status.message().contains(word), "{}", status.message());
    }
}

/// Registers a task, a one-node workflow and a launch plan `<prefix>_lp` in `project`.
async fn register(
    client: &mut AdminServiceClient<Channel>,
    token: &str,
    project: &str,
    prefix: &str,
) -> (Identifier, Identifier, Identifier) {
    let place = |mut id: Identifier| {
        id.project = project.into();
        id
    };
    let mut task = int_task(&format!("{prefix}_t"), "v1", "img");
    task.id = task.id.map(place);
    let task_id = task.id.clone().unwrap();
    client
        .create_task(authorized(task_create_request(task), token))
        .await
        .unwrap();
    let mut workflow =
        one_node_workflow(&format!("{prefix}_wf"), "v1", &task_id, SimpleType::Integer);
    workflow.id = workflow.id.map(place);
    let workflow_id = workflow.id.clone().unwrap();
    client
        .create_workflow(authorized(workflow_request(workflow), token))
        .await
        .unwrap();
    let lp_id = place(id(ResourceType::LaunchPlan, &format!("{prefix}_lp"), "v1"));
    client
        .create_launch_plan(authorized(
            launch_plan_request(lp_id.clone(), &workflow_id),
            token,
        ))
        .await
        .unwrap();
    (task_id, workflow_id, lp_id)
}

#[tokio::test]
async fn what_a_request_uses_from_elsewhere_needs_the_runner_role_there() {
    let db = TestDb::sqlite().await;
    let server = TestServer::start_with(db.store.clone(), |config| {
        config.auth.mode = AuthMode::Builtin;
        config.auth.issuer = config.public_http_url.clone();
        config.auth.bindings = vec![
            binding("owner", "*", "*", Role::Admin),
            binding("dev", PROJECT, "*", Role::Developer),
            binding("dev2", PROJECT, "*", Role::Developer),
            binding("dev2", OTHER, DOMAIN, Role::Runner),
            binding("peek", OTHER, "staging", Role::Viewer),
        ];
    })
    .await;
    let owner = token_of(&server, &db.store, "owner").await;
    let dev = token_of(&server, &db.store, "dev").await;
    let dev2 = token_of(&server, &db.store, "dev2").await;
    let peek = token_of(&server, &db.store, "peek").await;
    let mut client = AdminServiceClient::connect(server.grpc_url.clone())
        .await
        .unwrap();
    client
        .register_project(authorized(
            ProjectRegisterRequest {
                project: Some(Project {
                    id: OTHER.into(),
                    name: OTHER.into(),
                    ..Default::default()
                }),
            },
            &owner,
        ))
        .await
        .unwrap();
    let (other_task, other_wf, other_lp) = register(&mut client, &owner, OTHER, "theirs").await;
    let (_, _, own_lp) = register(&mut client, &dev, PROJECT, "ours").await;

    // Launching another project's launch plan from one's own.
    denied(
        client
            .create_execution(authorized(launch("e1", &other_lp, None), &dev))
            .await,
        &[
            "CreateExecution",
            "theirs_lp",
            "\"other\"",
            "runner",
            "client:dev",
        ],
    );
    client
        .create_execution(authorized(launch("e2", &other_lp, None), &dev2))
        .await
        .unwrap();
    client
        .create_execution(authorized(launch("e3", &own_lp, None), &dev))
        .await
        .unwrap();

    // A workflow of one's own project built from another project's task.
    let borrowing = one_node_workflow("borrowing", "v1", &other_task, SimpleType::Integer);
    denied(
        client
            .create_workflow(authorized(workflow_request(borrowing.clone()), &dev))
            .await,
        &["CreateWorkflow", "theirs_t"],
    );
    client
        .create_workflow(authorized(workflow_request(borrowing), &dev2))
        .await
        .unwrap();
    // A launch plan of one's own project for another project's workflow.
    let lp = id(ResourceType::LaunchPlan, "borrowed_lp", "v1");
    denied(
        client
            .create_launch_plan(authorized(launch_plan_request(lp.clone(), &other_wf), &dev))
            .await,
        &["CreateLaunchPlan", "theirs_wf"],
    );
    client
        .create_launch_plan(authorized(launch_plan_request(lp, &other_wf), &dev2))
        .await
        .unwrap();
    // Nothing refused was made.
    let missing = client
        .get_execution(authorized(
            WorkflowExecutionGetRequest {
                id: execution_id("e1"),
            },
            &owner,
        ))
        .await
        .expect_err("the refused launch made nothing");
    assert_eq!(missing.code(), Code::NotFound);

    // A role on one domain of a project lets one see the project, not others.
    client
        .get_project(authorized(
            ProjectGetRequest {
                id: OTHER.into(),
                org: String::new(),
            },
            &peek,
        ))
        .await
        .unwrap();
    denied(
        client
            .get_project(authorized(
                ProjectGetRequest {
                    id: PROJECT.into(),
                    org: String::new(),
                },
                &peek,
            ))
            .await,
        &["GetProject"],
    );

    drop(server);
    db.finish().await;
}

#[tokio::test]
async fn a_relaunch_asks_what_the_original_asked() {
    let db = TestDb::sqlite().await;
    let server = TestServer::start_with(db.store.clone(), |config| {
        config.auth.mode = AuthMode::Builtin;
        config.auth.issuer = config.public_http_url.clone();
        config.auth.bindings = vec![
            binding("boss", PROJECT, "*", Role::Admin),
            binding("runner", PROJECT, "*", Role::Runner),
        ];
    })
    .await;
    let boss = token_of(&server, &db.store, "boss").await;
    let runner = token_of(&server, &db.store, "runner").await;
    let mut client = AdminServiceClient::connect(server.grpc_url.clone())
        .await
        .unwrap();
    let (_, _, lp) = register(&mut client, &boss, PROJECT, "job").await;
    let special = Some(SecurityContext {
        run_as: Some(Identity {
            k8s_service_account: "special-sa".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    client
        .create_execution(authorized(launch("by-boss", &lp, special), &boss))
        .await
        .unwrap();
    client
        .create_execution(authorized(launch("plain", &lp, None), &boss))
        .await
        .unwrap();

    // The runner cannot repeat the admin's choice of identity, by relaunch or recovery.
    denied(
        client
            .relaunch_execution(authorized(
                ExecutionRelaunchRequest {
                    id: execution_id("by-boss"),
                    name: "again".into(),
                    overwrite_cache: false,
                },
                &runner,
            ))
            .await,
        &["RelaunchExecution", "special-sa", "admin"],
    );
    denied(
        client
            .recover_execution(authorized(
                ExecutionRecoverRequest {
                    id: execution_id("by-boss"),
                    name: "recovered".into(),
                    metadata: None,
                },
                &runner,
            ))
            .await,
        &["RecoverExecution", "special-sa"],
    );
    // A plain execution the runner may relaunch, as itself; the admin may relaunch either.
    client
        .relaunch_execution(authorized(
            ExecutionRelaunchRequest {
                id: execution_id("plain"),
                name: "plain-again".into(),
                overwrite_cache: false,
            },
            &runner,
        ))
        .await
        .unwrap();
    let again = client
        .get_execution(authorized(
            WorkflowExecutionGetRequest {
                id: execution_id("plain-again"),
            },
            &runner,
        ))
        .await
        .unwrap()
        .into_inner();
    let metadata = again.spec.unwrap().metadata.unwrap();
    assert_eq!(metadata.principal, "runner");
    client
        .relaunch_execution(authorized(
            ExecutionRelaunchRequest {
                id: execution_id("by-boss"),
                name: "boss-again".into(),
                overwrite_cache: false,
            },
            &boss,
        ))
        .await
        .unwrap();
    for refused in ["again", "recovered"] {
        let missing = client
            .get_execution(authorized(
                WorkflowExecutionGetRequest {
                    id: execution_id(refused),
                },
                &boss,
            ))
            .await
            .expect_err("a refused relaunch made nothing");
        assert_eq!(missing.code(), Code::NotFound);
    }

    drop(server);
    db.finish().await;
}
