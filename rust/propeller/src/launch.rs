//! What an execution runs and where its data lives: the compiled workflow (a launch plan's, or
//! a one-node wrapper around a single task, as flyteadmin makes for task executions) and the
//! storage layout of inputs, outputs and raw data.

use std::path::PathBuf;

use alula_admin::store::{Entity, EntityKey, ExecutionRow, Store};
use alula_admin::task_resources;
use alula_idl::flyteidl::admin::{TaskClosure, TaskResourceAttributes, WorkflowClosure};
use alula_idl::flyteidl::core::{
    binding_data, node, Binding, BindingData, CompiledTask, CompiledWorkflowClosure, Identifier,
    Node, NodeMetadata, OutputReference, ResourceType, TaskNode, TaskTemplate,
    WorkflowExecutionIdentifier, WorkflowMetadata, WorkflowTemplate,
};
use alula_storage::Storage;
use prost::Message;

use crate::DriveError;

/// The single node of a task execution's wrapper workflow.
pub const TASK_NODE_ID: &str = "n0";

/// Where an execution's data lives in storage, in flytepropeller's shape:
/// `metadata/<project>/<domain>/<name>/<node>/[<element>/]inputs.pb` and an output folder per
/// attempt beside it; raw data (files, dataframes) under `raw/`. Methods give storage keys;
/// [`Layout::location`] the URI a task is handed (a plain path for local storage).
#[derive(Debug, Clone)]
pub struct Layout {
    storage: Storage,
}

impl Layout {
    pub fn new(storage: Storage) -> Self {
        Self { storage }
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// What a plugin is given for `key`: the local path under a local storage root, else the
    /// storage URI (`s3://bucket/prefix/<key>`).
    pub fn location(&self, key: &str) -> PathBuf {
        PathBuf::from(self.storage.uri(key))
    }

    /// The raw data folder an attempt is handed: under the execution's own prefix when its
    /// `raw_output_data_config` sets one (a bucket or folder of the user's choice, as in
    /// flytepropeller), else the storage's `raw/` folder.
    pub fn raw_location(
        &self,
        execution_prefix: Option<&str>,
        id: &WorkflowExecutionIdentifier,
        node: &str,
        element: Option<u32>,
        retry: u32,
    ) -> PathBuf {
        match execution_prefix {
            // A `file://` prefix is a plain path to the task (as a local storage root is).
            Some(prefix) => {
                let top = prefix.strip_prefix("file://").unwrap_or(prefix);
                PathBuf::from(format!(
                    "{}/{retry}",
                    Self::node_dir(top, id, node, element)
                ))
            }
            None => self.location(&self.raw_prefix(id, node, element, retry)),
        }
    }

    fn node_dir(
        top: &str,
        id: &WorkflowExecutionIdentifier,
        node: &str,
        element: Option<u32>,
    ) -> String {
        let dir = format!("{top}/{}/{}/{}/{node}", id.project, id.domain, id.name);
        match element {
            Some(e) => format!("{dir}/{e}"),
            None => dir,
        }
    }

    pub fn inputs(
        &self,
        id: &WorkflowExecutionIdentifier,
        node: &str,
        element: Option<u32>,
    ) -> String {
        format!(
            "{}/inputs.pb",
            Self::node_dir("metadata", id, node, element)
        )
    }

    pub fn output_prefix(
        &self,
        id: &WorkflowExecutionIdentifier,
        node: &str,
        element: Option<u32>,
        retry: u32,
    ) -> String {
        format!("{}/{retry}", Self::node_dir("metadata", id, node, element))
    }

    pub fn raw_prefix(
        &self,
        id: &WorkflowExecutionIdentifier,
        node: &str,
        element: Option<u32>,
        retry: u32,
    ) -> String {
        format!("{}/{retry}", Self::node_dir("raw", id, node, element))
    }
}

fn decode<M: Message + Default>(bytes: &[u8], what: &str) -> Result<M, DriveError> {
    M::decode(bytes).map_err(|e| DriveError::Corrupt(format!("{what}: {e}")))
}

/// The compiled workflow an execution runs, its tasks given the execution's resource defaults
/// and limits (`platform`, from [`task_resources_of`]).
pub async fn closure_of(
    store: &Store,
    platform: Option<&TaskResourceAttributes>,
    row: &ExecutionRow,
) -> Result<CompiledWorkflowClosure, DriveError> {
    let mut closure = stored_closure(store, row).await?;
    apply_task_resources(
        closure.tasks.iter_mut().filter_map(|t| t.template.as_mut()),
        platform,
    );
    Ok(closure)
}

/// The execution's platform resources (TASK_RESOURCE attributes over the server's defaults):
/// admin stores them beside the inputs when any apply, as flyteadmin sets them on the closure.
pub async fn task_resources_of(
    storage: &Storage,
    row: &ExecutionRow,
) -> Result<Option<TaskResourceAttributes>, DriveError> {
    let key = alula_admin::literals::keys::execution(&row.key, task_resources::KEY_FILE);
    let stored = storage
        .get(&key)
        .await
        .map_err(|e| DriveError::Storage(e.to_string()))?;
    stored
        .map(|bytes| decode(&bytes, "task resources"))
        .transpose()
}

/// Gives `tasks` the execution's resource defaults and limits: the tasks of its closure, and
/// those a dynamic task generates while it runs (its `DynamicJobSpec`), alike.
pub fn apply_task_resources<'a>(
    tasks: impl IntoIterator<Item = &'a mut TaskTemplate>,
    platform: Option<&TaskResourceAttributes>,
) {
    let Some(platform) = platform else {
        return;
    };
    for template in tasks {
        task_resources::apply(template, platform);
    }
}

