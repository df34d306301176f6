//! Load benchmark of the admin gRPC API: how many registrations and executions per second one
//! in-process server takes from N concurrent tonic clients, on SQLite and PostgreSQL.
//!
//! ```sh
//! cargo run --release -p alula-admin --example admin_load -- \
//!     [--clients 1,4,16] [--seconds 3] [--backend sqlite|postgres|both]
//! ```
//!
//! A benchmark, never a timed test: it prints a table and asserts nothing about speed. Each
//! backend gets a fresh database (a SQLite file in a temporary folder, as `alula start` uses; a
//! new PostgreSQL schema at `ALULA_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`, dropped afterwards). Clients and server share one
//! tokio runtime, so on a small machine they compete for the same cores.
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark binary: a failed setup step should stop it with its message"
)]

// The entity builders the test suites register; one copy of what a valid template looks like.
#[allow(dead_code)]
#[path = "../tests/common/builders.rs"]
mod builders;

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alula_admin::{app, AdminConfig, Store};
use alula_idl::flyteidl::admin::{
    ExecutionCreateRequest, ExecutionSpec, LaunchPlanCreateRequest, LaunchPlanSpec,
    TaskCreateRequest, TaskSpec, WorkflowCreateRequest, WorkflowSpec,
};
use alula_idl::flyteidl::core::{Identifier, ResourceType, SimpleType, WorkflowTemplate};
use alula_idl::flyteidl::service::admin_service_client::AdminServiceClient;
use builders::*;
use sqlx::Executor;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::{Channel, Endpoint};

type BoxError = Box<dyn Error + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Task,
    Workflow,
    Execution,
}

impl Op {
    const ALL: [Op; 3] = [Op::Task, Op::Workflow, Op::Execution];

    fn name(self) -> &'static str {
        match self {
            Op::Task => "CreateTask",
            Op::Workflow => "CreateWorkflow",
            Op::Execution => "CreateExecution",
        }
    }
}

struct Args {
    clients: Vec<usize>,
    seconds: f64,
    backends: Vec<&'static str>,
}

