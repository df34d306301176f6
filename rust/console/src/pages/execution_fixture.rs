//! A real admin API over in-memory SQLite for the execution page's tests: definitions
//! registered and events posted through the service traits, as the data plane would, and the
//! console's router to fetch pages from.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use alula_admin::{AdminApi, AdminConfig, Store};
use alula_idl::flyteidl::admin::{
    self as admin, LaunchPlanCreateRequest, LaunchPlanSpec, NodeExecutionEventRequest,
    TaskCreateRequest, TaskExecutionEventRequest, TaskSpec, WorkflowCreateRequest,
    WorkflowExecutionEventRequest, WorkflowSpec,
};
use alula_idl::flyteidl::core::{
    binding_data, gate_node, literal, literal_type, node, node_execution, primitive, scalar,
    task_execution, task_node, task_template, workflow_execution, ApproveCondition, Binding,
    BindingData, Container, ExecutionError, GateNode, Identifier, Literal, LiteralMap, LiteralType,
    Node, NodeExecutionIdentifier, OutputReference, Primitive, ResourceType, Scalar,
    SignalCondition, SimpleType, TaskLog, TaskNode, TaskTemplate, TypedInterface, Variable,
    VariableMap, WorkflowExecutionIdentifier, WorkflowTemplate,
};
use alula_idl::flyteidl::event::{
    node_execution_event, task_execution_event, workflow_execution_event, NodeExecutionEvent,
    TaskExecutionEvent, WorkflowExecutionEvent,
};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_idl::wkt::Timestamp;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use tower::ServiceExt;

use crate::Api;

pub const PROJECT: &str = "flytesnacks";
pub const DOMAIN: &str = "development";

fn id(kind: ResourceType, name: &str) -> Identifier {
    Identifier {
        resource_type: kind as i32,
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        version: "v1".into(),
        org: String::new(),
    }
}

pub fn exec_id(name: &str) -> WorkflowExecutionIdentifier {
    WorkflowExecutionIdentifier {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        org: String::new(),
    }
}

pub fn int_type() -> LiteralType {
    LiteralType {
        r#type: Some(literal_type::Type::Simple(SimpleType::Integer as i32)),
        ..Default::default()
    }
}

fn vars(names: &[&str]) -> VariableMap {
    VariableMap {
        variables: names
            .iter()
            .map(|n| {
                let var = Variable {
                    r#type: Some(int_type()),
                    ..Default::default()
                };
                (n.to_string(), var)
            })
            .collect(),
    }
}

pub fn int(i: i64) -> Literal {
    Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::Primitive(Primitive {
                value: Some(primitive::Value::Integer(i)),
            })),
        }))),
        ..Default::default()
    }
}

fn promise(node_id: &str, var: &str) -> Binding {
    Binding {
        var: "a".into(),
        binding: Some(BindingData {
            value: Some(binding_data::Value::Promise(OutputReference {
                node_id: node_id.into(),
                var: var.into(),
                attr_path: vec![],
            })),
            ..Default::default()
        }),
    }
}

