//! An execution's settings resolved with Flyte's precedence (request > launch plan > workflow
//! attributes > project-domain attributes > project attributes > server defaults) and stored in
//! its spec, through a real gRPC client, on both backends.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use alula_admin::Store;
use alula_idl::flyteidl::admin::{
    self as admin, matching_attributes::Target, Annotations, Envs, ExecutionQueueAttributes,
    Labels, LaunchPlanCreateRequest, LaunchPlanSpec, MatchingAttributes, PluginOverrides,
    RawOutputDataConfig, TaskCreateRequest, TaskResourceAttributes, TaskResourceSpec, TaskSpec,
    WorkflowCreateRequest, WorkflowExecutionConfig, WorkflowSpec,
};
use alula_idl::flyteidl::core::{
    parameter, Identifier, Identity, KeyValuePair, Parameter, ParameterMap, ResourceType,
    SecurityContext, SimpleType, Variable, WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::service::admin_service_client::AdminServiceClient;
use alula_idl::wkt::BoolValue;
use common::builders::*;
use common::server::TestServer;
use prost::Message;
use tonic::transport::Channel;
use tonic::Code;

type Client = AdminServiceClient<Channel>;

fn labels(kv: &[(&str, &str)]) -> Option<Labels> {
    Some(Labels {
        values: kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
}

fn annotations(kv: &[(&str, &str)]) -> Option<Annotations> {
    Some(Annotations {
        values: kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
}

fn envs(kv: &[(&str, &str)]) -> Option<Envs> {
    Some(Envs {
        values: kv
            .iter()
            .map(|(k, v)| KeyValuePair {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect(),
    })
}

fn service_account(name: &str) -> Option<SecurityContext> {
    Some(SecurityContext {
        run_as: Some(Identity {
            k8s_service_account: name.into(),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn raw(prefix: &str) -> Option<RawOutputDataConfig> {
    Some(RawOutputDataConfig {
        output_location_prefix: prefix.into(),
    })
}

fn execution_id(name: &str) -> WorkflowExecutionIdentifier {
    WorkflowExecutionIdentifier {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        org: String::new(),
    }
}

/// Task `t@v1`, workflow `wf@v1` and launch plan `lp@v1`, whose spec sets labels, envs, a
/// service account, a raw output prefix and max parallelism (and leaves annotations empty).
async fn register(admin: &mut Client) -> (Identifier, Identifier) {
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
    admin
        .create_workflow(WorkflowCreateRequest {
            id: wf.id.clone(),
            spec: Some(WorkflowSpec {
                template: Some(wf.clone()),
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
                workflow_id: wf.id,
                default_inputs: Some(ParameterMap {
                    parameters: [("x".to_string(), x)].into(),
                }),
                labels: labels(&[("from", "lp")]),
                annotations: Some(Annotations::default()),
                envs: envs(&[("LEVEL", "lp")]),
                security_context: service_account("lp-sa"),
                raw_output_data_config: raw("s3://lp-bucket/raw"),
                max_parallelism: 7,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    (lp_id, task_id)
}

fn config(c: WorkflowExecutionConfig) -> MatchingAttributes {
    MatchingAttributes {
        target: Some(Target::WorkflowExecutionConfig(c)),
    }
}

async fn set_project_domain(
    admin: &mut Client,
    m: MatchingAttributes,
) -> Result<(), tonic::Status> {
    admin
        .update_project_domain_attributes(admin::ProjectDomainAttributesUpdateRequest {
            attributes: Some(admin::ProjectDomainAttributes {
                project: PROJECT.into(),
                domain: DOMAIN.into(),
                matching_attributes: Some(m),
                org: String::new(),
            }),
        })
        .await
        .map(|_| ())
}

async fn set_workflow(admin: &mut Client, workflow: &str, m: MatchingAttributes) {
    admin
        .update_workflow_attributes(admin::WorkflowAttributesUpdateRequest {
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

async fn launch(
    admin: &mut Client,
    name: &str,
    target: &Identifier,
    spec: admin::ExecutionSpec,
) -> Result<admin::ExecutionSpec, tonic::Status> {
    let inputs = if target.resource_type == ResourceType::Task as i32 {
        literals(&[("a", int_literal(1))])
    } else {
        literals(&[])
    };
    admin
        .create_execution(admin::ExecutionCreateRequest {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            name: name.into(),
            spec: Some(admin::ExecutionSpec {
                launch_plan: Some(target.clone()),
                ..spec
            }),
            inputs: Some(inputs),
            org: String::new(),
        })
        .await?;
    Ok(get(admin, name).await)
}

async fn get(admin: &mut Client, name: &str) -> admin::ExecutionSpec {
    admin
        .get_execution(admin::WorkflowExecutionGetRequest {
            id: Some(execution_id(name)),
        })
        .await
        .unwrap()
        .into_inner()
        .spec
        .unwrap()
}

async fn settings_follow_flytes_precedence(store: Store) {
    let s = TestServer::start_with(store, |c| {
        c.execution_defaults = WorkflowExecutionConfig {
            max_parallelism: 25,
            security_context: service_account("server-sa"),
            ..Default::default()
        };
    })
    .await;
    let mut admin = AdminServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let (lp, task) = register(&mut admin).await;
    set_project_domain(
        &mut admin,
        config(WorkflowExecutionConfig {
            labels: labels(&[("from", "project-domain")]),
            annotations: annotations(&[("note", "project-domain")]),
            envs: envs(&[("LEVEL", "project-domain")]),
            interruptible: Some(BoolValue { value: true }),
            ..Default::default()
        }),
    )
    .await
    .unwrap();

    // Project-level attributes are merged after the most specific level.
    admin
        .update_project_attributes(admin::ProjectAttributesUpdateRequest {
            attributes: Some(admin::ProjectAttributes {
                project: PROJECT.into(),
                matching_attributes: Some(config(WorkflowExecutionConfig {
                    raw_output_data_config: raw("s3://project/raw"),
                    labels: labels(&[("from", "project")]),
                    ..Default::default()
                })),
                org: String::new(),
            }),
        })
        .await
        .unwrap();

    // No overrides: the launch plan's settings, then the attributes' where it has none.
    let plain = launch(&mut admin, "plain", &lp, Default::default())
        .await
        .unwrap();
    assert_eq!(plain.labels, labels(&[("from", "lp")]));
    assert_eq!(plain.envs, envs(&[("LEVEL", "lp")]));
    assert_eq!(plain.security_context, service_account("lp-sa"));
    assert_eq!(plain.raw_output_data_config, raw("s3://lp-bucket/raw"));
    assert_eq!(plain.max_parallelism, 7);
    assert_eq!(
        plain.annotations,
        annotations(&[("note", "project-domain")])
    );
    assert_eq!(plain.interruptible, Some(BoolValue { value: true }));

    // The request's own settings win over everything.
    let overridden = launch(
        &mut admin,
        "overridden",
        &lp,
        admin::ExecutionSpec {
            labels: labels(&[("from", "request")]),
            envs: envs(&[("LEVEL", "request"), ("EXTRA", "1")]),
            security_context: service_account("request-sa"),
            max_parallelism: 2,
            interruptible: Some(BoolValue { value: false }),
            overwrite_cache: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(overridden.labels, labels(&[("from", "request")]));
    assert_eq!(
        overridden.envs,
        envs(&[("LEVEL", "request"), ("EXTRA", "1")])
    );
    assert_eq!(overridden.security_context, service_account("request-sa"));
    assert_eq!(overridden.max_parallelism, 2);
    assert_eq!(overridden.interruptible, Some(BoolValue { value: false }));
    assert!(overridden.overwrite_cache);
    assert_eq!(overridden.raw_output_data_config, raw("s3://lp-bucket/raw"));

    // Workflow attributes are more specific than project-domain ones.
    set_workflow(
        &mut admin,
        "wf",
        config(WorkflowExecutionConfig {
            annotations: annotations(&[("note", "workflow")]),
            ..Default::default()
        }),
    )
    .await;
    let specific = launch(&mut admin, "specific", &lp, Default::default())
        .await
        .unwrap();
    assert_eq!(specific.annotations, annotations(&[("note", "workflow")]));
    // Taken whole from the workflow level: the project-domain level is not consulted.
    assert_eq!(specific.interruptible, None);

    // A single task has no launch plan: project-domain attributes, then server defaults.
    let single = launch(&mut admin, "single", &task, Default::default())
        .await
        .unwrap();
    assert_eq!(single.envs, envs(&[("LEVEL", "project-domain")]));
    assert_eq!(single.labels, labels(&[("from", "project-domain")]));
    assert_eq!(single.max_parallelism, 25);
    assert_eq!(single.security_context, service_account("server-sa"));
    assert_eq!(single.raw_output_data_config, raw("s3://project/raw"));

    // A relaunch runs with what the original ran with.
    admin
        .relaunch_execution(admin::ExecutionRelaunchRequest {
            id: Some(execution_id("overridden")),
            name: "again".into(),
            overwrite_cache: false,
        })
        .await
        .unwrap();
    let again = get(&mut admin, "again").await;
    assert_eq!(again.labels, overridden.labels);
    assert_eq!(again.envs, overridden.envs);
    assert_eq!(again.security_context, overridden.security_context);
}

async fn unhonoured_settings_are_refused(store: Store) {
    let s = TestServer::start(store).await;
    let mut admin = AdminServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let (lp, _) = register(&mut admin).await;
    for (target, name) in [
        (
            Target::ExecutionQueueAttributes(ExecutionQueueAttributes {
                tags: vec!["gpu".into()],
            }),
            "EXECUTION_QUEUE",
        ),
        (
            Target::PluginOverrides(PluginOverrides::default()),
            "PLUGIN_OVERRIDE",
        ),
        (
            Target::QualityOfService(Default::default()),
            "QUALITY_OF_SERVICE_SPECIFICATION",
        ),
        (
            Target::ClusterResourceAttributes(Default::default()),
            "CLUSTER_RESOURCE",
        ),
        (
            Target::ClusterAssignment(Default::default()),
            "CLUSTER_ASSIGNMENT",
        ),
    ] {
        let err = set_project_domain(
            &mut admin,
            MatchingAttributes {
                target: Some(target),
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{name}");
        assert!(err.message().contains(name), "{}", err.message());
    }
    let err = launch(
        &mut admin,
        "qos",
        &lp,
        admin::ExecutionSpec {
            quality_of_service: Some(Default::default()),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("quality_of_service"),
        "{}",
        err.message()
    );
}

/// TASK_RESOURCE attributes over the server's defaults are stored beside the execution's
/// inputs for propeller, field by field; nothing is stored when nothing is configured.
async fn task_resources_are_resolved_for_propeller(store: Store) {
    let s = TestServer::start_with(store, |c| {
        c.task_resources = TaskResourceAttributes {
            defaults: Some(TaskResourceSpec {
                cpu: "1".into(),
                memory: "1Gi".into(),
                ..Default::default()
            }),
            limits: Some(TaskResourceSpec {
                cpu: "4".into(),
                ..Default::default()
            }),
        };
    })
    .await;
    let mut admin = AdminServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let (lp, _) = register(&mut admin).await;
    let stored = |name: &str| {
        s.storage.join(format!(
            "metadata/{PROJECT}/{DOMAIN}/{name}/task_resources.pb"
        ))
    };
    launch(&mut admin, "server", &lp, Default::default())
        .await
        .unwrap();
    let got = TaskResourceAttributes::decode(std::fs::read(stored("server")).unwrap().as_slice())
        .unwrap();
    assert_eq!(got, s_defaults());

    set_project_domain(
        &mut admin,
        MatchingAttributes {
            target: Some(Target::TaskResourceAttributes(TaskResourceAttributes {
                defaults: Some(TaskResourceSpec {
                    memory: "3Gi".into(),
                    ..Default::default()
                }),
                limits: Some(TaskResourceSpec {
                    memory: "8Gi".into(),
                    ..Default::default()
                }),
            })),
        },
    )
    .await
    .unwrap();
    launch(&mut admin, "attributes", &lp, Default::default())
        .await
        .unwrap();
    let got =
        TaskResourceAttributes::decode(std::fs::read(stored("attributes")).unwrap().as_slice())
            .unwrap();
    let defaults = got.defaults.unwrap();
    assert_eq!(
        (defaults.cpu.as_str(), defaults.memory.as_str()),
        ("1", "3Gi")
    );
    let limits = got.limits.unwrap();
    assert_eq!((limits.cpu.as_str(), limits.memory.as_str()), ("4", "8Gi"));
}

fn s_defaults() -> TaskResourceAttributes {
    TaskResourceAttributes {
        defaults: Some(TaskResourceSpec {
            cpu: "1".into(),
            memory: "1Gi".into(),
            ..Default::default()
        }),
        limits: Some(TaskResourceSpec {
            cpu: "4".into(),
            ..Default::default()
        }),
    }
}

async fn nothing_configured_stores_no_task_resources(store: Store) {
    let s = TestServer::start(store).await;
    let mut admin = AdminServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let (lp, _) = register(&mut admin).await;
    let spec = launch(&mut admin, "bare", &lp, Default::default())
        .await
        .unwrap();
    assert_eq!(spec.max_parallelism, 7);
    let path = s.storage.join(format!(
        "metadata/{PROJECT}/{DOMAIN}/bare/task_resources.pb"
    ));
    assert!(!path.exists(), "{}", path.display());
}

on_both_backends!(
    settings_follow_flytes_precedence,
    unhonoured_settings_are_refused,
    task_resources_are_resolved_for_propeller,
    nothing_configured_stores_no_task_resources,
);
