//! Cache serialization (`cache_serialize=True`) and RecoverExecution through a real admin and
//! propeller with a scripted plugin.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alula_admin::store::{ExecutionKey, NodeExecutionKey};
use alula_idl::flyteidl::admin::{
    node_execution_closure, ExecutionRecoverRequest, NodeExecutionClosure, TaskCreateRequest,
    TaskSpec,
};
use alula_idl::flyteidl::core::{
    literal_type, node_execution, primitive, task_template, workflow_execution, CatalogCacheStatus,
    Container, Identifier, Literal, LiteralMap, LiteralType, ResourceType, SimpleType,
    TaskMetadata, TaskTemplate, TypedInterface, Variable, VariableMap,
};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_propeller::plugin::{Attempt, AttemptStatus, Plugin, PluginError, Waker};
use async_trait::async_trait;
use prost::Message;
use support::{execution_id, id, Harness, DOMAIN, PROJECT};
use tonic::Request;

fn int(v: i64) -> Literal {
    alula_engine::literals::primitive(primitive::Value::Integer(v))
}

/// Every attempt runs for `hold`, then writes `o0` (a new number each time, so a task that
/// ran twice is told from one whose outputs were reused) or fails when scripted to.
struct Scripted {
    hold: Duration,
    /// (execution, node) of every start, with when it came.
    starts: Mutex<Vec<(String, String, Instant)>>,
    /// (execution, node) pairs whose attempts fail.
    fail: Mutex<HashSet<(String, String)>>,
    done: Arc<Mutex<HashSet<String>>>,
    next: AtomicI64,
}

impl Scripted {
    fn new(hold: Duration) -> Arc<Self> {
        Arc::new(Self {
            hold,
            starts: Mutex::default(),
            fail: Mutex::default(),
            done: Arc::default(),
            next: AtomicI64::new(100),
        })
    }

    fn fail(&self, execution: &str, node: &str) {
        self.fail
            .lock()
            .expect("lock")
            .insert((execution.into(), node.into()));
    }

    fn starts(&self) -> Vec<(String, String)> {
        self.starts
            .lock()
            .expect("lock")
            .iter()
            .map(|(e, n, _)| (e.clone(), n.clone()))
            .collect()
    }

    fn fails(&self, attempt: &Attempt) -> bool {
        self.fail
            .lock()
            .expect("lock")
            .contains(&(attempt.execution.name.clone(), attempt.node_id.clone()))
    }
}

#[async_trait]
impl Plugin for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }

    fn can_run(&self, _task: &TaskTemplate) -> bool {
        true
    }

    async fn start(&self, attempt: &Attempt, waker: Waker) -> Result<(), PluginError> {
        self.starts.lock().expect("lock").push((
            attempt.execution.name.clone(),
            attempt.node_id.clone(),
            Instant::now(),
        ));
        let value = self.next.fetch_add(1, Ordering::SeqCst);
        let (hold, done) = (self.hold, self.done.clone());
        let fails = self.fails(attempt);
        let outputs = attempt.output_prefix.join("outputs.pb");
        let name = attempt.unique_name();
        tokio::spawn(async move {
            tokio::time::sleep(hold).await;
            if !fails {
                let map = LiteralMap {
                    literals: [("o0".to_string(), int(value))].into(),
                };
                if let Some(dir) = outputs.parent() {
                    std::fs::create_dir_all(dir).expect("output folder");
                }
                std::fs::write(&outputs, map.encode_to_vec()).expect("outputs.pb");
            }
            done.lock().expect("lock").insert(name);
            waker.wake();
        });
        Ok(())
    }

    async fn check(&self, attempt: &Attempt, _waker: Waker) -> Result<AttemptStatus, PluginError> {
        if !self
            .done
            .lock()
            .expect("lock")
            .contains(&attempt.unique_name())
        {
            return Ok(AttemptStatus::Running);
        }
        Ok(if self.fails(attempt) {
            AttemptStatus::Failed {
                message: "scripted failure".into(),
            }
        } else {
            AttemptStatus::Exited {
                exit_code: Some(0),
                message: String::new(),
            }
        })
    }

    async fn abort(&self, _attempt: &Attempt) -> Result<(), PluginError> {
        Ok(())
    }
}