async fn stored_closure(
    store: &Store,
    row: &ExecutionRow,
) -> Result<CompiledWorkflowClosure, DriveError> {
    if row.launch_entity == ResourceType::Task as i64 {
        let key = EntityKey {
            project: row.key.project.clone(),
            domain: row.key.domain.clone(),
            name: row.task_name.clone(),
            version: row.task_version.clone(),
        };
        let task_row = store
            .get_entity(Entity::Task, &key)
            .await?
            .ok_or_else(|| DriveError::Missing(format!("task {}:{}", key.name, key.version)))?;
        let closure: TaskClosure = decode(&task_row.closure, "task closure")?;
        let compiled = closure
            .compiled_task
            .ok_or_else(|| DriveError::Corrupt("task closure without compiled task".into()))?;
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
        .await?
        .ok_or_else(|| DriveError::Missing(format!("workflow {}:{}", key.name, key.version)))?;
    let closure: WorkflowClosure = decode(&wf_row.closure, "workflow closure")?;
    closure
        .compiled_workflow
        .ok_or_else(|| DriveError::Corrupt("workflow closure without compiled workflow".into()))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> WorkflowExecutionIdentifier {
        WorkflowExecutionIdentifier {
            project: "p".into(),
            domain: "d".into(),
            name: "x".into(),
            org: String::new(),
        }
    }

    #[test]
    fn keys_follow_flytepropeller_and_locations_follow_the_storage() {
        let local = Layout::new(Storage::local("/srv/alula"));
        assert_eq!(
            local.inputs(&id(), "n0", None),
            "metadata/p/d/x/n0/inputs.pb"
        );
        assert_eq!(
            local.output_prefix(&id(), "n1", Some(7), 2),
            "metadata/p/d/x/n1/7/2"
        );
        assert_eq!(local.raw_prefix(&id(), "n1", None, 0), "raw/p/d/x/n1/0");
        // An execution's own raw output prefix replaces the storage's raw folder.
        assert_eq!(
            local.raw_location(Some("s3://mine/data"), &id(), "n1", Some(3), 1),
            PathBuf::from("s3://mine/data/p/d/x/n1/3/1")
        );
        assert_eq!(
            local.raw_location(Some("file:///tmp/raw"), &id(), "n1", None, 0),
            PathBuf::from("/tmp/raw/p/d/x/n1/0")
        );
        assert_eq!(
            local.raw_location(None, &id(), "n1", None, 0),
            PathBuf::from("/srv/alula/raw/p/d/x/n1/0")
        );
        // Local storage: the plain paths plugins have always been given.
        assert_eq!(
            local.location("metadata/p/d/x/n0/inputs.pb"),
            PathBuf::from("/srv/alula/metadata/p/d/x/n0/inputs.pb")
        );
        let s3 = Layout::new(Storage::from_url("s3://bucket/pre").expect("s3 storage"));
        assert_eq!(
            s3.location("metadata/p/d/x/n0/inputs.pb").to_str(),
            Some("s3://bucket/pre/metadata/p/d/x/n0/inputs.pb")
        );
    }
}