fn task_node(node_id: &str, upstream: &str, var: &str) -> Node {
    Node {
        id: node_id.into(),
        inputs: vec![promise(upstream, var)],
        target: Some(node::Target::TaskNode(TaskNode {
            reference: Some(task_node::Reference::ReferenceId(id(
                ResourceType::Task,
                "t",
            ))),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// The API and the console's router over a fresh in-memory database, with task `t(a) -> o0`,
/// workflow `chain` of `nodes` tasks (`n0` ← x, `n{i}` ← `n{i-1}`), launch plan `chain`, and
/// workflow `gated` (an approval `g0`) with launch plan `gated`.
pub struct Fixture {
    pub api: Api,
    pub router: Router,
}

impl Fixture {
    pub async fn new(nodes: usize) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let root = std::env::temp_dir().join(format!(
            "alula-console-tests-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let config = Arc::new(AdminConfig::new(
            root,
            "http://127.0.0.1:8088".into(),
            b"test key".to_vec(),
        ));
        let admin = AdminApi::new(store, config.clone());
        admin.ensure_default_projects().await.unwrap();
        let api = Api::new(admin, config);
        let fixture = Self {
            router: crate::router(api.clone()),
            api,
        };
        fixture.register(nodes).await;
        fixture
    }

    async fn register(&self, nodes: usize) {
        let admin = &self.api.admin;
        let task = TaskTemplate {
            id: Some(id(ResourceType::Task, "t")),
            r#type: "python-task".into(),
            interface: Some(TypedInterface {
                inputs: Some(vars(&["a"])),
                outputs: Some(vars(&["o0"])),
            }),
            target: Some(task_template::Target::Container(Container {
                image: "img:1".into(),
                args: vec!["pyflyte-execute".into()],
                ..Default::default()
            })),
            ..Default::default()
        };
        AdminService::create_task(
            admin,
            tonic::Request::new(TaskCreateRequest {
                id: task.id.clone(),
                spec: Some(TaskSpec {
                    template: Some(task),
                    description: None,
                }),
            }),
        )
        .await
        .unwrap();
        let chain_nodes = (0..nodes)
            .map(|i| match i {
                0 => task_node("n0", "start-node", "x"),
                i => task_node(&format!("n{i}"), &format!("n{}", i - 1), "o0"),
            })
            .collect();
        let last = format!("n{}", nodes - 1);
        self.workflow_and_plan("chain", chain_nodes, promise(&last, "o0"))
            .await;
        let gate = Node {
            id: "g0".into(),
            inputs: vec![promise("start-node", "x")],
            target: Some(node::Target::GateNode(GateNode {
                condition: Some(gate_node::Condition::Approve(ApproveCondition {
                    signal_id: "ok-to-go".into(),
                })),
            })),
            ..Default::default()
        };
        self.workflow_and_plan("gated", vec![gate], promise("g0", "a"))
            .await;
        let asks = Node {
            id: "s0".into(),
            target: Some(node::Target::GateNode(GateNode {
                condition: Some(gate_node::Condition::Signal(SignalCondition {
                    signal_id: "how-many".into(),
                    r#type: Some(int_type()),
                    output_variable_name: "o".into(),
                })),
            })),
            ..Default::default()
        };
        self.workflow_and_plan("asks", vec![asks], promise("s0", "o"))
            .await;
    }

    async fn workflow_and_plan(&self, name: &str, nodes: Vec<Node>, output: Binding) {
        let admin = &self.api.admin;
        let mut output = output;
        output.var = "out".into();
        let workflow = WorkflowTemplate {
            id: Some(id(ResourceType::Workflow, name)),
            interface: Some(TypedInterface {
                inputs: Some(vars(&["x"])),
                outputs: Some(vars(&["out"])),
            }),
            nodes,
            outputs: vec![output],
            ..Default::default()
        };
        AdminService::create_workflow(
            admin,
            tonic::Request::new(WorkflowCreateRequest {
                id: workflow.id.clone(),
                spec: Some(WorkflowSpec {
                    template: Some(workflow),
                    ..Default::default()
                }),
            }),
        )
        .await
        .unwrap();
        AdminService::create_launch_plan(
            admin,
            tonic::Request::new(LaunchPlanCreateRequest {
                id: Some(id(ResourceType::LaunchPlan, name)),
                spec: Some(LaunchPlanSpec {
                    workflow_id: Some(id(ResourceType::Workflow, name)),
                    ..Default::default()
                }),
            }),
        )
        .await
        .unwrap();
    }

    /// Starts execution `name` of launch plan `plan` with `x = 3`, launched by `principal`.
    pub async fn launch(&self, plan: &str, name: &str) {
        AdminService::create_execution(
            &self.api.admin,
            tonic::Request::new(admin::ExecutionCreateRequest {
                project: PROJECT.into(),
                domain: DOMAIN.into(),
                name: name.into(),
                spec: Some(admin::ExecutionSpec {
                    launch_plan: Some(id(ResourceType::LaunchPlan, plan)),
                    metadata: Some(admin::ExecutionMetadata {
                        principal: "ada@example.com".into(),
                        ..Default::default()
                    }),
                    labels: Some(admin::Labels {
                        values: [("team".to_string(), "ml".to_string())].into(),
                    }),
                    ..Default::default()
                }),
                inputs: Some(LiteralMap {
                    literals: [("x".to_string(), int(3))].into(),
                }),
                org: String::new(),
            }),
        )
        .await
        .unwrap();
    }

    pub async fn workflow_event(
        &self,
        name: &str,
        phase: workflow_execution::Phase,
        t: i64,
        error: Option<&str>,
    ) {
        let output_result =
            error.map(|m| workflow_execution_event::OutputResult::Error(error_of(m)));
        AdminService::create_workflow_event(
            &self.api.admin,
            tonic::Request::new(WorkflowExecutionEventRequest {
                request_id: String::new(),
                event: Some(WorkflowExecutionEvent {
                    execution_id: Some(exec_id(name)),
                    producer_id: "propeller".into(),
                    phase: phase as i32,
                    occurred_at: at(t),
                    output_result,
                }),
            }),
        )
        .await
        .unwrap();
    }

    pub async fn node_event(
        &self,
        name: &str,
        node: &str,
        phase: node_execution::Phase,
        t: i64,
        error: Option<&str>,
    ) {
        let output_result = error.map(|m| node_execution_event::OutputResult::Error(error_of(m)));
        let input_value = (phase == node_execution::Phase::Running).then(|| {
            node_execution_event::InputValue::InputData(LiteralMap {
                literals: [("a".to_string(), int(3))].into(),
            })
        });
        AdminService::create_node_event(
            &self.api.admin,
            tonic::Request::new(NodeExecutionEventRequest {
                request_id: String::new(),
                event: Some(NodeExecutionEvent {
                    id: Some(NodeExecutionIdentifier {
                        node_id: node.into(),
                        execution_id: Some(exec_id(name)),
                    }),
                    producer_id: "propeller".into(),
                    phase: phase as i32,
                    occurred_at: at(t),
                    spec_node_id: node.into(),
                    input_value,
                    output_result,
                    ..Default::default()
                }),
            }),
        )
        .await
        .unwrap();
    }

    pub async fn task_event(
        &self,
        name: &str,
        node: &str,
        retry: u32,
        phase: task_execution::Phase,
        t: i64,
        error: Option<&str>,
    ) {
        let output_result = error.map(|m| task_execution_event::OutputResult::Error(error_of(m)));
        let logs = vec![
            TaskLog {
                uri: format!("https://logs.example/{node}/{retry}"),
                name: "Pod logs".into(),
                ..Default::default()
            },
            TaskLog {
                uri: "javascript:alert(1)".into(),
                name: "Sneaky".into(),
                ..Default::default()
            },
        ];
        AdminService::create_task_event(
            &self.api.admin,
            tonic::Request::new(TaskExecutionEventRequest {
                request_id: String::new(),
                event: Some(TaskExecutionEvent {
                    task_id: Some(id(ResourceType::Task, "t")),
                    parent_node_execution_id: Some(NodeExecutionIdentifier {
                        node_id: node.into(),
                        execution_id: Some(exec_id(name)),
                    }),
                    retry_attempt: retry,
                    phase: phase as i32,
                    phase_version: 0,
                    producer_id: "propeller".into(),
                    occurred_at: at(t),
                    logs,
                    output_result,
                    ..Default::default()
                }),
            }),
        )
        .await
        .unwrap();
    }

    pub async fn execution(&self, name: &str) -> admin::Execution {
        AdminService::get_execution(
            &self.api.admin,
            tonic::Request::new(admin::WorkflowExecutionGetRequest {
                id: Some(exec_id(name)),
            }),
        )
        .await
        .unwrap()
        .into_inner()
    }

    pub async fn get(&self, uri: &str) -> (StatusCode, String) {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post(&self, uri: &str, content_type: &str, body: &str) -> (StatusCode, String) {
        let request = Request::post(uri)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(request).await
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, String) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }
}

fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: 1_700_000_000 + seconds,
        nanos: 0,
    })
}

fn error_of(message: &str) -> ExecutionError {
    ExecutionError {
        code: "USER:Boom".into(),
        message: message.into(),
        kind: 1,
        ..Default::default()
    }
}
