//! The agent plugin against a real gRPC agent server in this process: one CreateTask per
//! attempt across a restart, outputs and errors where the driver reads them, DeleteTask on
//! abort, the sync path, and discovery.

use std::sync::atomic::{AtomicU32, Ordering};

use alula_idl::flyteidl::admin as a;
use alula_idl::flyteidl::core::{
    literal, primitive, scalar, task_execution::Phase, ErrorDocument, Literal, LiteralMap,
    Primitive, Scalar, WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::service::agent_metadata_service_server::{
    AgentMetadataService, AgentMetadataServiceServer,
};
use alula_idl::flyteidl::service::async_agent_service_server::{
    AsyncAgentService, AsyncAgentServiceServer,
};
use alula_idl::flyteidl::service::sync_agent_service_server::{
    SyncAgentService, SyncAgentServiceServer,
};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use super::*;

#[derive(Default)]
struct Counters {
    creates: AtomicU32,
    deletes: AtomicU32,
    /// What GetTask answers: the phase (RUNNING until a test changes it).
    phase: Mutex<i32>,
}

/// The agent's services, sharing its counters with the test.
#[derive(Clone, Default)]
struct FakeAgent(Arc<Counters>);

impl std::ops::Deref for FakeAgent {
    type Target = Counters;
    fn deref(&self) -> &Counters {
        &self.0
    }
}

fn int_outputs(v: i64) -> LiteralMap {
    let lit = Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::Primitive(Primitive {
                value: Some(primitive::Value::Integer(v)),
            })),
        }))),
        ..Default::default()
    };
    LiteralMap {
        literals: [("o0".to_string(), lit)].into(),
    }
}

#[tonic::async_trait]
impl AsyncAgentService for FakeAgent {
    async fn create_task(
        &self,
        request: Request<a::CreateTaskRequest>,
    ) -> Result<Response<a::CreateTaskResponse>, Status> {
        let r = request.into_inner();
        if r.template.is_none() || r.task_execution_metadata.is_none() {
            return Err(Status::invalid_argument(
                "template and metadata are required",
            ));
        }
        let n = self.creates.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Response::new(a::CreateTaskResponse {
            resource_meta: format!("job-{n}").into_bytes(),
        }))
    }

    async fn get_task(
        &self,
        request: Request<a::GetTaskRequest>,
    ) -> Result<Response<a::GetTaskResponse>, Status> {
        let r = request.into_inner();
        if !r.resource_meta.starts_with(b"job-") {
            return Err(Status::not_found("unknown job"));
        }
        let phase = *self.phase.lock().unwrap_or_else(|e| e.into_inner());
        let resource = a::Resource {
            phase,
            message: "the query failed: table missing".into(),
            outputs: (phase == Phase::Succeeded as i32).then(|| int_outputs(42)),
            log_links: vec![alula_idl::flyteidl::core::TaskLog {
                uri: "https://agent.example/job".into(),
                name: "Agent job".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        Ok(Response::new(a::GetTaskResponse {
            resource: Some(resource),
        }))
    }

    async fn delete_task(
        &self,
        _request: Request<a::DeleteTaskRequest>,
    ) -> Result<Response<a::DeleteTaskResponse>, Status> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(a::DeleteTaskResponse {}))
    }

    async fn get_task_metrics(
        &self,
        _request: Request<a::GetTaskMetricsRequest>,
    ) -> Result<Response<a::GetTaskMetricsResponse>, Status> {
        Err(Status::unimplemented("no metrics"))
    }

    type GetTaskLogsStream = futures::stream::Empty<Result<a::GetTaskLogsResponse, Status>>;

    async fn get_task_logs(
        &self,
        _request: Request<a::GetTaskLogsRequest>,
    ) -> Result<Response<Self::GetTaskLogsStream>, Status> {
        Err(Status::unimplemented("no logs"))
    }
}

#[tonic::async_trait]
impl SyncAgentService for FakeAgent {
    type ExecuteTaskSyncStream =
        futures::stream::Iter<std::vec::IntoIter<Result<a::ExecuteTaskSyncResponse, Status>>>;

