//! The server's roles end to end: `run()` against a temporary SQLite database, probed over
//! HTTP like a kubelet and a Prometheus scraper would.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::net::SocketAddr;
use std::time::Duration;

use alula_admin::store::{now_micros, ExecutionKey};
use alula_admin::Store;
use alula_server::{Endpoints, FileConfig, Role};
use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server started by `run()`, and the way to stop it.
struct Running {
    endpoints: Endpoints,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<()>>,
}

impl Running {
    async fn start(config: FileConfig) -> Result<Self> {
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = oneshot::channel();
        let task = tokio::spawn(alula_server::run(
            config,
            async {
                let _ = stopped.await;
            },
            move |endpoints| {
                let _ = ready_tx.send(endpoints.clone());
            },
        ));
        let endpoints = ready_rx
            .await
            .context("the server stopped before it was ready")?;
        Ok(Self {
            endpoints,
            stop,
            task,
        })
    }

    async fn get(&self, path: &str) -> Result<(u16, String)> {
        http_get(self.endpoints.http, path).await
    }

    /// Polls `path` until it answers 200 (bounded: a stuck server fails the test).
    async fn wait_for_ok(&self, path: &str) -> Result<String> {
        let mut last = (0, String::new());
        for _ in 0..200 {
            last = self.get(path).await?;
            if last.0 == 200 {
                return Ok(last.1);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("{path} never answered 200; last: {} {}", last.0, last.1)
    }

    async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .context("the server did not stop within 30 s")??
    }
}

/// A one-shot HTTP/1.0 GET: status and body.
async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// A port nothing listens on (bound, then freed).
async fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    Ok(listener.local_addr()?.port())
}

fn config(root: &std::path::Path, role: Role, grpc_port: u16) -> FileConfig {
    FileConfig {
        role: Some(role),
        storage_root: Some(root.to_path_buf()),
        grpc_port: Some(grpc_port),
        http_port: Some(0),
        // No Python workers to spawn: these tests run no task.
        warm_workers: Some(0),
        ..Default::default()
    }
}

#[tokio::test]
async fn propeller_role_serves_probes_and_metrics_but_no_api() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let grpc_port = free_port().await?;
    let server = Running::start(config(dir.path(), Role::Propeller, grpc_port)).await?;
    assert_eq!(server.endpoints.grpc, None);

    assert_eq!(server.get("/healthz").await?.0, 200);
    server.wait_for_ok("/readyz").await?;
    let (status, metrics) = server.get("/metrics").await?;
    assert_eq!(status, 200);
    for series in [
        "alula_propeller_round_seconds_count ",
        "alula_propeller_executions{state=\"driving\"} 0",
        "alula_propeller_executions{state=\"open\"} 0",
        "alula_propeller_attempts_started_total{plugin=\"process\"} 0",
        "alula_propeller_lease_claims_total 0",
    ] {
        assert!(metrics.contains(series), "{series} missing from\n{metrics}");
    }
    assert!(!metrics.contains("grpc_server_handled_total"), "{metrics}");
    // Neither the gRPC port nor the API's HTTP routes are served.
    assert!(TcpStream::connect(("127.0.0.1", grpc_port)).await.is_err());
    assert_eq!(server.get("/api/v1/projects").await?.0, 404);

    server.stop().await
}

#[tokio::test]
async fn admin_role_serves_the_api_and_no_propeller() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Running::start(config(dir.path(), Role::Admin, 0)).await?;
    let grpc = server.endpoints.grpc.context("admin serves gRPC")?;
    TcpStream::connect(grpc).await?;

    assert_eq!(server.get("/healthz").await?.0, 200);
    server.wait_for_ok("/readyz").await?;
    assert_eq!(server.get("/api/v1/projects").await?.0, 200);
    let (status, metrics) = server.get("/metrics").await?;
    assert_eq!(status, 200);
    assert!(metrics.contains("grpc_server_handled_total"), "{metrics}");
    assert!(!metrics.contains("alula_propeller_"), "{metrics}");

    server.stop().await
}

/// An execution the propeller leases and drives: a task that sleeps, so the lease is held while
/// it runs.
async fn sleeping_execution(
    store: &Store,
    dir: &std::path::Path,
    name: &str,
) -> Result<ExecutionKey> {
    use alula_idl::flyteidl::admin::{
        ExecutionCreateRequest, ExecutionSpec, TaskCreateRequest, TaskSpec,
    };
    use alula_idl::flyteidl::core::{
        task_template, Container, Identifier, LiteralMap, ResourceType, TaskTemplate,
        TypedInterface, VariableMap,
    };
    use alula_idl::flyteidl::service::admin_service_server::AdminService;
    let api = alula_admin::AdminApi::new(
        store.clone(),
        std::sync::Arc::new(alula_admin::AdminConfig::new(
            dir.into(),
            "http://unused".into(),
            b"k".to_vec(),
        )),
    );
    api.ensure_default_projects().await?;
    let id = Identifier {
        resource_type: ResourceType::Task as i32,
        project: "flytesnacks".into(),
        domain: "development".into(),
        name: "sleeps".into(),
        version: "v1".into(),
        org: String::new(),
    };
    let empty = || VariableMap {
        variables: Default::default(),
    };
    api.create_task(tonic::Request::new(TaskCreateRequest {
        id: Some(id.clone()),
        spec: Some(TaskSpec {
            template: Some(TaskTemplate {
                id: Some(id.clone()),
                r#type: "raw-container".into(),
                interface: Some(TypedInterface {
                    inputs: Some(empty()),
                    outputs: Some(empty()),
                }),
                target: Some(task_template::Target::Container(Container {
                    image: "img".into(),
                    command: vec!["sleep".into(), "3".into()],
                    ..Default::default()
                })),
                ..Default::default()
            }),
            description: None,
        }),
    }))
    .await?;
    api.create_execution(tonic::Request::new(ExecutionCreateRequest {
        project: "flytesnacks".into(),
        domain: "development".into(),
        name: name.into(),
        spec: Some(ExecutionSpec {
            launch_plan: Some(id),
            ..Default::default()
        }),
        inputs: Some(LiteralMap::default()),
        org: String::new(),
    }))
    .await?;
    Ok(ExecutionKey {
        project: "flytesnacks".into(),
        domain: "development".into(),
        name: name.into(),
    })
}

/// SIGTERM's path: a stopping replica releases its leases, so another one takes its executions
/// over at once instead of after the lease (30 s) expires.
#[tokio::test]
async fn a_stopped_replica_hands_its_executions_over_at_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut cfg = config(dir.path(), Role::Propeller, 0);
    cfg.instance_id = Some("replica-a".into());
    let server = Running::start(cfg).await?;
    let store = Store::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("alula.db").display()
    ))
    .await?;
    let key = sleeping_execution(&store, dir.path(), "handover").await?;

    // Leased by replica-a (its scan runs every second).
    let mut leased = false;
    for _ in 0..200 {
        let (_, metrics) = server.get("/metrics").await?;
        if !metrics.contains("alula_propeller_lease_claims_total 0") {
            leased = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(leased, "replica-a never leased the execution");
    let lease = now_micros() + 30_000_000;
    assert!(
        store
            .claim_runs("replica-b", now_micros(), lease, 10)
            .await?
            .is_empty(),
        "replica-a's lease must keep replica-b away while it runs"
    );

    server.stop().await?;
    let claimed = store
        .claim_runs("replica-b", now_micros(), now_micros() + 30_000_000, 10)
        .await?;
    assert_eq!(
        claimed.iter().map(|r| &r.key).collect::<Vec<_>>(),
        vec![&key]
    );
    store.close().await;
    Ok(())
}