/// A task without inputs that outputs `o0`; cached (and serialized) when asked.
async fn register(h: &Harness, name: &str, cache: bool) -> anyhow::Result<TaskTemplate> {
    let task_id = id(ResourceType::Task, name);
    let template = TaskTemplate {
        id: Some(task_id.clone()),
        r#type: "python-task".into(),
        interface: Some(TypedInterface {
            inputs: Some(VariableMap::default()),
            outputs: Some(VariableMap {
                variables: [(
                    "o0".to_string(),
                    Variable {
                        r#type: Some(LiteralType {
                            r#type: Some(literal_type::Type::Simple(SimpleType::Integer as i32)),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )]
                .into(),
            }),
        }),
        metadata: Some(TaskMetadata {
            discoverable: cache,
            discovery_version: if cache { "1".into() } else { String::new() },
            cache_serializable: cache,
            ..Default::default()
        }),
        target: Some(task_template::Target::Container(Container {
            image: "img".into(),
            command: vec!["run".into()],
            ..Default::default()
        })),
        ..Default::default()
    };
    h.api
        .create_task(Request::new(TaskCreateRequest {
            id: Some(task_id),
            spec: Some(TaskSpec {
                template: Some(template.clone()),
                description: None,
            }),
        }))
        .await?;
    Ok(template)
}

fn key(name: &str) -> ExecutionKey {
    ExecutionKey {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
    }
}

/// The node executions of `name` that have outputs to show: (node id, phase, o0, cache status).
async fn nodes(h: &Harness, name: &str) -> anyhow::Result<Vec<(String, String, i64, i32)>> {
    let mut out = Vec::new();
    for row in h
        .api
        .store()
        .recoverable_node_executions(&key(name))
        .await?
    {
        let outputs = LiteralMap::decode(row.outputs.as_slice())?;
        let o0 = match outputs
            .literals
            .get("o0")
            .and_then(alula_engine::literals::as_primitive)
        {
            Some(primitive::Value::Integer(v)) => *v,
            _ => -1,
        };
        let closure = NodeExecutionClosure::decode(row.closure.as_slice())?;
        let cache = match closure.target_metadata {
            Some(node_execution_closure::TargetMetadata::TaskNodeMetadata(m)) => m.cache_status,
            _ => 0,
        };
        out.push((row.key.node_id, row.phase, o0, cache));
    }
    out.sort();
    Ok(out)
}

fn task_lp(task: &TaskTemplate) -> Identifier {
    task.id.clone().expect("task id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_serialized_tasks_run_once_and_share_the_outputs() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    let task = register(&h, "cached", true).await?;
    h.launch("first", &task_lp(&task), 0).await?;
    h.launch("second", &task_lp(&task), 0).await?;
    let plugin = Scripted::new(Duration::from_millis(1500));
    let running = h.propeller(vec![plugin.clone()], h.config());
    let first = h.wait_terminal("first", Duration::from_secs(30)).await?;
    let second = h.wait_terminal("second", Duration::from_secs(30)).await?;
    running.stop().await?;
    assert_eq!(first, workflow_execution::Phase::Succeeded);
    assert_eq!(second, workflow_execution::Phase::Succeeded);
    assert_eq!(plugin.starts().len(), 1, "one ran: {:?}", plugin.starts());
    let (a, b) = (nodes(&h, "first").await?, nodes(&h, "second").await?);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(a[0].2, b[0].2, "the same outputs");
    let mut statuses = vec![a[0].3, b[0].3];
    statuses.sort();
    let mut expected = vec![
        CatalogCacheStatus::CacheHit as i32,
        CatalogCacheStatus::CachePopulated as i32,
    ];
    expected.sort();
    assert_eq!(statuses, expected, "one populated the cache, one hit it");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_holder_fails_a_waiter_takes_the_reservation_and_runs() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    let task = register(&h, "cached", true).await?;
    let plugin = Scripted::new(Duration::from_millis(1000));
    plugin.fail("first", "n0");
    plugin.fail("second", "n0");
    h.launch("first", &task_lp(&task), 0).await?;
    h.launch("second", &task_lp(&task), 0).await?;
    let running = h.propeller(vec![plugin.clone()], h.config());
    // Whichever of the two ran first failed; the other then ran (and failed as well): each
    // ran exactly once, one after the other.
    let first = h.wait_terminal("first", Duration::from_secs(30)).await?;
    let second = h.wait_terminal("second", Duration::from_secs(30)).await?;
    running.stop().await?;
    assert_eq!(first, workflow_execution::Phase::Failed);
    assert_eq!(second, workflow_execution::Phase::Failed);
    let starts = plugin.starts.lock().expect("lock").clone();
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert_ne!(starts[0].0, starts[1].0);
    assert!(
        starts[1].2.duration_since(starts[0].2) >= Duration::from_millis(900),
        "the second started after the first ended"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_of_a_dead_owner_is_taken_over_after_it_expires() -> anyhow::Result<()> {
    // RUST_LOG=alula_propeller=debug shows each look at the reservation (one a second).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "alula_propeller=warn".into()),
        )
        .try_init();
    let h = Harness::new().await?;
    let task = register(&h, "cached", true).await?;
    let cache_key =
        alula_core::cache::cache_key(&task, &LiteralMap::default()).expect("a cacheable task");
    let cache_key = format!("{PROJECT}/{DOMAIN}/{}", cache_key.digest());
    // A propeller that died while running this task left its reservation behind.
    let now = alula_admin::store::now_micros();
    let expires = now + 2_000_000;
    let held = h
        .api
        .store()
        .get_or_extend_reservation(&cache_key, "dead-propeller/x/n0", now, expires)
        .await?;
    assert_eq!(held.owner, "dead-propeller/x/n0");
    let launched = Instant::now();
    h.launch("after-crash", &task_lp(&task), 0).await?;
    let plugin = Scripted::new(Duration::from_millis(100));
    let running = h.propeller(vec![plugin.clone()], h.config());
    let phase = h
        .wait_terminal("after-crash", Duration::from_secs(30))
        .await?;
    running.stop().await?;
    assert_eq!(phase, workflow_execution::Phase::Succeeded);
    let starts = plugin.starts.lock().expect("lock").clone();
    assert_eq!(starts.len(), 1, "{starts:?}");
    let waited = starts[0].2.duration_since(launched);
    assert!(
        waited >= Duration::from_millis(1500),
        "it waited for the expiry ({waited:?})"
    );
    assert!(
        waited < Duration::from_secs(10),
        "not much longer ({waited:?})"
    );
    // Released at the end: the next asker gets it at once.
    let next = h
        .api
        .store()
        .get_or_extend_reservation(&cache_key, "someone", now + 3_000_000, now + 9_000_000)
        .await?;
    assert_eq!(next.owner, "someone");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovering_reuses_what_succeeded_and_runs_the_rest() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    let task = register(&h, "emit", false).await?;
    let task_id = task_lp(&task);
    let lp = h
        .dag(
            "three",
            vec![
                (task_id.clone(), vec![]),
                (task_id.clone(), vec![0]),
                (task_id, vec![1]),
            ],
        )
        .await?;
    h.launch("original", &lp, 0).await?;
    let plugin = Scripted::new(Duration::from_millis(10));
    plugin.fail("original", "n1");
    let running = h.propeller(vec![plugin.clone()], h.config());
    let original = h.wait_terminal("original", Duration::from_secs(30)).await?;
    assert_eq!(original, workflow_execution::Phase::Failed);

    h.api
        .recover_execution(Request::new(ExecutionRecoverRequest {
            id: Some(execution_id("original")),
            name: "recovered".into(),
            metadata: None,
        }))
        .await?;
    let recovered = h
        .wait_terminal("recovered", Duration::from_secs(30))
        .await?;
    running.stop().await?;
    assert_eq!(recovered, workflow_execution::Phase::Succeeded);

    let starts = plugin.starts();
    let of = |e: &str| -> Vec<String> {
        starts
            .iter()
            .filter(|(x, _)| x == e)
            .map(|(_, n)| n.clone())
            .collect()
    };
    assert_eq!(of("original"), vec!["n0", "n1"]);
    assert_eq!(of("recovered"), vec!["n1", "n2"], "n0 was not run again");

    let before = nodes(&h, "original").await?;
    let after = nodes(&h, "recovered").await?;
    assert_eq!(before.len(), 1, "{before:?}");
    let n0 = after.iter().find(|n| n.0 == "n0").expect("n0 recorded");
    assert_eq!(n0.1, node_execution::Phase::Recovered.as_str_name());
    assert_eq!(n0.2, before[0].2, "n0's outputs are the original's");
    let phases: Vec<&str> = after.iter().map(|n| n.1.as_str()).collect();
    assert_eq!(phases, vec!["RECOVERED", "SUCCEEDED", "SUCCEEDED"]);
    // And the rows the API serves say so too.
    let api_n0 = h
        .api
        .store()
        .get_node_execution(&NodeExecutionKey {
            execution: key("recovered"),
            node_id: "n0".into(),
        })
        .await?
        .expect("n0");
    assert_eq!(api_n0.phase, "RECOVERED");
    Ok(())
}
