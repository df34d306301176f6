//! An admin on a fresh SQLite file, registration helpers, and propeller run with given plugins.

#![allow(dead_code)] // each test file uses a different subset

pub mod warm;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alula_admin::{AdminApi, AdminConfig, Store};
use alula_idl::flyteidl::admin::{
    Execution, ExecutionCreateRequest, ExecutionSpec, ExecutionTerminateRequest,
    LaunchPlanCreateRequest, LaunchPlanSpec, TaskCreateRequest, TaskSpec, WorkflowCreateRequest,
    WorkflowExecutionGetRequest, WorkflowSpec,
};
use alula_idl::flyteidl::core::{
    node, task_node, task_template, workflow_execution, Container, Identifier, LiteralMap, Node,
    NodeMetadata, ResourceType, RetryStrategy, TaskMetadata, TaskNode, TaskTemplate,
    TypedInterface, VariableMap, WorkflowExecutionIdentifier, WorkflowTemplate,
};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_propeller::plugin::Plugin;
use alula_propeller::{Propeller, PropellerConfig};
use tonic::Request;

pub const PROJECT: &str = "flytesnacks";
pub const DOMAIN: &str = "development";

pub fn id(kind: ResourceType, name: &str) -> Identifier {
    Identifier {
        resource_type: kind as i32,
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        version: "v1".into(),
        org: String::new(),
    }
}

pub fn execution_id(name: &str) -> WorkflowExecutionIdentifier {
    WorkflowExecutionIdentifier {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        org: String::new(),
    }
}

fn empty_interface() -> TypedInterface {
    let empty = || VariableMap {
        variables: Default::default(),
    };
    TypedInterface {
        inputs: Some(empty()),
        outputs: Some(empty()),
    }
}

pub struct Harness {
    pub api: AdminApi,
    pub dir: tempfile::TempDir,
}

impl Harness {
    pub async fn new() -> anyhow::Result<Self> {
        Self::configured(|_| {}).await
    }