    async fn execute_task_sync(
        &self,
        request: Request<Streaming<a::ExecuteTaskSyncRequest>>,
    ) -> Result<Response<Self::ExecuteTaskSyncStream>, Status> {
        let mut stream = request.into_inner();
        let mut inputs = None;
        while let Some(part) = stream.message().await? {
            if let Some(a::execute_task_sync_request::Part::Inputs(i)) = part.part {
                inputs = Some(i);
            }
        }
        // Echoes the input x + 1 as o0.
        let x = inputs
            .and_then(|i| i.literals.get("x").cloned())
            .and_then(|l| match l.value {
                Some(literal::Value::Scalar(s)) => match s.value {
                    Some(scalar::Value::Primitive(Primitive {
                        value: Some(primitive::Value::Integer(v)),
                    })) => Some(v),
                    _ => None,
                },
                _ => None,
            })
            .ok_or_else(|| Status::invalid_argument("input x is missing"))?;
        let header = a::ExecuteTaskSyncResponse {
            res: Some(a::execute_task_sync_response::Res::Header(
                a::ExecuteTaskSyncResponseHeader {
                    resource: Some(a::Resource {
                        phase: Phase::Succeeded as i32,
                        outputs: Some(int_outputs(x + 1)),
                        ..Default::default()
                    }),
                },
            )),
        };
        Ok(Response::new(futures::stream::iter(vec![Ok(header)])))
    }
}

#[tonic::async_trait]
impl AgentMetadataService for FakeAgent {
    async fn get_agent(
        &self,
        _request: Request<a::GetAgentRequest>,
    ) -> Result<Response<a::GetAgentResponse>, Status> {
        Err(Status::unimplemented("not needed"))
    }

    async fn list_agents(
        &self,
        _request: Request<a::ListAgentsRequest>,
    ) -> Result<Response<a::ListAgentsResponse>, Status> {
        let agent = |name: &str, sync: bool, category: &str| a::Agent {
            name: name.into(),
            is_sync: sync,
            supported_task_categories: vec![a::TaskCategory {
                name: category.into(),
                version: 0,
            }],
            ..Default::default()
        };
        Ok(Response::new(a::ListAgentsResponse {
            agents: vec![
                agent("Query Agent", false, "query"),
                agent("Echo Agent", true, "echo"),
            ],
        }))
    }
}

/// Serves the fake agent on a free port; answers its endpoint.
async fn serve(agent: FakeAgent) -> String {
    serve_with(agent, None).await
}

/// The same, over TLS with `identity` (certificate and key, PEM) when given.
async fn serve_with(agent: FakeAgent, identity: Option<(String, String)>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let mut server = tonic::transport::Server::builder();
    let scheme = match identity {
        Some((cert, key)) => {
            let tls = tonic::transport::ServerTlsConfig::new()
                .identity(tonic::transport::Identity::from_pem(cert, key));
            server = server.tls_config(tls).expect("tls");
            "https"
        }
        None => "http",
    };
    tokio::spawn(
        server
            .add_service(AsyncAgentServiceServer::new(agent.clone()))
            .add_service(SyncAgentServiceServer::new(agent.clone()))
            .add_service(AgentMetadataServiceServer::new(agent))
            .serve_with_incoming(incoming),
    );
    format!("{scheme}://{addr}")
}

fn config(endpoint: &str) -> AgentPluginConfig {
    toml::from_str(&format!(
        "poll_interval_ms = 20\n[agents.fake]\nendpoint = \"{endpoint}\"\ntimeout_seconds = 5\n"
    ))
    .expect("config")
}

fn attempt(root: &std::path::Path, task_type: &str, node: &str) -> Attempt {
    let prefix = root.join(format!("metadata/p/d/e/{node}/0"));
    Attempt {
        execution: WorkflowExecutionIdentifier {
            project: "p".into(),
            domain: "d".into(),
            name: "e".into(),
            ..Default::default()
        },
        node_id: node.into(),
        retry_attempt: 0,
        array_index: None,
        task: Arc::new(TaskTemplate {
            r#type: task_type.into(),
            ..Default::default()
        }),
        overrides: None,
        inputs: Arc::new(LiteralMap {
            literals: int_outputs(1)
                .literals
                .into_values()
                .map(|v| ("x".to_string(), v))
                .collect(),
        }),
        inputs_path: prefix.join("inputs.pb"),
        output_prefix: prefix.clone(),
        raw_output_prefix: root.join("raw"),
        checkpoint_prefix: prefix.join("_flytecheckpoints"),
        prev_checkpoint_prefix: None,
        env: Default::default(),
        settings: Default::default(),
    }
}

async fn ended(
    plugin: &AgentPlugin,
    attempt: &Attempt,
    rx: &mut mpsc::UnboundedReceiver<u64>,
) -> AttemptStatus {
    let waker = || Waker::new(mpsc::unbounded_channel().0, 1);
    for _ in 0..200 {
        let status = plugin.check(attempt, waker()).await.expect("check");
        if status != AttemptStatus::Running {
            return status;
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), rx.recv()).await;
    }
    panic!("the agent task did not end");
}

