//! Tasks a dynamic task generates at run time get the execution's task resource defaults and
//! limits, as the tasks of its registered closure do.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alula_idl::flyteidl::admin::{
    TaskCreateRequest, TaskResourceAttributes, TaskResourceSpec, TaskSpec,
};
use alula_idl::flyteidl::core::{
    node,
    resources::{ResourceEntry, ResourceName},
    task_node, task_template, workflow_execution, Container, DynamicJobSpec, Node, NodeMetadata,
    ResourceType, TaskNode, TaskTemplate, TypedInterface, VariableMap,
};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_propeller::{Attempt, AttemptStatus, Plugin, PluginError, Waker};
use prost::Message;
use support::{id, Harness};

fn container_task(name: &str) -> TaskTemplate {
    TaskTemplate {
        id: Some(id(ResourceType::Task, name)),
        r#type: "python-task".into(),
        interface: Some(TypedInterface {
            inputs: Some(VariableMap::default()),
            outputs: Some(VariableMap::default()),
        }),
        target: Some(task_template::Target::Container(Container {
            image: "img".into(),
            command: vec!["true".into()],
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// The dynamic task's `futures.pb`: one node running `gen`, a task without resources.
fn dynamic_spec() -> DynamicJobSpec {
    let gen = container_task("gen");
    DynamicJobSpec {
        nodes: vec![Node {
            id: "dn0".into(),
            metadata: Some(NodeMetadata {
                name: "gen".into(),
                ..Default::default()
            }),
            target: Some(node::Target::TaskNode(TaskNode {
                reference: Some(task_node::Reference::ReferenceId(
                    gen.id.clone().unwrap_or_default(),
                )),
                ..Default::default()
            })),
            ..Default::default()
        }],
        min_successes: 1,
        tasks: vec![gen],
        ..Default::default()
    }
}

/// The `dyn` task ends at once having written its `futures.pb`; every other attempt is
/// recorded and runs until aborted.
#[derive(Default)]
struct DynamicParent {
    seen: Mutex<Vec<TaskTemplate>>,
}

fn is_parent(attempt: &Attempt) -> bool {
    attempt.task.id.as_ref().is_some_and(|i| i.name == "dyn")
}

#[async_trait::async_trait]
impl Plugin for DynamicParent {
    fn name(&self) -> &'static str {
        "dynamic-parent"
    }

    fn can_run(&self, _task: &TaskTemplate) -> bool {
        true
    }

    async fn start(&self, attempt: &Attempt, waker: Waker) -> Result<(), PluginError> {
        if is_parent(attempt) {
            std::fs::create_dir_all(&attempt.output_prefix)
                .and_then(|()| {
                    std::fs::write(
                        attempt.output_prefix.join("futures.pb"),
                        dynamic_spec().encode_to_vec(),
                    )
                })
                .map_err(|e| PluginError::Transient(e.to_string()))?;
            // Ended already: the driver looks at it now.
            waker.wake();
            return Ok(());
        }
        self.seen
            .lock()
            .map_err(|e| PluginError::Transient(e.to_string()))?
            .push((*attempt.task).clone());
        Ok(())
    }

    async fn check(&self, attempt: &Attempt, _waker: Waker) -> Result<AttemptStatus, PluginError> {
        Ok(if is_parent(attempt) {
            AttemptStatus::Exited {
                exit_code: Some(0),
                message: String::new(),
            }
        } else {
            AttemptStatus::Running
        })
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
async fn a_dynamic_tasks_generated_task_gets_the_executions_resources() -> anyhow::Result<()> {
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
    let parent = container_task("dyn");
    h.api
        .create_task(tonic::Request::new(TaskCreateRequest {
            id: parent.id.clone(),
            spec: Some(TaskSpec {
                template: Some(parent.clone()),
                description: None,
            }),
        }))
        .await?;
    let lp = h
        .fan_out("dyn_wf", &parent.id.clone().unwrap_or_default(), 1)
        .await?;
    let plugin = Arc::new(DynamicParent::default());
    let running = h.propeller(vec![plugin.clone()], h.config());
    h.launch("dyn1", &lp, 0).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let generated = loop {
        if let Some(first) = plugin
            .seen
            .lock()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .first()
        {
            break first.clone();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the generated task never started (execution {:?})",
            h.phase("dyn1").await?
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    h.terminate("dyn1").await?;
    let phase = h.wait_terminal("dyn1", Duration::from_secs(30)).await?;
    running.stop().await?;
    assert_eq!(phase, workflow_execution::Phase::Aborted);
    assert_eq!(generated.id.as_ref().map(|i| i.name.as_str()), Some("gen"));
    let Some(task_template::Target::Container(container)) = generated.target else {
        anyhow::bail!("not a container task");
    };
    let r = container.resources.unwrap_or_default();
    // The server's defaults fill what the generated task leaves unset.
    for (name, value) in [(ResourceName::Cpu, "1"), (ResourceName::Memory, "1Gi")] {
        assert_eq!(
            resource(&r.requests, name).as_deref(),
            Some(value),
            "{name:?}"
        );
        assert_eq!(
            resource(&r.limits, name).as_deref(),
            Some(value),
            "{name:?}"
        );
    }
    Ok(())
}
