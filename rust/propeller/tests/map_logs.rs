//! Map task elements' logs: each element's attempt is stored apart and linked from the array
//! node's task event, in the element's external resource (as flytepropeller reports map task
//! elements), and admin's log route serves what the links name.

mod support;

use std::sync::Arc;
use std::time::Duration;

use alula_admin::logs::{log_url, AttemptLogId};
use alula_admin::AdminConfig;
use alula_idl::flyteidl::admin::{
    LaunchPlanCreateRequest, LaunchPlanSpec, TaskCreateRequest, TaskExecutionListRequest, TaskSpec,
    WorkflowCreateRequest, WorkflowSpec,
};
use alula_idl::flyteidl::core::{
    array_node, binding_data, literal_type, node, primitive, scalar, task_execution, task_node,
    task_template, workflow_execution, ArrayNode, Binding, BindingData, BindingDataCollection,
    Container, LiteralType, Node, NodeExecutionIdentifier, NodeMetadata, Primitive, ResourceType,
    Scalar, SimpleType, TaskNode, TaskTemplate, TypedInterface, Variable, VariableMap,
    WorkflowTemplate,
};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_propeller::process::{ProcessConfig, ProcessPlugin};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use support::{execution_id, id, Harness, DOMAIN, PROJECT};
use tower::ServiceExt;

const BASE: &str = "http://alula.test:8088";
/// Element 1 fails; every element prints its index to both streams.
const SCRIPT: &str = "i=$FLYTE_K8S_ARRAY_INDEX; echo out-$i; echo err-$i >&2; test $i != 1";

fn int_list() -> LiteralType {
    LiteralType {
        r#type: Some(literal_type::Type::CollectionType(Box::new(LiteralType {
            r#type: Some(literal_type::Type::Simple(SimpleType::Integer as i32)),
            ..Default::default()
        }))),
        ..Default::default()
    }
}

fn int(i: i64) -> BindingData {
    BindingData {
        value: Some(binding_data::Value::Scalar(Scalar {
            value: Some(scalar::Value::Primitive(Primitive {
                value: Some(primitive::Value::Integer(i)),
            })),
        })),
        union: None,
    }
}

fn element_log(name: &str, index: u32) -> AttemptLogId {
    AttemptLogId {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        node_id: "n0".into(),
        retry_attempt: 0,
        array_index: Some(index),
    }
}

