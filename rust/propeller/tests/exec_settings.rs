//! The settings admin resolves for an execution reach its tasks: a process task sees the
//! execution's envs (over the task's own, under Flyte's) and its raw output prefix, and every
//! attempt carries the execution's task resource defaults and limits in its task template.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alula_idl::flyteidl::admin::{
    matching_attributes::Target, Envs, ExecutionSpec, MatchingAttributes, ProjectDomainAttributes,
    ProjectDomainAttributesUpdateRequest, RawOutputDataConfig, TaskCreateRequest,
    TaskResourceAttributes, TaskResourceSpec, TaskSpec, WorkflowExecutionConfig,
};
use alula_idl::flyteidl::core::{
    resources::{ResourceEntry, ResourceName},
    task_template, workflow_execution, Container, Identifier, KeyValuePair, ResourceType,
    Resources, TaskTemplate, TypedInterface, VariableMap,
};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_propeller::process::{ProcessConfig, ProcessPlugin};
use alula_propeller::{Attempt, AttemptSettings, AttemptStatus, Plugin, PluginError, Waker};
use support::{id, Harness, DOMAIN, PROJECT};
use tonic::Request;

fn kv(key: &str, value: &str) -> KeyValuePair {
    KeyValuePair {
        key: key.into(),
        value: value.into(),
    }
}

fn empty_interface() -> TypedInterface {
    TypedInterface {
        inputs: Some(VariableMap::default()),
        outputs: Some(VariableMap::default()),
    }
}

