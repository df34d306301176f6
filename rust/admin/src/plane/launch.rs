//! What an execution runs: the compiled workflow (a launch plan's, or a one-node wrapper around
//! a single task, as flyteadmin makes for task executions), its resolved inputs and the
//! platform resources its tasks are given.

use alula_idl::flyteidl::admin::{
    ExecutionSpec, TaskClosure, TaskResourceAttributes, WorkflowClosure,
};
use alula_idl::flyteidl::core::{
    binding_data, node, workflow_execution::Phase, Binding, BindingData, CompiledTask,
    CompiledWorkflowClosure, Identifier, Node, NodeMetadata, OutputReference, ResourceType,
    TaskNode, WorkflowMetadata, WorkflowTemplate,
};
use alula_plane::{Launch, PlaneError, PlaneResult};
use prost::Message;

use super::{literals_error, store_error};
use crate::store::{Entity, EntityKey, ExecutionRow, Store};
use crate::{literals, task_resources, AdminApi};

/// The single node of a task execution's wrapper workflow.
pub const TASK_NODE_ID: &str = "n0";

fn decode<M: Message + Default>(bytes: &[u8], what: &str) -> PlaneResult<M> {
    M::decode(bytes).map_err(|e| PlaneError::Corrupt(format!("{what}: {e}")))
}

pub(super) async fn launch(api: &AdminApi, row: &ExecutionRow) -> PlaneResult<Launch> {
    let spec: ExecutionSpec = decode(&row.spec, "execution spec")?;
    let storage = &api.config().storage;
    let inputs = literals::execution_inputs(storage, row)
        .await
        .map_err(literals_error)?;
    // Admin stores the platform resources beside the inputs when any apply, as flyteadmin
    // sets them on the closure.
    let resources_key = literals::keys::execution(&row.key, task_resources::KEY_FILE);
    let task_resources: Option<TaskResourceAttributes> = storage
        .get(&resources_key)
        .await
        .map_err(|e| PlaneError::Unavailable(e.to_string()))?
        .map(|bytes| decode(&bytes, "task resources"))
        .transpose()?;
    let mut closure = stored_closure(api.store(), row).await?;
    if let Some(platform) = &task_resources {
        for template in closure.tasks.iter_mut().filter_map(|t| t.template.as_mut()) {
            task_resources::apply(template, platform);
        }
    }
    Ok(Launch {
        spec,
        inputs,
        closure,
        task_resources,
        phase: Phase::from_str_name(&row.phase).unwrap_or(Phase::Undefined),
    })
}

async fn stored_closure(store: &Store, row: &ExecutionRow) -> PlaneResult<CompiledWorkflowClosure> {
    if row.launch_entity == ResourceType::Task as i64 {
        let key = EntityKey {
            project: row.key.project.clone(),
            domain: row.key.domain.clone(),
            name: row.task_name.clone(),
            version: row.task_version.clone(),
        };
        let task_row = store
            .get_entity(Entity::Task, &key)
            .await
            .map_err(store_error)?
            .ok_or_else(|| PlaneError::Missing(format!("task {}:{}", key.name, key.version)))?;
        let closure: TaskClosure = decode(&task_row.closure, "task closure")?;
        let compiled = closure
            .compiled_task
            .ok_or_else(|| PlaneError::Corrupt("task closure without compiled task".into()))?;
        return Ok(task_wrapper(compiled));
    }
    let key = EntityKey {
        project: row.key.project.clone(),
        domain: row.key.domain.clone(),
        name: row.workflow_name.clone(),
        version: row.workflow_version.clone(),
    };
    let wf_row = store
        .get_entity(Entity::Workflow, &key)
        .await
        .map_err(store_error)?
        .ok_or_else(|| PlaneError::Missing(format!("workflow {}:{}", key.name, key.version)))?;
    let closure: WorkflowClosure = decode(&wf_row.closure, "workflow closure")?;
    closure
        .compiled_workflow
        .ok_or_else(|| PlaneError::Corrupt("workflow closure without compiled workflow".into()))
}

/// A workflow of one node running `task` on the execution's inputs, returning its outputs.
fn task_wrapper(task: CompiledTask) -> CompiledWorkflowClosure {
    let template = task.template.clone().unwrap_or_default();
    let task_id = template.id.clone().unwrap_or_default();
    let interface = template.interface.clone().unwrap_or_default();
    let inputs = interface.inputs.clone().unwrap_or_default();
    let outputs = interface.outputs.clone().unwrap_or_default();
    let node_inputs = inputs
        .variables
        .keys()
        .map(|name| Binding {
            var: name.clone(),
            binding: Some(BindingData {
                value: Some(binding_data::Value::Promise(OutputReference {
                    node_id: "start-node".into(),
                    var: name.clone(),
                    ..Default::default()
                })),
                union: None,
            }),
        })
        .collect();
    let wf_outputs = outputs
        .variables
        .keys()
        .map(|name| Binding {
            var: name.clone(),
            binding: Some(BindingData {
                value: Some(binding_data::Value::Promise(OutputReference {
                    node_id: TASK_NODE_ID.into(),
                    var: name.clone(),
                    ..Default::default()
                })),
                union: None,
            }),
        })
        .collect();
    let node = Node {
        id: TASK_NODE_ID.into(),
        metadata: Some(NodeMetadata {
            name: task_id.name.clone(),
            ..Default::default()
        }),
        inputs: node_inputs,
        target: Some(node::Target::TaskNode(TaskNode {
            reference: Some(
                alula_idl::flyteidl::core::task_node::Reference::ReferenceId(task_id.clone()),
            ),
            overrides: None,
        })),
        ..Default::default()
    };
    let template = WorkflowTemplate {
        id: Some(Identifier {
            resource_type: ResourceType::Workflow as i32,
            ..task_id
        }),
        metadata: Some(WorkflowMetadata::default()),
        interface: Some(interface),
        nodes: vec![node],
        outputs: wf_outputs,
        ..Default::default()
    };
    match alula_compiler::compile_workflow(&template, &[], std::slice::from_ref(&task), &[]) {
        Ok(closure) => closure,
        // A registered task always compiles on its own; should it not, run the bare template
        // and let the engine report what is wrong with it.
        Err(_) => CompiledWorkflowClosure {
            primary: Some(alula_idl::flyteidl::core::CompiledWorkflow {
                template: Some(template),
                connections: None,
            }),
            sub_workflows: Vec::new(),
            tasks: vec![task],
            launch_plans: Vec::new(),
        },
    }
}
