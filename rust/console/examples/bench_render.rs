//! How long the console's heaviest pages take to render against a large database, outside CI:
//! `cargo run --release -p alula-console --example bench_render [-- --executions N --runs N]`.
//!
//! In process, a real `AdminApi` over a SQLite file in a temporary directory holds
//! (a) 100,000 executions in one project (the first through CreateExecution, the rest copies of
//! the row it wrote, inserted through the store in batches, with varied phases, principals and
//! labels), (b) an execution of a 1,000-node workflow with node events for every node and
//! (c) a map node of 100,000 elements whose task event carries the element counts. Then it GETs
//! pages through `alula_console::router` with tower's `oneshot` and prints the median time of
//! each, plus the admin list calls under them. Results: `benchmarks/console.md`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alula_admin::store::ExecutionKey;
use alula_admin::{AdminApi, AdminConfig, Store};
use alula_idl::flyteidl::admin::{
    self as admin, ExecutionClosure, ExecutionCreateRequest, ExecutionMetadata, ExecutionSpec,
    Labels, LaunchPlanCreateRequest, LaunchPlanSpec, NamedEntityIdentifier,
    NodeExecutionEventRequest, ResourceListRequest, TaskCreateRequest, TaskExecutionEventRequest,
    TaskSpec, WorkflowCreateRequest, WorkflowExecutionEventRequest, WorkflowSpec,
};
use alula_idl::flyteidl::core::{
    self as core, binding_data, literal, literal_type, node, primitive, scalar, task_template,
    workflow_execution, ArrayNode, Binding, BindingData, Container, Identifier, Literal,
    LiteralCollection, LiteralMap, LiteralType, Node, NodeExecutionIdentifier, OutputReference,
    ParameterMap, Primitive, ResourceType, Scalar, SimpleType, TaskNode, TaskTemplate,
    TypedInterface, Variable, VariableMap, WorkflowExecutionIdentifier, WorkflowTemplate,
};
use alula_idl::flyteidl::event::{
    NodeExecutionEvent, TaskExecutionEvent, TaskExecutionMetadata, WorkflowExecutionEvent,
};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_idl::wkt::{value, Struct, Timestamp, Value};
use axum::body::Body;
use axum::http::Request;
use prost::Message;
use tower::ServiceExt;

const PROJECT: &str = "flytesnacks";
const DOMAIN: &str = "development";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

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

fn int_type() -> LiteralType {
    LiteralType {
        r#type: Some(literal_type::Type::Simple(SimpleType::Integer as i32)),
        ..Default::default()
    }
}

fn list_type() -> LiteralType {
    LiteralType {
        r#type: Some(literal_type::Type::CollectionType(Box::new(int_type()))),
        ..Default::default()
    }
}

fn vars(vs: &[(&str, LiteralType)]) -> VariableMap {
    VariableMap {
        variables: vs
            .iter()
            .map(|(n, t)| {
                let var = Variable {
                    r#type: Some(t.clone()),
                    ..Default::default()
                };
                (n.to_string(), var)
            })
            .collect(),
    }
}

fn int(i: i64) -> Literal {
    Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::Primitive(Primitive {
                value: Some(primitive::Value::Integer(i)),
            })),
        }))),
        ..Default::default()
    }
}

fn promise(node_id: &str, var: &str) -> BindingData {
    BindingData {
        value: Some(binding_data::Value::Promise(OutputReference {
            node_id: node_id.into(),
            var: var.into(),
            ..Default::default()
        })),
        union: None,
    }
}

fn bind(var: &str, binding: BindingData) -> Binding {
    Binding {
        var: var.into(),
        binding: Some(binding),
    }
}