/// Registers container task `name` running `command` with `env` and `resources`.
async fn task(
    h: &Harness,
    name: &str,
    command: &[&str],
    env: Vec<KeyValuePair>,
    resources: Option<Resources>,
) -> anyhow::Result<Identifier> {
    let task_id = id(ResourceType::Task, name);
    h.api
        .create_task(Request::new(TaskCreateRequest {
            id: Some(task_id.clone()),
            spec: Some(TaskSpec {
                template: Some(TaskTemplate {
                    id: Some(task_id.clone()),
                    r#type: "python-task".into(),
                    interface: Some(empty_interface()),
                    target: Some(task_template::Target::Container(Container {
                        image: "img".into(),
                        command: command.iter().map(|s| s.to_string()).collect(),
                        env,
                        resources,
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

async fn set_project_domain(h: &Harness, target: Target) -> anyhow::Result<()> {
    h.api
        .update_project_domain_attributes(Request::new(ProjectDomainAttributesUpdateRequest {
            attributes: Some(ProjectDomainAttributes {
                project: PROJECT.into(),
                domain: DOMAIN.into(),
                matching_attributes: Some(MatchingAttributes {
                    target: Some(target),
                }),
                org: String::new(),
            }),
        }))
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_process_task_sees_the_executions_envs_and_raw_output_prefix() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    let out = h.dir.path().join("seen.txt");
    let script = format!(
        "printf '%s|%s|%s|%s|%s' \"$LEVEL\" \"$TASK_ONLY\" \"$FROM_ATTRIBUTES\" \
         \"$FLYTE_INTERNAL_EXECUTION_ID\" \"$0\" > {}",
        out.display()
    );
    let t = task(
        &h,
        "envs",
        &["sh", "-c", &script, "{{.rawOutputDataPrefix}}"],
        vec![kv("LEVEL", "task"), kv("TASK_ONLY", "kept")],
        None,
    )
    .await?;
    let lp = h.fan_out("envs_wf", &t, 1).await?;
    // Project-domain attributes: envs here lose to the request's (maps are not merged).
    set_project_domain(
        &h,
        Target::WorkflowExecutionConfig(WorkflowExecutionConfig {
            envs: Some(Envs {
                values: vec![kv("FROM_ATTRIBUTES", "yes")],
            }),
            ..Default::default()
        }),
    )
    .await?;
    let raw = h.dir.path().join("my-raw");
    let plugin = Arc::new(ProcessPlugin::new(ProcessConfig {
        work_root: h.dir.path().join("work"),
        ..Default::default()
    }));
    let running = h.propeller(vec![plugin], h.config());
    h.launch_with(
        "envs1",
        &lp,
        ExecutionSpec {
            envs: Some(Envs {
                values: vec![
                    kv("LEVEL", "execution"),
                    // Flyte's own variables name the attempt: no setting changes them.
                    kv("FLYTE_INTERNAL_EXECUTION_ID", "forged"),
                ],
            }),
            raw_output_data_config: Some(RawOutputDataConfig {
                output_location_prefix: format!("{}/", raw.display()),
            }),
            ..Default::default()
        },
    )
    .await?;
    let phase = h.wait_terminal("envs1", Duration::from_secs(30)).await?;
    running.stop().await?;
    assert_eq!(phase, workflow_execution::Phase::Succeeded);
    let seen = std::fs::read_to_string(&out)?;
    assert_eq!(
        seen,
        format!(
            "execution|kept||envs1|{}/{PROJECT}/{DOMAIN}/envs1/n0/0",
            raw.display()
        )
    );
    Ok(())
}

/// Records the attempts it is given; they run until aborted.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(TaskTemplate, Arc<AttemptSettings>)>>,
}

#[async_trait::async_trait]
impl Plugin for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }

    fn can_run(&self, _task: &TaskTemplate) -> bool {
        true
    }

    async fn start(&self, attempt: &Attempt, _waker: Waker) -> Result<(), PluginError> {
        let mut seen = self
            .seen
            .lock()
            .map_err(|e| PluginError::Transient(e.to_string()))?;
        seen.push(((*attempt.task).clone(), attempt.settings.clone()));
        Ok(())
    }

    async fn check(&self, _attempt: &Attempt, _waker: Waker) -> Result<AttemptStatus, PluginError> {
        Ok(AttemptStatus::Running)
    }

    async fn abort(&self, _attempt: &Attempt) -> Result<(), PluginError> {
        Ok(())
    }
}

fn resource(list: &[ResourceEntry], name: ResourceName) -> Option<String> {
    list.iter()
        .find(|e| e.name == name as i32)
        .map(|e| e.value.clone())
}

#[tokio::test]
async fn attempts_carry_the_executions_task_resources_and_settings() -> anyhow::Result<()> {
    let h = Harness::configured(|config| {
        config.task_resources = TaskResourceAttributes {
            defaults: Some(TaskResourceSpec {
                cpu: "1".into(),
                memory: "1Gi".into(),
                ..Default::default()
            }),
            limits: Some(TaskResourceSpec {
                cpu: "2".into(),
                memory: "4Gi".into(),
                ..Default::default()
            }),
        };
    })
    .await?;
    // Project-domain TASK_RESOURCE attributes lower the memory limit.
    set_project_domain(
        &h,
        Target::TaskResourceAttributes(TaskResourceAttributes {
            defaults: None,
            limits: Some(TaskResourceSpec {
                memory: "2Gi".into(),
                ..Default::default()
            }),
        }),
    )
    .await?;
    let asks = Resources {
        requests: vec![ResourceEntry {
            name: ResourceName::Memory as i32,
            value: "3Gi".into(),
        }],
        limits: Vec::new(),
    };
    let t = task(&h, "sized", &["true"], Vec::new(), Some(asks)).await?;
    let lp = h.fan_out("sized_wf", &t, 1).await?;
    let recorder = Arc::new(Recorder::default());
    let running = h.propeller(vec![recorder.clone()], h.config());
    h.launch_with(
        "sized1",
        &lp,
        ExecutionSpec {
            labels: Some(alula_idl::flyteidl::admin::Labels {
                values: [("team".to_string(), "data".to_string())].into(),
            }),
            ..Default::default()
        },
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let (template, settings) = loop {
        if let Some(first) = recorder
            .seen
            .lock()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .first()
        {
            break first.clone();
        }
        anyhow::ensure!(Instant::now() < deadline, "no attempt started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    h.terminate("sized1").await?;
    h.wait_terminal("sized1", Duration::from_secs(30)).await?;
    running.stop().await?;
    let Some(task_template::Target::Container(container)) = template.target else {
        anyhow::bail!("not a container task");
    };
    let r = container.resources.unwrap_or_default();
    // CPU from the server's default; memory asked above the attributes' limit is lowered.
    assert_eq!(
        resource(&r.requests, ResourceName::Cpu).as_deref(),
        Some("1")
    );
    assert_eq!(resource(&r.limits, ResourceName::Cpu).as_deref(), Some("1"));
    assert_eq!(
        resource(&r.requests, ResourceName::Memory).as_deref(),
        Some("2Gi")
    );
    assert_eq!(
        resource(&r.limits, ResourceName::Memory).as_deref(),
        Some("2Gi")
    );
    assert_eq!(
        settings.labels.get("team").map(String::as_str),
        Some("data")
    );
    Ok(())
}

#[tokio::test]
async fn child_executions_inherit_the_parents_settings() -> anyhow::Result<()> {
    use alula_idl::flyteidl::admin::{Labels, WorkflowCreateRequest, WorkflowSpec};
    use alula_idl::flyteidl::admin::{LaunchPlanCreateRequest, LaunchPlanSpec};
    use alula_idl::flyteidl::core::WorkflowTemplate;
    use alula_idl::flyteidl::core::{node, workflow_node, Node, NodeMetadata, WorkflowNode};

    let h = Harness::new().await?;
    let t = task(&h, "leaf", &["true"], Vec::new(), None).await?;
    let child = h.fan_out("child_wf", &t, 1).await?;
    let wf_id = id(ResourceType::Workflow, "parent_wf");
    h.api
        .create_workflow(Request::new(WorkflowCreateRequest {
            id: Some(wf_id.clone()),
            spec: Some(WorkflowSpec {
                template: Some(WorkflowTemplate {
                    id: Some(wf_id.clone()),
                    interface: Some(empty_interface()),
                    nodes: vec![Node {
                        id: "n0".into(),
                        metadata: Some(NodeMetadata {
                            name: "n0".into(),
                            ..Default::default()
                        }),
                        target: Some(node::Target::WorkflowNode(WorkflowNode {
                            reference: Some(workflow_node::Reference::LaunchplanRef(child)),
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }))
        .await?;
    let lp = id(ResourceType::LaunchPlan, "parent_wf");
    h.api
        .create_launch_plan(Request::new(LaunchPlanCreateRequest {
            id: Some(lp.clone()),
            spec: Some(LaunchPlanSpec {
                workflow_id: Some(wf_id),
                ..Default::default()
            }),
        }))
        .await?;
    let recorder = Arc::new(Recorder::default());
    let running = h.propeller(vec![recorder.clone()], h.config());
    h.launch_with(
        "parent1",
        &lp,
        ExecutionSpec {
            labels: Some(Labels {
                values: [("team".to_string(), "data".to_string())].into(),
            }),
            envs: Some(Envs {
                values: vec![kv("FROM_PARENT", "1")],
            }),
            ..Default::default()
        },
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let settings = loop {
        if let Some(first) = recorder
            .seen
            .lock()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .first()
        {
            break first.1.clone();
        }
        anyhow::ensure!(Instant::now() < deadline, "no attempt started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    h.terminate("parent1").await?;
    h.wait_terminal("parent1", Duration::from_secs(30)).await?;
    running.stop().await?;
    assert_eq!(
        settings.labels.get("team").map(String::as_str),
        Some("data")
    );
    assert_eq!(
        settings.envs.get("FROM_PARENT").map(String::as_str),
        Some("1")
    );
    Ok(())
}