const USAGE: &str =
    "usage: admin_load [--clients 1,4,16] [--seconds 3] [--backend sqlite|postgres|both]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        clients: vec![1, 4, 16],
        seconds: 3.0,
        backends: vec!["sqlite", "postgres"],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_string());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--clients" => {
                args.clients = value
                    .split(',')
                    .map(|n| n.trim().parse::<usize>().ok().filter(|n| *n > 0))
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        format!("--clients takes positive counts (1,4,16), not {value:?}")
                    })?;
            }
            "--seconds" => {
                args.seconds = value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| *s > 0.0)
                    .ok_or_else(|| format!("--seconds takes a positive number, not {value:?}"))?;
            }
            "--backend" => {
                args.backends = match value.as_str() {
                    "sqlite" => vec!["sqlite"],
                    "postgres" => vec!["postgres"],
                    "both" => vec!["sqlite", "postgres"],
                    _ => return Err(format!("--backend is sqlite, postgres or both\n{USAGE}")),
                };
            }
            _ => return Err(format!("unknown argument {flag:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn postgres_url() -> String {
    std::env::var("ALULA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A fresh database for one backend and what must be removed once done.
enum Database {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

async fn open(backend: &str) -> Result<(Store, Database), BoxError> {
    if backend == "sqlite" {
        let dir =
            std::env::temp_dir().join(format!("alula-admin-load-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir)?;
        let url = format!("sqlite://{}?mode=rwc", dir.join("alula.db").display());
        return Ok((Store::connect(&url).await?, Database::Sqlite(dir)));
    }
    sqlx::any::install_default_drivers();
    let schema = format!("alula_load_{:016x}", rand::random::<u64>());
    let admin = sqlx::AnyPool::connect(&postgres_url()).await?;
    admin
        .execute(format!("CREATE SCHEMA {schema}").as_str())
        .await?;
    admin.close().await;
    let url = format!("{}?options=-c%20search_path%3D{schema}", postgres_url());
    Ok((Store::connect(&url).await?, Database::Postgres(schema)))
}

async fn drop_database(db: Database) -> Result<(), BoxError> {
    match db {
        Database::Sqlite(dir) => std::fs::remove_dir_all(dir)?,
        Database::Postgres(schema) => {
            let admin = sqlx::AnyPool::connect(&postgres_url()).await?;
            admin
                .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
                .await?;
            admin.close().await;
        }
    }
    Ok(())
}

/// `wf(x: int) -> int`: `n0 = t(a=x)`, `n1 = t(a=n0.o0)`, returning `n1.o0`.
fn two_node_workflow(version: &str, task: &Identifier) -> WorkflowTemplate {
    let mut wf = one_node_workflow("bench_wf", version, task, SimpleType::Integer);
    wf.nodes
        .push(task_node("n1", task, vec![bind("a", promise("n0", "o0"))]));
    wf.outputs = vec![bind("out", promise("n1", "o0"))];
    wf
}

fn workflow_request(template: WorkflowTemplate) -> WorkflowCreateRequest {
    WorkflowCreateRequest {
        id: template.id.clone(),
        spec: Some(WorkflowSpec {
            template: Some(template),
            ..Default::default()
        }),
    }
}

/// What every operation refers to, registered once per backend before the clock starts.
struct Fixture {
    task: Identifier,
    launch_plan: Identifier,
}

async fn register_fixture(client: &mut AdminServiceClient<Channel>) -> Result<Fixture, BoxError> {
    let template = int_task("bench_task", "base", "img:1");
    let task = template.id.clone().unwrap();
    client
        .create_task(TaskCreateRequest {
            id: template.id.clone(),
            spec: Some(TaskSpec {
                template: Some(template),
                description: None,
            }),
        })
        .await?;
    let wf = two_node_workflow("base", &task);
    let workflow = wf.id.clone().unwrap();
    client.create_workflow(workflow_request(wf)).await?;
    let launch_plan = id(ResourceType::LaunchPlan, "bench_lp", "base");
    client
        .create_launch_plan(LaunchPlanCreateRequest {
            id: Some(launch_plan.clone()),
            spec: Some(LaunchPlanSpec {
                workflow_id: Some(workflow),
                ..Default::default()
            }),
        })
        .await?;
    Ok(Fixture { task, launch_plan })
}

/// One call of `op`; `tag` makes the version or execution name unique across the whole run.
async fn call(
    client: &mut AdminServiceClient<Channel>,
    fixture: &Fixture,
    op: Op,
    tag: &str,
) -> Result<(), tonic::Status> {
    match op {
        Op::Task => {
            let template = int_task("bench_task", tag, "img:1");
            let req = TaskCreateRequest {
                id: template.id.clone(),
                spec: Some(TaskSpec {
                    template: Some(template),
                    description: None,
                }),
            };
            client.create_task(req).await.map(drop)
        }
        Op::Workflow => {
            let req = workflow_request(two_node_workflow(tag, &fixture.task));
            client.create_workflow(req).await.map(drop)
        }
        Op::Execution => {
            let req = ExecutionCreateRequest {
                project: PROJECT.into(),
                domain: DOMAIN.into(),
                name: format!("e{tag}"),
                spec: Some(ExecutionSpec {
                    launch_plan: Some(fixture.launch_plan.clone()),
                    ..Default::default()
                }),
                inputs: Some(literals(&[("x", int_literal(3))])),
                org: String::new(),
            };
            client.create_execution(req).await.map(drop)
        }
    }
}

struct Row {
    backend: &'static str,
    clients: usize,
    op: Op,
    count: usize,
    ops_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank: the smallest latency at least p% of the calls did not exceed.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

/// `clients` tasks, each with its own connection, calling `op` back to back for `seconds`.
/// `round` numbers the client counts in argument order, so `--clients 4,4` registers no version
/// twice.
async fn measure(
    backend: &'static str,
    round: usize,
    channels: &[Channel],
    fixture: &Arc<Fixture>,
    op: Op,
    seconds: f64,
) -> Result<Row, BoxError> {
    let clients = channels.len();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut workers = Vec::with_capacity(clients);
    for (worker, channel) in channels.iter().enumerate() {
        let mut client =
            AdminServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20);
        let fixture = fixture.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                // Lowercase letters, digits and '-': valid as a version and an execution name.
                let tag = format!("r{round}-w{worker}-n{n}");
                let t0 = Instant::now();
                call(&mut client, &fixture, op, &tag).await?;
                latencies.push(t0.elapsed());
                n += 1;
            }
            Ok::<_, tonic::Status>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(
            worker
                .await?
                .map_err(|e| format!("{} failed on {backend}: {e}", op.name()))?,
        );
    }
    // The last calls finish after the deadline; the rate is over the time actually taken.
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Ok(Row {
        backend,
        clients,
        op,
        count: latencies.len(),
        ops_per_sec: latencies.len() as f64 / elapsed,
        p50_ms: percentile_ms(&latencies, 50.0),
        p99_ms: percentile_ms(&latencies, 99.0),
    })
}

/// Runs every op at every client count against a fresh server on `backend`, printing rows as
/// they are measured.
async fn run_backend(backend: &'static str, args: &Args) -> Result<(), BoxError> {
    let (store, db) = open(backend).await?;
    let grpc = TcpListener::bind("127.0.0.1:0").await?;
    let http = TcpListener::bind("127.0.0.1:0").await?;
    let grpc_url = format!("http://{}", grpc.local_addr()?);
    let storage =
        std::env::temp_dir().join(format!("alula-admin-load-{:x}", rand::random::<u64>()));
    let config = AdminConfig::new(
        storage.clone(),
        format!("http://{}", http.local_addr()?),
        b"load-key".to_vec(),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app::serve(
        store.clone(),
        Arc::new(config),
        grpc,
        http,
        async move {
            let _ = stopped.await;
        },
    ));

    let endpoint = Endpoint::from_shared(grpc_url)?.tcp_nodelay(true);
    let mut setup = AdminServiceClient::new(endpoint.connect().await?);
    let fixture = Arc::new(register_fixture(&mut setup).await?);
    for (round, &clients) in args.clients.iter().enumerate() {
        // One HTTP/2 connection per client, as separate `pyflyte register` processes have.
        let mut channels = Vec::with_capacity(clients);
        for _ in 0..clients {
            channels.push(endpoint.connect().await?);
        }
        for op in Op::ALL {
            let row = measure(backend, round, &channels, &fixture, op, args.seconds).await?;
            print_row(&row);
        }
    }

    let _ = stop.send(());
    server.await??;
    store.close().await;
    drop_database(db).await?;
    // Only there if something was uploaded, which the benchmark does not do.
    let _ = std::fs::remove_dir_all(storage);
    Ok(())
}

fn print_header() {
    println!(
        "| {:<8} | {:>7} | {:<15} | {:>7} | {:>8} | {:>7} | {:>7} |",
        "backend", "clients", "op", "count", "ops/s", "p50 ms", "p99 ms"
    );
    println!("|----------|---------|-----------------|---------|----------|---------|---------|");
}

fn print_row(row: &Row) {
    println!(
        "| {:<8} | {:>7} | {:<15} | {:>7} | {:>8.0} | {:>7.2} | {:>7.2} |",
        row.backend,
        row.clients,
        row.op.name(),
        row.count,
        row.ops_per_sec,
        row.p50_ms,
        row.p99_ms
    );
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; pass --release for numbers worth quoting");
    }
    print_header();
    for backend in args.backends.clone() {
        if let Err(e) = run_backend(backend, &args).await {
            eprintln!("admin_load: {backend}: {e}");
            std::process::exit(1);
        }
    }
}