fn task_node(node_id: &str, task: &Identifier, input: BindingData) -> Node {
    Node {
        id: node_id.into(),
        inputs: vec![bind("a", input)],
        target: Some(node::Target::TaskNode(TaskNode {
            reference: Some(core::task_node::Reference::ReferenceId(task.clone())),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn at(us: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: us / 1_000_000,
        nanos: ((us % 1_000_000) * 1000) as i32,
    })
}

fn exec_id(name: &str) -> WorkflowExecutionIdentifier {
    WorkflowExecutionIdentifier {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        org: String::new(),
    }
}

/// Task `t` (a: int → o0: int), workflow `wide` of `nodes` nodes (chains of 50 fed by the
/// workflow input), workflow `map` mapping `t` over `xs`, and a launch plan for each.
async fn register(api: &AdminApi, nodes: usize) -> Result<Identifier, BoxError> {
    let task_id = id(ResourceType::Task, "t");
    // flytekit registers a mapped task with its interface made of lists, as here.
    let map_task_id = id(ResourceType::Task, "t-mapped");
    for (tid, io) in [(&task_id, int_type()), (&map_task_id, list_type())] {
        let task = TaskTemplate {
            id: Some(tid.clone()),
            r#type: "python-task".into(),
            interface: Some(TypedInterface {
                inputs: Some(vars(&[("a", io.clone())])),
                outputs: Some(vars(&[("o0", io)])),
            }),
            target: Some(task_template::Target::Container(Container {
                image: "img:1".into(),
                args: vec!["pyflyte-execute".into()],
                ..Default::default()
            })),
            ..Default::default()
        };
        AdminService::create_task(
            api,
            tonic::Request::new(TaskCreateRequest {
                id: Some(tid.clone()),
                spec: Some(TaskSpec {
                    template: Some(task),
                    description: None,
                }),
            }),
        )
        .await?;
    }
    let wide_nodes: Vec<Node> = (0..nodes)
        .map(|i| {
            let input = if i % 50 == 0 {
                promise("start-node", "x")
            } else {
                promise(&format!("n{}", i - 1), "o0")
            };
            task_node(&format!("n{i}"), &task_id, input)
        })
        .collect();
    let last = format!("n{}", nodes - 1);
    let map_node = Node {
        id: "n0".into(),
        inputs: vec![bind("a", promise("start-node", "xs"))],
        target: Some(node::Target::ArrayNode(Box::new(ArrayNode {
            node: Some(Box::new(task_node(
                "n0-element",
                &map_task_id,
                promise("start-node", "xs"),
            ))),
            ..Default::default()
        }))),
        ..Default::default()
    };
    let workflows = [
        (
            "wide",
            vars(&[("x", int_type())]),
            wide_nodes,
            promise(&last, "o0"),
            int_type(),
        ),
        (
            "map",
            vars(&[("xs", list_type())]),
            vec![map_node],
            promise("n0", "o0"),
            list_type(),
        ),
    ];
    for (name, inputs, nodes, output, output_type) in workflows {
        let wf_id = id(ResourceType::Workflow, name);
        let template = WorkflowTemplate {
            id: Some(wf_id.clone()),
            interface: Some(TypedInterface {
                inputs: Some(inputs),
                outputs: Some(vars(&[("out", output_type)])),
            }),
            nodes,
            outputs: vec![bind("out", output)],
            ..Default::default()
        };
        AdminService::create_workflow(
            api,
            tonic::Request::new(WorkflowCreateRequest {
                id: Some(wf_id.clone()),
                spec: Some(WorkflowSpec {
                    template: Some(template),
                    ..Default::default()
                }),
            }),
        )
        .await?;
        AdminService::create_launch_plan(
            api,
            tonic::Request::new(LaunchPlanCreateRequest {
                id: Some(id(ResourceType::LaunchPlan, name)),
                spec: Some(LaunchPlanSpec {
                    workflow_id: Some(wf_id),
                    default_inputs: Some(ParameterMap {
                        parameters: Default::default(),
                    }),
                    ..Default::default()
                }),
            }),
        )
        .await?;
    }
    Ok(task_id)
}

async fn launch(
    api: &AdminApi,
    name: &str,
    lp: &str,
    inputs: LiteralMap,
    principal: &str,
    labels: &[(&str, &str)],
) -> Result<(), BoxError> {
    AdminService::create_execution(
        api,
        tonic::Request::new(ExecutionCreateRequest {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            name: name.into(),
            spec: Some(ExecutionSpec {
                launch_plan: Some(id(ResourceType::LaunchPlan, lp)),
                metadata: Some(ExecutionMetadata {
                    principal: principal.into(),
                    ..Default::default()
                }),
                labels: Some(Labels {
                    values: labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                }),
                ..Default::default()
            }),
            inputs: Some(inputs),
            org: String::new(),
        }),
    )
    .await?;
    Ok(())
}

/// (a): one execution through CreateExecution, then `count - 1` copies of its row (new name,
/// creation time, phase, principal and labels) through the store, 5,000 per transaction.
async fn many_executions(api: &AdminApi, store: &Store, count: usize) -> Result<(), BoxError> {
    let inputs = LiteralMap {
        literals: [("x".to_string(), int(1))].into(),
    };
    launch(api, "e000000", "wide", inputs, "user0", &[("team", "t0")]).await?;
    let template = store
        .get_execution(&ExecutionKey {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            name: "e000000".into(),
        })
        .await?
        .ok_or("the created execution is missing")?;
    let spec = ExecutionSpec::decode(template.spec.as_slice())?;
    let closure = ExecutionClosure::decode(template.closure.as_slice())?;
    let phases = [
        workflow_execution::Phase::Succeeded,
        workflow_execution::Phase::Failed,
        workflow_execution::Phase::Running,
        workflow_execution::Phase::Succeeded,
        workflow_execution::Phase::Aborted,
    ];
    let start = template.created_at - count as i64 * 60_000_000;
    let mut batch = Vec::with_capacity(5_000);
    for i in 1..count {
        let mut row = template.clone();
        row.key.name = format!("e{i:06}");
        let phase = phases[i % phases.len()];
        let principal = format!("user{}", i % 20);
        let team = format!("t{}", i % 10);
        let mut spec = spec.clone();
        if let Some(m) = spec.metadata.as_mut() {
            m.principal = principal.clone();
        }
        spec.labels = Some(Labels {
            values: [("team".to_string(), team.clone())].into(),
        });
        let mut closure = closure.clone();
        closure.phase = phase as i32;
        row.created_at = start + i as i64 * 60_000_000;
        row.updated_at = row.created_at + 30_000_000;
        closure.created_at = at(row.created_at);
        closure.updated_at = at(row.updated_at);
        row.phase = phase.as_str_name().to_string();
        row.spec = spec.encode_to_vec();
        row.closure = closure.encode_to_vec();
        row.principal = principal;
        row.tags = vec![("team".to_string(), team)];
        batch.push(row);
        if batch.len() == 5_000 {
            store.insert_executions(&batch).await?;
            batch.clear();
        }
    }
    store.insert_executions(&batch).await?;
    Ok(())
}

async fn workflow_event(
    api: &AdminApi,
    name: &str,
    phase: workflow_execution::Phase,
    t: i64,
) -> Result<(), BoxError> {
    AdminService::create_workflow_event(
        api,
        tonic::Request::new(WorkflowExecutionEventRequest {
            request_id: String::new(),
            event: Some(WorkflowExecutionEvent {
                execution_id: Some(exec_id(name)),
                producer_id: "propeller".into(),
                phase: phase as i32,
                occurred_at: at(t),
                output_result: None,
            }),
        }),
    )
    .await?;
    Ok(())
}

async fn node_event(
    api: &AdminApi,
    exec: &str,
    node: &str,
    phase: core::node_execution::Phase,
    t: i64,
    is_array: bool,
) -> Result<(), BoxError> {
    AdminService::create_node_event(
        api,
        tonic::Request::new(NodeExecutionEventRequest {
            request_id: String::new(),
            event: Some(NodeExecutionEvent {
                id: Some(NodeExecutionIdentifier {
                    node_id: node.into(),
                    execution_id: Some(exec_id(exec)),
                }),
                producer_id: "propeller".into(),
                phase: phase as i32,
                occurred_at: at(t),
                spec_node_id: node.into(),
                is_array,
                ..Default::default()
            }),
        }),
    )
    .await?;
    Ok(())
}

/// (b): the 1,000-node execution, every node RUNNING then SUCCEEDED (the last 10 running).
async fn wide_execution(api: &AdminApi, nodes: usize) -> Result<(), BoxError> {
    use core::node_execution::Phase as N;
    let inputs = LiteralMap {
        literals: [("x".to_string(), int(1))].into(),
    };
    launch(api, "wide", "wide", inputs, "bench", &[]).await?;
    let t0 = alula_admin::store::now_micros();
    workflow_event(api, "wide", workflow_execution::Phase::Running, t0).await?;
    for i in 0..nodes {
        let node = format!("n{i}");
        let t = t0 + i as i64 * 1_000_000;
        node_event(api, "wide", &node, N::Running, t, false).await?;
        if i + 10 < nodes {
            node_event(api, "wide", &node, N::Succeeded, t + 500_000, false).await?;
        }
    }
    Ok(())
}

/// The `custom_info` the engine puts on an array node's task events (see
/// `rust/engine/src/events.rs`): `{"elements": {"total": n, "phases": {NAME: count}}}`.
fn element_counts(counts: &[(&str, u64)]) -> Struct {
    let number = |n: u64| Value {
        kind: Some(value::Kind::NumberValue(n as f64)),
    };
    let object = |fields| Value {
        kind: Some(value::Kind::StructValue(Struct { fields })),
    };
    let total = counts.iter().map(|(_, n)| n).sum();
    let phases = counts
        .iter()
        .map(|(k, n)| (k.to_string(), number(*n)))
        .collect();
    let elements = [
        ("total".to_string(), number(total)),
        ("phases".to_string(), object(phases)),
    ]
    .into();
    Struct {
        fields: [("elements".to_string(), object(elements))].into(),
    }
}

/// (c): a map node over `elements` elements, running, its task event with the counts.
async fn map_execution(api: &AdminApi, elements: usize) -> Result<(), BoxError> {
    let xs = Literal {
        value: Some(literal::Value::Collection(LiteralCollection {
            literals: (0..elements as i64).map(int).collect(),
        })),
        ..Default::default()
    };
    let inputs = LiteralMap {
        literals: [("xs".to_string(), xs)].into(),
    };
    launch(api, "map", "map", inputs, "bench", &[]).await?;
    let t0 = alula_admin::store::now_micros();
    workflow_event(api, "map", workflow_execution::Phase::Running, t0).await?;
    let running = core::node_execution::Phase::Running;
    node_event(api, "map", "n0", running, t0, true).await?;
    let done = elements as u64 * 6 / 10;
    let failed = elements as u64 / 10;
    let counts = [
        ("SUCCEEDED", done),
        ("FAILED", failed),
        ("RUNNING", elements as u64 - done - failed - 1000),
        ("QUEUED", 1000),
    ];
    AdminService::create_task_event(
        api,
        tonic::Request::new(TaskExecutionEventRequest {
            request_id: String::new(),
            event: Some(TaskExecutionEvent {
                task_id: Some(id(ResourceType::Task, "n0")),
                parent_node_execution_id: Some(NodeExecutionIdentifier {
                    node_id: "n0".into(),
                    execution_id: Some(exec_id("map")),
                }),
                phase: core::task_execution::Phase::Running as i32,
                producer_id: "propeller".into(),
                occurred_at: at(t0),
                metadata: Some(TaskExecutionMetadata {
                    plugin_identifier: "container".into(),
                    ..Default::default()
                }),
                task_type: "k8s-array".into(),
                custom_info: Some(element_counts(&counts)),
                event_version: 1,
                ..Default::default()
            }),
        }),
    )
    .await?;
    Ok(())
}

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

/// GETs `path` `runs` times through the console's router; the median in ms and the status.
async fn time_page(
    router: &axum::Router,
    path: &str,
    runs: usize,
) -> Result<(f64, u16, usize), BoxError> {
    let mut samples = Vec::with_capacity(runs);
    let mut status = 0;
    let mut size = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty())?)
            .await?;
        status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        samples.push(started.elapsed());
        size = body.len();
    }
    Ok((median(samples), status, size))
}

