//! How long the console's heaviest pages take to render against a large database, outside CI:
//! `cargo run --release -p alula-console --example bench_render [-- --executions N --runs N]`.
//!
//! In process, a real `AdminApi` over a SQLite file in a temporary directory holds
//! (a) 100,000 executions in one project (the first through CreateExecution, the rest copies of
//! the row it wrote, inserted through the store in batches, with varied phases, principals and
//! labels), (b) an execution of a 1,000-node workflow with node events for every node and
//! (c) a map node of 100,000 elements whose task event carries the element counts. Then it GETs
//! pages through `alula_console::router` with tower's `oneshot` and prints the median time of
//! each, plus the admin list calls under them. Results: `benchmarks/console.md`. The admin, the
//! builders and the events are the console's test fixture (`tests/fixture`).

use std::time::{Duration, Instant};

use alula_admin::store::ExecutionKey;
use alula_admin::{AdminApi, Store};
use alula_idl::flyteidl::admin::{
    self as admin, ExecutionClosure, ExecutionSpec, Labels, NamedEntityIdentifier,
    ResourceListRequest,
};
use alula_idl::flyteidl::core::{
    self as core, literal, literal_type, node, workflow_execution, ArrayNode, Identifier, Literal,
    LiteralCollection, LiteralType, Node, ResourceType, SimpleType, TypedInterface,
    WorkflowTemplate,
};
use alula_idl::flyteidl::event::TaskExecutionMetadata;
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_idl::wkt::{value, Struct, Value};
use axum::body::Body;
use axum::http::Request;
use prost::Message;
use tower::ServiceExt;

#[path = "../tests/fixture/mod.rs"]
mod fixture;

use fixture::{
    bind, int_literal, launch, literals, micros, node_event, post_node_event, post_task_event,
    post_workflow_event, promise, task_event, typed_vars, v1, workflow_and_plan, workflow_event,
    Console, DOMAIN, PROJECT,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn int_type() -> LiteralType {
    fixture::simple(SimpleType::Integer)
}

fn list_type() -> LiteralType {
    LiteralType {
        r#type: Some(literal_type::Type::CollectionType(Box::new(int_type()))),
        ..Default::default()
    }
}

/// Node `node_id` running `task` on `a` = `input`.
fn task_node(node_id: &str, task: &Identifier, input: core::BindingData) -> Node {
    fixture::task_node(node_id, task, vec![bind("a", input)])
}

/// Task `t` (a: int → o0: int), workflow `wide` of `nodes` nodes (chains of 50 fed by the
/// workflow input), workflow `map` mapping `t` over `xs`, and a launch plan for each.
async fn register(api: &AdminApi, nodes: usize) -> Identifier {
    let task_id = fixture::create_task(api, fixture::int_task("t", "v1", "img:1")).await;
    // flytekit registers a mapped task with its interface made of lists, as here.
    let mut mapped = fixture::int_task("t-mapped", "v1", "img:1");
    mapped.interface = Some(TypedInterface {
        inputs: Some(typed_vars(&[("a", list_type())])),
        outputs: Some(typed_vars(&[("o0", list_type())])),
    });
    let map_task_id = fixture::create_task(api, mapped).await;
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
    let wide = fixture::int_workflow("wide", wide_nodes, promise(&last, "o0"));
    workflow_and_plan(api, wide, vec![]).await;
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
    let map = WorkflowTemplate {
        id: Some(v1(ResourceType::Workflow, "map")),
        interface: Some(TypedInterface {
            inputs: Some(typed_vars(&[("xs", list_type())])),
            outputs: Some(typed_vars(&[("out", list_type())])),
        }),
        nodes: vec![map_node],
        outputs: vec![bind("out", promise("n0", "o0"))],
        ..Default::default()
    };
    workflow_and_plan(api, map, vec![]).await;
    task_id
}

/// Starts execution `name` of launch plan `lp@v1` with `x` = 1, as `principal`.
async fn launch_x(api: &AdminApi, name: &str, lp: &str, principal: &str, labels: &[(&str, &str)]) {
    let inputs = literals(&[("x", int_literal(1))]);
    let lp = v1(ResourceType::LaunchPlan, lp);
    launch(api, &lp, name, inputs, principal, labels).await;
}

/// (a): one execution through CreateExecution, then `count - 1` copies of its row (new name,
/// creation time, phase, principal and labels) through the store, 5,000 per transaction.
async fn many_executions(api: &AdminApi, store: &Store, count: usize) -> Result<(), BoxError> {
    launch_x(api, "e000000", "wide", "user0", &[("team", "t0")]).await;
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
        closure.created_at = micros(row.created_at);
        closure.updated_at = micros(row.updated_at);
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

/// (b): the 1,000-node execution, every node RUNNING then SUCCEEDED (the last 10 running).
async fn wide_execution(api: &AdminApi, nodes: usize) {
    use core::node_execution::Phase as N;
    launch_x(api, "wide", "wide", "bench", &[]).await;
    let t0 = alula_admin::store::now_micros();
    let running = workflow_event("wide", workflow_execution::Phase::Running, micros(t0));
    post_workflow_event(api, running).await;
    for i in 0..nodes {
        let node = format!("n{i}");
        let t = t0 + i as i64 * 1_000_000;
        post_node_event(api, node_event("wide", &node, N::Running, micros(t))).await;
        if i + 10 < nodes {
            let done = node_event("wide", &node, N::Succeeded, micros(t + 500_000));
            post_node_event(api, done).await;
        }
    }
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
async fn map_execution(api: &AdminApi, elements: usize) {
    let xs = Literal {
        value: Some(literal::Value::Collection(LiteralCollection {
            literals: (0..elements as i64).map(int_literal).collect(),
        })),
        ..Default::default()
    };
    let lp = v1(ResourceType::LaunchPlan, "map");
    launch(api, &lp, "map", literals(&[("xs", xs)]), "bench", &[]).await;
    let t0 = alula_admin::store::now_micros();
    let running = workflow_event("map", workflow_execution::Phase::Running, micros(t0));
    post_workflow_event(api, running).await;
    let mut running = node_event(
        "map",
        "n0",
        core::node_execution::Phase::Running,
        micros(t0),
    );
    running.is_array = true;
    post_node_event(api, running).await;
    let done = elements as u64 * 6 / 10;
    let failed = elements as u64 / 10;
    let counts = [
        ("SUCCEEDED", done),
        ("FAILED", failed),
        ("RUNNING", elements as u64 - done - failed - 1000),
        ("QUEUED", 1000),
    ];
    let task = v1(ResourceType::Task, "n0");
    let running = core::task_execution::Phase::Running;
    let mut event = task_event(&task, "map", "n0", 0, running, micros(t0));
    event.metadata = Some(TaskExecutionMetadata {
        plugin_identifier: "container".into(),
        ..Default::default()
    });
    event.task_type = "k8s-array".into();
    event.custom_info = Some(element_counts(&counts));
    event.event_version = 1;
    post_task_event(api, event).await;
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
    let console = Console::over(store.clone(), dir.join("storage")).await;
    let api = console.admin();
    let started = Instant::now();
    register(api, nodes).await;
    println!("registered in {:.1} s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    many_executions(api, &store, executions).await?;
    println!(
        "(a) {executions} executions in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    wide_execution(api, nodes).await;
    println!(
        "(b) {nodes}-node execution with its events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    map_execution(api, elements).await;
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
        let (ms, n) = time_list(api, filters, offset, runs).await?;
        println!("  {what:<22} {ms:8.2} ms  ({n} rows)");
    }

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
        match time_page(&console.router, &path, runs).await {
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
