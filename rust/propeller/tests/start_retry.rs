//! A plugin whose start fails for infrastructure reasons (an API server hiccup) is asked again
//! after a backoff, and the task keeps its attempt budget: the execution succeeds on attempt 0.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alula_admin::{AdminApi, AdminConfig, Store};
use alula_idl::flyteidl::admin::{
    ExecutionCreateRequest, ExecutionSpec, ObjectGetRequest, TaskCreateRequest, TaskSpec,
    WorkflowExecutionGetRequest,
};
use alula_idl::flyteidl::core::{
    task_template, workflow_execution, Container, Identifier, LiteralMap, ResourceType,
    TaskTemplate, TypedInterface, VariableMap, WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_propeller::plugin::{Attempt, AttemptStatus, Plugin, PluginError, Waker};
use alula_propeller::{Propeller, PropellerConfig};
use async_trait::async_trait;
use tonic::Request;

/// Refuses the first `failures` starts as transient, then "runs" (exits 0 at once).
#[derive(Default)]
struct Flaky {
    failures: u32,
    starts: AtomicU32,
    started: Mutex<Vec<(u32, Instant)>>,
}

#[async_trait]
impl Plugin for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }

    fn can_run(&self, _task: &TaskTemplate) -> bool {
        true
    }

    async fn start(&self, attempt: &Attempt, waker: Waker) -> Result<(), PluginError> {
        let n = self.starts.fetch_add(1, Ordering::SeqCst);
        self.started
            .lock()
            .expect("lock")
            .push((attempt.retry_attempt, Instant::now()));
        if n < self.failures {
            return Err(PluginError::Transient(format!(
                "the API server answered 500 (call {n})"
            )));
        }
        waker.wake();
        Ok(())
    }

    async fn check(&self, _attempt: &Attempt, _waker: Waker) -> Result<AttemptStatus, PluginError> {
        Ok(AttemptStatus::Exited {
            exit_code: Some(0),
            message: String::new(),
        })
    }

    async fn abort(&self, _attempt: &Attempt) -> Result<(), PluginError> {
        Ok(())
    }
}

fn task_id() -> Identifier {
    Identifier {
        resource_type: ResourceType::Task as i32,
        project: "flytesnacks".into(),
        domain: "development".into(),
        name: "flaky".into(),
        version: "v1".into(),
        org: String::new(),
    }
}

#[tokio::test]
async fn transient_start_failures_do_not_use_up_attempts() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("alula.db").display()
    ))
    .await?;
    let config = AdminConfig::new(dir.path().into(), "http://unused".into(), b"k".to_vec());
    let api = AdminApi::new(store, Arc::new(config));
    api.ensure_default_projects().await?;

    let empty = || VariableMap {
        variables: Default::default(),
    };
    api.create_task(Request::new(TaskCreateRequest {
        id: Some(task_id()),
        spec: Some(TaskSpec {
            template: Some(TaskTemplate {
                id: Some(task_id()),
                r#type: "python-task".into(),
                interface: Some(TypedInterface {
                    inputs: Some(empty()),
                    outputs: Some(empty()),
                }),
                target: Some(task_template::Target::Container(Container {
                    image: "img".into(),
                    args: vec!["run".into()],
                    ..Default::default()
                })),
                ..Default::default()
            }),
            description: None,
        }),
    }))
    .await?;
    api.get_task(Request::new(ObjectGetRequest {
        id: Some(task_id()),
    }))
    .await?;
    api.create_execution(Request::new(ExecutionCreateRequest {
        project: "flytesnacks".into(),
        domain: "development".into(),
        name: "flaky-run".into(),
        spec: Some(ExecutionSpec {
            launch_plan: Some(task_id()),
            ..Default::default()
        }),
        inputs: Some(LiteralMap::default()),
        org: String::new(),
    }))
    .await?;

    let plugin = Arc::new(Flaky {
        failures: 2,
        ..Default::default()
    });
    let propeller = Propeller::new(
        api.clone(),
        vec![plugin.clone()],
        PropellerConfig::new("test", dir.path()),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(propeller.run(async move {
        let _ = stopped.await;
    }));

    let id = WorkflowExecutionIdentifier {
        project: "flytesnacks".into(),
        domain: "development".into(),
        name: "flaky-run".into(),
        org: String::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let phase = loop {
        let execution = api
            .get_execution(Request::new(WorkflowExecutionGetRequest {
                id: Some(id.clone()),
            }))
            .await?
            .into_inner();
        let phase = execution.closure.map(|c| c.phase).unwrap_or_default();
        let terminal = [
            workflow_execution::Phase::Succeeded,
            workflow_execution::Phase::Failed,
            workflow_execution::Phase::Aborted,
            workflow_execution::Phase::TimedOut,
        ]
        .map(|p| p as i32);
        if terminal.contains(&phase) || Instant::now() > deadline {
            break phase;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = stop.send(());
    running.await??;

    assert_eq!(
        phase,
        workflow_execution::Phase::Succeeded as i32,
        "the execution did not succeed"
    );
    let started = plugin.started.lock().expect("lock").clone();
    // Three calls to start, all for attempt 0, the later ones after a growing backoff.
    assert_eq!(
        started.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
        vec![0, 0, 0]
    );
    assert!(started[1].1 - started[0].1 >= Duration::from_millis(900));
    assert!(started[2].1 - started[1].1 >= Duration::from_millis(1900));
    Ok(())
}