    /// A harness whose admin configuration `configure` has adjusted (server defaults).
    pub async fn configured(configure: impl FnOnce(&mut AdminConfig)) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let store = Store::connect(&format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("alula.db").display()
        ))
        .await?;
        let mut config = AdminConfig::new(dir.path().into(), "http://unused".into(), b"k".to_vec());
        configure(&mut config);
        let api = AdminApi::new(store, Arc::new(config));
        api.ensure_default_projects().await?;
        Ok(Self { api, dir })
    }

    /// Registers a container task without inputs or outputs that runs `command`.
    pub async fn task(&self, name: &str, command: &[&str]) -> anyhow::Result<Identifier> {
        self.task_with_retries(name, command, 0).await
    }

    /// The same with `retries` retries.
    pub async fn task_with_retries(
        &self,
        name: &str,
        command: &[&str],
        retries: u32,
    ) -> anyhow::Result<Identifier> {
        let task_id = id(ResourceType::Task, name);
        self.api
            .create_task(Request::new(TaskCreateRequest {
                id: Some(task_id.clone()),
                spec: Some(TaskSpec {
                    template: Some(TaskTemplate {
                        id: Some(task_id.clone()),
                        r#type: "python-task".into(),
                        interface: Some(empty_interface()),
                        metadata: Some(TaskMetadata {
                            retries: Some(RetryStrategy { retries }),
                            ..Default::default()
                        }),
                        target: Some(task_template::Target::Container(Container {
                            image: "img".into(),
                            command: command.iter().map(|s| s.to_string()).collect(),
                            args: vec!["run".into()],
                            ..Default::default()
                        })),
                        ..Default::default()
                    }),
                    description: None,
                }),
            }))
            .await?;
        Ok(task_id)
    }

    /// Registers a workflow of `width` independent nodes running `task`, and its launch plan.
    pub async fn fan_out(
        &self,
        name: &str,
        task: &Identifier,
        width: usize,
    ) -> anyhow::Result<Identifier> {
        let nodes = (0..width).map(|_| (task.clone(), vec![])).collect();
        self.dag(name, nodes).await
    }

    /// Registers a workflow whose node `n{i}` runs `nodes[i].0` after the nodes `nodes[i].1`
    /// (indices), and its launch plan.
    pub async fn dag(
        &self,
        name: &str,
        nodes: Vec<(Identifier, Vec<usize>)>,
    ) -> anyhow::Result<Identifier> {
        let wf_id = id(ResourceType::Workflow, name);
        let nodes = nodes
            .into_iter()
            .enumerate()
            .map(|(i, (task, after))| Node {
                id: format!("n{i}"),
                metadata: Some(NodeMetadata {
                    name: format!("n{i}"),
                    ..Default::default()
                }),
                upstream_node_ids: after.iter().map(|j| format!("n{j}")).collect(),
                target: Some(node::Target::TaskNode(TaskNode {
                    reference: Some(task_node::Reference::ReferenceId(task)),
                    ..Default::default()
                })),
                ..Default::default()
            })
            .collect();
        self.api
            .create_workflow(Request::new(WorkflowCreateRequest {
                id: Some(wf_id.clone()),
                spec: Some(WorkflowSpec {
                    template: Some(WorkflowTemplate {
                        id: Some(wf_id.clone()),
                        interface: Some(empty_interface()),
                        nodes,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }))
            .await?;
        let lp_id = id(ResourceType::LaunchPlan, name);
        self.api
            .create_launch_plan(Request::new(LaunchPlanCreateRequest {
                id: Some(lp_id.clone()),
                spec: Some(LaunchPlanSpec {
                    workflow_id: Some(wf_id),
                    ..Default::default()
                }),
            }))
            .await?;
        Ok(lp_id)
    }

    /// Creates execution `name` of a launch plan (or a task) with a parallelism limit (0: the
    /// server's).
    pub async fn launch(
        &self,
        name: &str,
        launch_plan: &Identifier,
        max_parallelism: i32,
    ) -> anyhow::Result<()> {
        let spec = ExecutionSpec {
            max_parallelism,
            ..Default::default()
        };
        self.launch_with(name, launch_plan, spec).await
    }

    /// Creates execution `name` of a launch plan (or a task) with `spec`'s settings.
    pub async fn launch_with(
        &self,
        name: &str,
        launch_plan: &Identifier,
        spec: ExecutionSpec,
    ) -> anyhow::Result<()> {
        self.api
            .create_execution(Request::new(ExecutionCreateRequest {
                project: PROJECT.into(),
                domain: DOMAIN.into(),
                name: name.into(),
                spec: Some(ExecutionSpec {
                    launch_plan: Some(launch_plan.clone()),
                    ..spec
                }),
                inputs: Some(LiteralMap::default()),
                org: String::new(),
            }))
            .await?;
        Ok(())
    }

    pub async fn get(&self, name: &str) -> anyhow::Result<Execution> {
        Ok(self
            .api
            .get_execution(Request::new(WorkflowExecutionGetRequest {
                id: Some(execution_id(name)),
            }))
            .await?
            .into_inner())
    }

    pub async fn phase(&self, name: &str) -> anyhow::Result<workflow_execution::Phase> {
        let phase = self
            .get(name)
            .await?
            .closure
            .map(|c| c.phase)
            .unwrap_or_default();
        Ok(workflow_execution::Phase::try_from(phase)?)
    }

    /// Waits until `name` is in a terminal phase (or `within` passes) and returns its phase.
    pub async fn wait_terminal(
        &self,
        name: &str,
        within: Duration,
    ) -> anyhow::Result<workflow_execution::Phase> {
        use workflow_execution::Phase;
        let deadline = Instant::now() + within;
        loop {
            let phase = self.phase(name).await?;
            let terminal = matches!(
                phase,
                Phase::Succeeded | Phase::Failed | Phase::Aborted | Phase::TimedOut
            );
            if terminal || Instant::now() > deadline {
                return Ok(phase);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn terminate(&self, name: &str) -> anyhow::Result<()> {
        self.api
            .terminate_execution(Request::new(ExecutionTerminateRequest {
                id: Some(execution_id(name)),
                cause: "test".into(),
            }))
            .await?;
        Ok(())
    }

    pub fn config(&self) -> PropellerConfig {
        PropellerConfig::new("test", self.dir.path())
    }

    /// Runs propeller until the returned handle is stopped.
    pub fn propeller(&self, plugins: Vec<Arc<dyn Plugin>>, config: PropellerConfig) -> Running {
        let propeller = Propeller::new(Arc::new(self.api.clone()), plugins, config);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(propeller.run(async move {
            let _ = stopped.await;
        }));
        Running { stop, task }
    }
}

pub struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), alula_propeller::DriveError>>,
}

impl Running {
    /// Stops propeller; fails if it does not stop within a few seconds (a spinning driver never
    /// yields to the shutdown).
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .map_err(|_| anyhow::anyhow!("propeller did not stop within 15 s"))???;
        Ok(())
    }
}

/// A plugin whose attempts run until aborted.
pub struct Forever;

#[async_trait::async_trait]
impl Plugin for Forever {
    fn name(&self) -> &'static str {
        "forever"
    }

    fn can_run(&self, _task: &TaskTemplate) -> bool {
        true
    }

    async fn start(
        &self,
        _attempt: &alula_propeller::Attempt,
        _waker: alula_propeller::Waker,
    ) -> Result<(), alula_propeller::PluginError> {
        Ok(())
    }

    async fn check(
        &self,
        _attempt: &alula_propeller::Attempt,
        _waker: alula_propeller::Waker,
    ) -> Result<alula_propeller::AttemptStatus, alula_propeller::PluginError> {
        Ok(alula_propeller::AttemptStatus::Running)
    }

    async fn abort(
        &self,
        _attempt: &alula_propeller::Attempt,
    ) -> Result<(), alula_propeller::PluginError> {
        Ok(())
    }
}

/// Every file named `name` under `root`.
pub fn find_files(root: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == name) {
                found.push(path);
            }
        }
    }
    found
}

pub fn only_file(root: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let found = find_files(root, name);
    anyhow::ensure!(found.len() == 1, "expected one {name}, found {found:?}");
    Ok(found[0].clone())
}