/// Registers a workflow whose node `n0` maps `SCRIPT` over three elements, two of which must
/// succeed; returns its launch plan.
async fn register_map(h: &Harness) -> anyhow::Result<alula_idl::flyteidl::core::Identifier> {
    let task_id = id(ResourceType::Task, "mapped");
    h.api
        .create_task(tonic::Request::new(TaskCreateRequest {
            id: Some(task_id.clone()),
            spec: Some(TaskSpec {
                template: Some(TaskTemplate {
                    id: Some(task_id.clone()),
                    r#type: "python-task".into(),
                    interface: Some(TypedInterface {
                        inputs: Some(VariableMap {
                            variables: [(
                                "x".to_string(),
                                Variable {
                                    r#type: Some(int_list()),
                                    ..Default::default()
                                },
                            )]
                            .into(),
                        }),
                        outputs: Some(VariableMap::default()),
                    }),
                    target: Some(task_template::Target::Container(Container {
                        image: "img".into(),
                        command: ["sh", "-c", SCRIPT].map(String::from).to_vec(),
                        ..Default::default()
                    })),
                    ..Default::default()
                }),
                description: None,
            }),
        }))
        .await?;
    let xs = Binding {
        var: "x".into(),
        binding: Some(BindingData {
            value: Some(binding_data::Value::Collection(BindingDataCollection {
                bindings: (0..3).map(int).collect(),
            })),
            union: None,
        }),
    };
    let inner = Node {
        id: "n0".into(),
        metadata: Some(NodeMetadata {
            name: "mapped".into(),
            ..Default::default()
        }),
        inputs: vec![xs.clone()],
        target: Some(node::Target::TaskNode(TaskNode {
            reference: Some(task_node::Reference::ReferenceId(task_id)),
            ..Default::default()
        })),
        ..Default::default()
    };
    let wf_id = id(ResourceType::Workflow, "map_wf");
    h.api
        .create_workflow(tonic::Request::new(WorkflowCreateRequest {
            id: Some(wf_id.clone()),
            spec: Some(WorkflowSpec {
                template: Some(WorkflowTemplate {
                    id: Some(wf_id.clone()),
                    interface: Some(TypedInterface {
                        inputs: Some(VariableMap::default()),
                        outputs: Some(VariableMap::default()),
                    }),
                    nodes: vec![Node {
                        id: "n0".into(),
                        metadata: Some(NodeMetadata {
                            name: "n0".into(),
                            ..Default::default()
                        }),
                        inputs: vec![xs],
                        target: Some(node::Target::ArrayNode(Box::new(ArrayNode {
                            node: Some(Box::new(inner)),
                            success_criteria: Some(array_node::SuccessCriteria::MinSuccesses(2)),
                            ..Default::default()
                        }))),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }))
        .await?;
    let lp = id(ResourceType::LaunchPlan, "map_wf");
    h.api
        .create_launch_plan(tonic::Request::new(LaunchPlanCreateRequest {
            id: Some(lp.clone()),
            spec: Some(LaunchPlanSpec {
                workflow_id: Some(wf_id),
                ..Default::default()
            }),
        }))
        .await?;
    Ok(lp)
}

#[tokio::test]
async fn map_elements_are_linked_from_the_array_nodes_task_event() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    let lp = register_map(&h).await?;
    let mut config = h.config();
    config.log_base_url = Some(BASE.into());
    let plugin = Arc::new(ProcessPlugin::new(ProcessConfig {
        work_root: h.dir.path().join("work"),
        ..Default::default()
    }));
    let running = h.propeller(vec![plugin], config);
    h.launch("maplogs1", &lp, 0).await?;
    let phase = h.wait_terminal("maplogs1", Duration::from_secs(30)).await?;
    running.stop().await?;
    assert_eq!(phase, workflow_execution::Phase::Succeeded);

    let list = h
        .api
        .list_task_executions(tonic::Request::new(TaskExecutionListRequest {
            node_execution_id: Some(NodeExecutionIdentifier {
                node_id: "n0".into(),
                execution_id: Some(execution_id("maplogs1")),
            }),
            limit: 10,
            ..Default::default()
        }))
        .await?
        .into_inner();
    assert_eq!(list.task_executions.len(), 1, "{list:?}");
    let closure = list.task_executions[0].closure.clone().unwrap_or_default();
    let resources = closure.metadata.unwrap_or_default().external_resources;
    assert_eq!(resources.len(), 3, "{resources:?}");
    for (i, r) in resources.iter().enumerate() {
        let index = i as u32;
        assert_eq!(r.index, index);
        let expected = if index == 1 {
            task_execution::Phase::Failed
        } else {
            task_execution::Phase::Succeeded
        };
        assert_eq!(r.phase, expected as i32, "element {i}");
        let id = element_log("maplogs1", index);
        let links: Vec<(&str, &str)> = r
            .logs
            .iter()
            .map(|l| (l.name.as_str(), l.uri.as_str()))
            .collect();
        assert_eq!(
            links,
            [
                ("stdout", log_url(BASE, &id, "stdout").as_str()),
                ("stderr", log_url(BASE, &id, "stderr").as_str()),
            ],
            "element {i}"
        );
    }

    // Admin's route serves each element's own log at the link's path and query.
    let config = Arc::new(AdminConfig::new(
        h.dir.path().into(),
        BASE.into(),
        b"k".to_vec(),
    ));
    for index in 0..3 {
        for stream in ["stdout", "stderr"] {
            let url = log_url("", &element_log("maplogs1", index), stream);
            let response = alula_admin::logs::router(config.clone(), None)
                .oneshot(Request::get(url.as_str()).body(Body::empty())?)
                .await?;
            assert_eq!(response.status(), StatusCode::OK, "{url}");
            let body = axum::body::to_bytes(response.into_body(), 1 << 20).await?;
            let short = if stream == "stdout" { "out" } else { "err" };
            assert_eq!(
                String::from_utf8_lossy(&body),
                format!("{short}-{index}\n"),
                "{url}"
            );
        }
    }
    Ok(())
}
