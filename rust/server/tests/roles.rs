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
    command_execution(store, dir, name, &["sleep", "3"]).await
}

/// Registers a raw-container task `name` running `command` (a local process, without outputs)
/// and creates execution `name` of it.
async fn command_execution(
    store: &Store,
    dir: &std::path::Path,
    name: &str,
    command: &[&str],
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
        name: name.into(),
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
                    command: command.iter().map(|c| c.to_string()).collect(),
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

/// Polls the execution's phase until it is one of `phases` (bounded).
async fn wait_for_phase(store: &Store, key: &ExecutionKey, phases: &[&str]) -> Result<String> {
    let mut last = String::new();
    for _ in 0..600 {
        if let Some(row) = store.get_execution(key).await? {
            last = row.phase;
            if phases.contains(&last.as_str()) {
                return Ok(last);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{key:?} never reached {phases:?}; last {last:?}")
}

/// Role `propeller` with a `[control_plane]`: no database of its own, it works for an admin in
/// another process over gRPC, authenticated as an OAuth2 client that admin's own token endpoint
/// serves. It drives one execution to SUCCEEDED and another to FAILED (the task's error reaches
/// admin); a propeller whose client is only a developer is refused and claims nothing.
#[tokio::test]
async fn a_propeller_without_a_database_works_for_admin_over_the_network() -> Result<()> {
    use alula_server::remote::ControlPlaneConfig;
    use alula_server::security::{AuthMode, AuthTable, BindingEntry};

    const SECRET: &str = "propeller-secret-0123456789abcdef";
    let admin_dir = tempfile::tempdir()?;
    let mut admin_config = config(admin_dir.path(), Role::Admin, 0);
    let binding = |subject: &str, role: &str| BindingEntry {
        subject: subject.into(),
        project: "*".into(),
        domain: "*".into(),
        role: role.into(),
    };
    admin_config.auth = Some(AuthTable {
        mode: Some(AuthMode::Builtin),
        bindings: Some(vec![
            binding("client:propeller-1", "admin"),
            binding("client:dev", "developer"),
        ]),
        ..Default::default()
    });
    let admin = Running::start(admin_config).await?;
    let grpc = admin.endpoints.grpc.context("admin serves gRPC")?;
    let store = Store::connect(&format!(
        "sqlite://{}?mode=rwc",
        admin_dir.path().join("alula.db").display()
    ))
    .await?;
    for client in ["propeller-1", "dev"] {
        let hash = alula_auth::secret::hash_secret(SECRET);
        assert!(store.create_client(client, &hash, "test").await?);
    }
    let propeller_config = |dir: &std::path::Path, client: &str| {
        let mut c = config(dir, Role::Propeller, 0);
        c.instance_id = Some(format!("remote-{client}"));
        c.control_plane = Some(ControlPlaneConfig {
            endpoint: format!("http://{grpc}"),
            client_id: Some(client.into()),
            client_secret: Some(SECRET.into()),
            ..Default::default()
        });
        c
    };

    let propeller_dir = tempfile::tempdir()?;
    let propeller = Running::start(propeller_config(propeller_dir.path(), "propeller-1")).await?;
    assert!(
        propeller.endpoints.database.starts_with("none"),
        "{:?}",
        propeller.endpoints
    );
    propeller.wait_for_ok("/readyz").await?;
    let ok = command_execution(&store, admin_dir.path(), "remote-ok", &["true"]).await?;
    let failing = command_execution(
        &store,
        admin_dir.path(),
        "remote-fails",
        &["sh", "-c", "echo boom >&2; exit 3"],
    )
    .await?;
    assert_eq!(
        wait_for_phase(&store, &ok, &["SUCCEEDED", "FAILED"]).await?,
        "SUCCEEDED"
    );
    assert_eq!(
        wait_for_phase(&store, &failing, &["SUCCEEDED", "FAILED"]).await?,
        "FAILED"
    );
    // Node and task events went through admin's ingestion, as flytepropeller's would.
    let (_, metrics) = propeller.get("/metrics").await?;
    assert!(
        metrics.contains("alula_propeller_claim_errors_total 0"),
        "{metrics}"
    );
    // It never opened a database.
    assert!(!propeller_dir.path().join("alula.db").exists());
    propeller.stop().await?;

    // A developer is not the data plane: every claim is refused, nothing is leased.
    let dev_dir = tempfile::tempdir()?;
    let dev = Running::start(propeller_config(dev_dir.path(), "dev")).await?;
    let waiting = command_execution(&store, admin_dir.path(), "remote-waits", &["true"]).await?;
    let mut refused = false;
    for _ in 0..200 {
        let (_, metrics) = dev.get("/metrics").await?;
        if !metrics.contains("alula_propeller_claim_errors_total 0") {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "the developer's propeller was never refused");
    let row = store
        .get_execution(&waiting)
        .await?
        .context("the execution")?;
    assert_eq!(row.phase, "QUEUED");
    dev.stop().await?;

    // A control plane is for role propeller only, and excludes a database of its own.
    let mut both = propeller_config(dev_dir.path(), "dev");
    both.database_url = Some("sqlite::memory:".into());
    let refused = alula_server::run(both, std::future::pending(), |_| {})
        .await
        .err()
        .context("a propeller with both a control plane and a database must not start")?;
    assert!(
        format!("{refused:#}").contains("database_url"),
        "{refused:#}"
    );
    let mut admin_too = propeller_config(dev_dir.path(), "dev");
    admin_too.role = Some(Role::All);
    let refused = alula_server::run(admin_too, std::future::pending(), |_| {})
        .await
        .err()
        .context("role all with a control plane must not start")?;
    assert!(
        format!("{refused:#}").contains("[control_plane]"),
        "{refused:#}"
    );

    admin.stop().await?;
    store.close().await;
    Ok(())
}
