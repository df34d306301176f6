//! Matchable attributes through a real gRPC client, on both backends.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use alula_admin::Store;
use alula_idl::flyteidl::admin::{
    self as admin, matching_attributes::Target, ExecutionClusterLabel, MatchableResource,
    MatchingAttributes, TaskResourceAttributes, TaskResourceSpec,
};
use alula_idl::flyteidl::service::admin_service_client::AdminServiceClient;
use common::builders::{DOMAIN, PROJECT};
use common::server::TestServer;
use tonic::transport::Channel;
use tonic::Code;

/// A cluster label (a type executions honour; unsupported ones are refused, see below).
fn label(value: &str) -> MatchingAttributes {
    MatchingAttributes {
        target: Some(Target::ExecutionClusterLabel(ExecutionClusterLabel {
            value: value.into(),
        })),
    }
}

fn task_resources(cpu: &str) -> MatchingAttributes {
    MatchingAttributes {
        target: Some(Target::TaskResourceAttributes(TaskResourceAttributes {
            defaults: Some(TaskResourceSpec {
                cpu: cpu.into(),
                ..Default::default()
            }),
            limits: None,
        })),
    }
}

async fn client(s: &TestServer) -> AdminServiceClient<Channel> {
    AdminServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap()
}

async fn set_workflow(c: &mut AdminServiceClient<Channel>, workflow: &str, m: MatchingAttributes) {
    c.update_workflow_attributes(admin::WorkflowAttributesUpdateRequest {
        attributes: Some(admin::WorkflowAttributes {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            workflow: workflow.into(),
            matching_attributes: Some(m),
            org: String::new(),
        }),
    })
    .await
    .unwrap();
}

fn get_workflow_req(workflow: &str, rt: MatchableResource) -> admin::WorkflowAttributesGetRequest {
    admin::WorkflowAttributesGetRequest {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        workflow: workflow.into(),
        resource_type: rt as i32,
        org: String::new(),
    }
}

async fn levels_are_stored_replaced_and_deleted(store: Store) {
    let s = TestServer::start(store).await;
    let mut c = client(&s).await;

    c.update_project_attributes(admin::ProjectAttributesUpdateRequest {
        attributes: Some(admin::ProjectAttributes {
            project: PROJECT.into(),
            matching_attributes: Some(label("p")),
            org: String::new(),
        }),
    })
    .await
    .unwrap();
    c.update_project_domain_attributes(admin::ProjectDomainAttributesUpdateRequest {
        attributes: Some(admin::ProjectDomainAttributes {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            matching_attributes: Some(label("pd")),
            org: String::new(),
        }),
    })
    .await
    .unwrap();
    set_workflow(&mut c, "wf", label("first")).await;
    // An update replaces the stored value.
    set_workflow(&mut c, "wf", label("wf")).await;
    set_workflow(&mut c, "wf", task_resources("2")).await;

    let got = c
        .get_workflow_attributes(get_workflow_req(
            "wf",
            MatchableResource::ExecutionClusterLabel,
        ))
        .await
        .unwrap()
        .into_inner()
        .attributes
        .unwrap();
    assert_eq!(got.workflow, "wf");
    assert_eq!(got.matching_attributes, Some(label("wf")));
    let got = c
        .get_workflow_attributes(get_workflow_req("wf", MatchableResource::TaskResource))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        got.attributes.unwrap().matching_attributes,
        Some(task_resources("2"))
    );

    let pd = c
        .get_project_domain_attributes(admin::ProjectDomainAttributesGetRequest {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            resource_type: MatchableResource::ExecutionClusterLabel as i32,
            org: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        pd.attributes.unwrap().matching_attributes,
        Some(label("pd"))
    );
    let p = c
        .get_project_attributes(admin::ProjectAttributesGetRequest {
            project: PROJECT.into(),
            resource_type: MatchableResource::ExecutionClusterLabel as i32,
            org: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.attributes.unwrap().matching_attributes, Some(label("p")));

    let listed = c
        .list_matchable_attributes(admin::ListMatchableAttributesRequest {
            resource_type: MatchableResource::ExecutionClusterLabel as i32,
            org: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .configurations;
    let levels: Vec<(&str, &str, &str)> = listed
        .iter()
        .map(|c| (c.project.as_str(), c.domain.as_str(), c.workflow.as_str()))
        .collect();
    assert_eq!(
        levels,
        vec![
            (PROJECT, "", ""),
            (PROJECT, DOMAIN, ""),
            (PROJECT, DOMAIN, "wf")
        ]
    );
    assert_eq!(listed[2].attributes, Some(label("wf")));

    c.delete_workflow_attributes(admin::WorkflowAttributesDeleteRequest {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        workflow: "wf".into(),
        resource_type: MatchableResource::ExecutionClusterLabel as i32,
        org: String::new(),
    })
    .await
    .unwrap();
    let err = c
        .get_workflow_attributes(get_workflow_req(
            "wf",
            MatchableResource::ExecutionClusterLabel,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.message().contains("EXECUTION_CLUSTER_LABEL"),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("workflow \"wf\""),
        "{}",
        err.message()
    );
    // The other resource type at the same level is untouched.
    c.get_workflow_attributes(get_workflow_req("wf", MatchableResource::TaskResource))
        .await
        .unwrap();
}

async fn invalid_requests_are_refused(store: Store) {
    let s = TestServer::start(store).await;
    let mut c = client(&s).await;
    let err = c
        .update_workflow_attributes(admin::WorkflowAttributesUpdateRequest {
            attributes: Some(admin::WorkflowAttributes {
                project: PROJECT.into(),
                domain: DOMAIN.into(),
                workflow: "wf".into(),
                matching_attributes: Some(MatchingAttributes { target: None }),
                org: String::new(),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("matching_attributes"),
        "{}",
        err.message()
    );

    let err = c
        .update_project_attributes(admin::ProjectAttributesUpdateRequest {
            attributes: Some(admin::ProjectAttributes {
                project: "nowhere".into(),
                matching_attributes: Some(label("x")),
                org: String::new(),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("nowhere"), "{}", err.message());

    let err = c
        .get_workflow_attributes(admin::WorkflowAttributesGetRequest {
            resource_type: 42,
            ..get_workflow_req("wf", MatchableResource::TaskResource)
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("resource_type 42"),
        "{}",
        err.message()
    );

    let err = c
        .delete_project_attributes(admin::ProjectAttributesDeleteRequest {
            project: PROJECT.into(),
            resource_type: MatchableResource::PluginOverride as i32,
            org: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.message().contains("PLUGIN_OVERRIDE"),
        "{}",
        err.message()
    );
}

on_both_backends!(
    levels_are_stored_replaced_and_deleted,
    invalid_requests_are_refused,
);