/// ListExecutions with `filters` from `offset`, `runs` times: the median in ms.
async fn time_list(
    api: &AdminApi,
    filters: &str,
    offset: usize,
    runs: usize,
) -> Result<(f64, usize), BoxError> {
    let mut samples = Vec::with_capacity(runs);
    let mut returned = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let list = AdminService::list_executions(
            api,
            tonic::Request::new(ResourceListRequest {
                id: Some(NamedEntityIdentifier {
                    project: PROJECT.into(),
                    domain: DOMAIN.into(),
                    ..Default::default()
                }),
                limit: 26,
                token: if offset == 0 {
                    String::new()
                } else {
                    offset.to_string()
                },
                filters: filters.into(),
                sort_by: Some(admin::Sort {
                    key: "created_at".into(),
                    direction: admin::sort::Direction::Descending as i32,
                }),
            }),
        )
        .await?;
        samples.push(started.elapsed());
        returned = list.into_inner().executions.len();
    }
    Ok((median(samples), returned))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let executions = arg("--executions", 100_000);
    let nodes = arg("--nodes", 1_000);
    let elements = arg("--elements", 100_000);
    let runs = arg("--runs", 15);
    let dir = std::env::temp_dir().join(format!(
        "alula-bench-render-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}?mode=rwc", dir.join("admin.db").display());
    let store = Store::connect(&url).await?;
    let config = Arc::new(AdminConfig::new(
        dir.join("storage"),
        "http://localhost:8088".into(),
        b"bench-key".to_vec(),
    ));
    let api = AdminApi::new(store.clone(), config.clone());
    api.ensure_default_projects().await?;
    let started = Instant::now();
    register(&api, nodes).await?;
    println!("registered in {:.1} s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    many_executions(&api, &store, executions).await?;
    println!(
        "(a) {executions} executions in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    wide_execution(&api, nodes).await?;
    println!(
        "(b) {nodes}-node execution with its events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    map_execution(&api, elements).await?;
    println!(
        "(c) map of {elements} elements in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let db_bytes = std::fs::metadata(dir.join("admin.db"))?.len();
    println!("database: {:.0} MB", db_bytes as f64 / 1e6);

    println!("\nListExecutions (26 rows, newest first), median of {runs}:");
    let far = executions.saturating_sub(100);
    for (what, filters, offset) in [
        ("first page", "", 0),
        ("far page", "", far),
        ("phase=FAILED", "eq(phase,FAILED)", 0),
        ("phase=FAILED far", "eq(phase,FAILED)", executions / 5 - 100),
        ("workflow", "eq(workflow.name,wide)", 0),
        ("launch plan", "eq(launch_plan.name,wide)", 0),
        ("user", "eq(user,user7)", 0),
        ("user far", "eq(user,user7)", executions / 20 - 100),
        (
            "label team=t3",
            "eq(execution_tag.key,team)+eq(execution_tag.value,t3)",
            0,
        ),
        (
            "label team=t3 far",
            "eq(execution_tag.key,team)+eq(execution_tag.value,t3)",
            executions / 10 - 100,
        ),
        ("user+phase", "eq(user,user7)+eq(phase,RUNNING)", 0),
    ] {
        let (ms, n) = time_list(&api, filters, offset, runs).await?;
        println!("  {what:<22} {ms:8.2} ms  ({n} rows)");
    }

    let router = alula_console::router(alula_console::Api::new(api.clone(), config));
    let base = format!("/console/projects/{PROJECT}/domains/{DOMAIN}/executions");
    println!("\nconsole pages, median of {runs}:");
    for (what, path) in [
        ("executions list, first page", base.clone()),
        (
            "executions list, far page",
            format!("{base}?token={far}&limit=25"),
        ),
        ("executions list, user filter", format!("{base}?user=user7")),
        (
            "executions list, label filter",
            format!("{base}?label=team%3Dt3"),
        ),
        ("execution, 1,000 nodes", format!("{base}/wide")),
        ("execution, map of 100,000", format!("{base}/map")),
        ("map node elements", format!("{base}/map/nodes/n0/elements")),
    ] {
        match time_page(&router, &path, runs).await {
            Ok((ms, status, size)) => {
                println!("  {what:<32} {ms:8.2} ms  HTTP {status}, {size} bytes  {path}")
            }
            Err(e) => println!("  {what:<32} failed: {e}"),
        }
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