#[tokio::test]
async fn an_async_task_is_created_once_across_a_restart_and_its_outputs_land() {
    let fake = FakeAgent::default();
    *fake.phase.lock().expect("lock") = Phase::Running as i32;
    let endpoint = serve(fake.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = Storage::local(dir.path());
    let plugin = AgentPlugin::new(&config(&endpoint), storage.clone()).expect("plugin");
    plugin.discover().await;
    assert!(plugin.can_run(&TaskTemplate {
        r#type: "query".into(),
        ..Default::default()
    }));
    let att = attempt(dir.path(), "query", "n0");
    let (tx, mut rx) = mpsc::unbounded_channel();
    plugin
        .start(&att, Waker::new(tx.clone(), 1))
        .await
        .expect("start");
    assert_eq!(fake.creates.load(Ordering::SeqCst), 1);
    let marker = storage
        .get("metadata/p/d/e/n0/0/agent_task.json")
        .await
        .expect("read")
        .expect("the marker is written before start returns");
    assert!(String::from_utf8_lossy(&marker).contains("\"fake\""));

    // A restarted propeller: a new plugin over the same storage.
    let restarted = AgentPlugin::new(&config(&endpoint), storage.clone()).expect("plugin");
    restarted.discover().await;
    let again = restarted.start(&att, Waker::new(tx.clone(), 1)).await;
    assert!(
        matches!(again, Err(PluginError::AlreadyStarted(_))),
        "{again:?}"
    );
    let status = restarted.check(&att, Waker::new(tx.clone(), 1)).await;
    assert_eq!(status.expect("check"), AttemptStatus::Running);
    *fake.phase.lock().expect("lock") = Phase::Succeeded as i32;
    let status = ended(&restarted, &att, &mut rx).await;
    assert!(
        matches!(
            status,
            AttemptStatus::Exited {
                exit_code: Some(0),
                ..
            }
        ),
        "{status:?}"
    );
    assert_eq!(fake.creates.load(Ordering::SeqCst), 1, "created once");
    let outputs = storage
        .get("metadata/p/d/e/n0/0/outputs.pb")
        .await
        .expect("read")
        .expect("outputs.pb");
    assert_eq!(
        LiteralMap::decode(outputs).expect("decode"),
        int_outputs(42)
    );
    assert_eq!(
        restarted.log_links(&att)[0].uri,
        "https://agent.example/job"
    );
    plugin.finalize(&att).await.expect("finalize");
}

#[tokio::test]
async fn failures_leave_the_agents_message_and_abort_deletes() {
    let fake = FakeAgent::default();
    *fake.phase.lock().expect("lock") = Phase::Failed as i32;
    let endpoint = serve(fake.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = Storage::local(dir.path());
    let plugin = AgentPlugin::new(&config(&endpoint), storage.clone()).expect("plugin");
    plugin.discover().await;
    let att = attempt(dir.path(), "query", "n1");
    let (tx, mut rx) = mpsc::unbounded_channel();
    plugin.start(&att, Waker::new(tx, 1)).await.expect("start");
    let status = ended(&plugin, &att, &mut rx).await;
    assert!(
        matches!(
            status,
            AttemptStatus::Exited {
                exit_code: Some(1),
                ..
            }
        ),
        "{status:?}"
    );
    let doc = storage
        .get("metadata/p/d/e/n1/0/error.pb")
        .await
        .expect("read")
        .expect("error.pb");
    let error = ErrorDocument::decode(doc)
        .expect("decode")
        .error
        .expect("error");
    assert!(error.message.contains("table missing"), "{}", error.message);

    let att = attempt(dir.path(), "query", "n2");
    *fake.phase.lock().expect("lock") = Phase::Running as i32;
    plugin
        .start(&att, Waker::new(mpsc::unbounded_channel().0, 2))
        .await
        .expect("start");
    plugin.abort(&att).await.expect("abort");
    assert_eq!(fake.deletes.load(Ordering::SeqCst), 1);
    // Idempotent, and nothing happens for an attempt never started.
    plugin
        .abort(&attempt(dir.path(), "query", "n3"))
        .await
        .expect("abort");
    assert_eq!(fake.deletes.load(Ordering::SeqCst), 1);
}

/// The plugin discovers the fake agent's two task types and runs a sync `echo` task as node
/// `node`: it succeeds, its outputs (the input doubled) where the driver reads them.
async fn discovers_and_echoes(
    plugin: &AgentPlugin,
    storage: &Storage,
    root: &std::path::Path,
    node: &str,
) {
    plugin.discover().await;
    let types: Vec<String> = plugin.task_types().iter().map(|t| t.to_string()).collect();
    assert_eq!(types, ["echo", "query"]);
    let att = attempt(root, "echo", node);
    let (tx, mut rx) = mpsc::unbounded_channel();
    plugin.start(&att, Waker::new(tx, 1)).await.expect("start");
    let status = ended(plugin, &att, &mut rx).await;
    assert!(
        matches!(
            status,
            AttemptStatus::Exited {
                exit_code: Some(0),
                ..
            }
        ),
        "{status:?}"
    );
    let outputs = storage
        .get(&format!("metadata/p/d/e/{node}/0/outputs.pb"))
        .await
        .expect("read")
        .expect("outputs.pb");
    assert_eq!(LiteralMap::decode(outputs).expect("decode"), int_outputs(2));
}

#[tokio::test]
async fn sync_agents_answer_in_one_call() {
    let fake = FakeAgent::default();
    let endpoint = serve(fake.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = Storage::local(dir.path());
    let plugin = AgentPlugin::new(&config(&endpoint), storage.clone()).expect("plugin");
    discovers_and_echoes(&plugin, &storage, dir.path(), "n4").await;
    assert_eq!(
        fake.creates.load(Ordering::SeqCst),
        0,
        "no CreateTask for sync"
    );
    // A type no agent runs is not this plugin's.
    assert!(!plugin.can_run(&TaskTemplate {
        r#type: "spark".into(),
        ..Default::default()
    }));
}

#[tokio::test]
async fn settings_naming_unknown_agents_fail() {
    let config: AgentPluginConfig = toml::from_str(
        "[agents.a]\nendpoint = \"http://127.0.0.1:1\"\n[agent_for_task_types]\nsensor = \"b\"\n",
    )
    .expect("config");
    let err = AgentPlugin::new(&config, Storage::memory())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("\"b\""), "{err}");
    // https:// with insecure (the default) contradicts itself; TLS asked of an http:// endpoint;
    // a CA file that is missing or holds no certificate; a CA file for plaintext.
    for (settings, refusal) in [
        ("endpoint = \"https://agents.example\"", "insecure = true asks for plaintext"),
        (
            "endpoint = \"http://agents.example\"\ninsecure = false",
            "insecure = false asks for TLS",
        ),
        (
            "endpoint = \"dns:///agents.example:443\"\ninsecure = false\nca_file = \"/nonexistent/ca.pem\"",
            "ca_file",
        ),
        (
            "endpoint = \"http://agents.example\"\nca_file = \"/etc/hostname\"",
            "ca_file is for TLS",
        ),
    ] {
        let config: AgentPluginConfig =
            toml::from_str(&format!("[agents.a]\n{settings}\n")).expect("config");
        let err = AgentPlugin::new(&config, Storage::memory())
            .err()
            .unwrap_or_else(|| panic!("{settings} accepted"));
        assert!(err.to_string().contains(refusal), "{settings}: {err}");
    }
}

/// A CA and a certificate it issued for 127.0.0.1, as PEM: (CA, certificate, key).
fn test_pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("ca");
    let key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&key, &ca)
        .expect("leaf");
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

#[tokio::test]
async fn an_agent_over_tls_is_trusted_through_its_ca_file_only() {
    let (ca, cert, key) = test_pki();
    let fake = FakeAgent::default();
    let endpoint = serve_with(fake.clone(), Some((cert, key))).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("agents-ca.pem");
    std::fs::write(&ca_file, ca).expect("write CA");
    let tls_config = |ca: Option<&std::path::Path>| -> AgentPluginConfig {
        let ca = ca.map_or(String::new(), |p| format!("ca_file = {:?}\n", p));
        toml::from_str(&format!(
            "poll_interval_ms = 20\n[agents.fake]\nendpoint = \"{endpoint}\"\ninsecure = false\ntimeout_seconds = 5\n{ca}"
        ))
        .expect("config")
    };

    // Trusting the agent's CA: discovery and a sync task work over TLS.
    let storage = Storage::local(dir.path());
    let plugin = AgentPlugin::new(&tls_config(Some(&ca_file)), storage.clone()).expect("plugin");
    discovers_and_echoes(&plugin, &storage, dir.path(), "n7").await;

    // Without it the agent's certificate is not trusted: nothing is discovered, and the task,
    // routed to the agent by configuration, never reaches it.
    let mut untrusting = tls_config(None);
    untrusting
        .agent_for_task_types
        .insert("echo".into(), "fake".into());
    let plugin = AgentPlugin::new(&untrusting, storage).expect("plugin");
    plugin.discover().await;
    assert_eq!(plugin.task_types().len(), 1, "only the configured route");
    let att = attempt(dir.path(), "echo", "n8");
    let (tx, _rx) = mpsc::unbounded_channel();
    let err = plugin
        .start(&att, Waker::new(tx, 1))
        .await
        .expect_err("an untrusted agent");
    assert!(matches!(err, PluginError::Transient(_)), "{err:?}");
}
