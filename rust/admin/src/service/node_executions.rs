//! Reads of what events recorded: node executions (GetNodeExecution, ListNodeExecutions,
//! ListNodeExecutionsForTask, GetNodeExecutionData) and task executions (GetTaskExecution,
//! ListTaskExecutions, GetTaskExecutionData). Data is returned inline when events carried it.

use alula_idl::flyteidl::admin::{
    DynamicNodeWorkflowResponse, GetDynamicNodeWorkflowRequest, NodeExecution,
    NodeExecutionClosure, NodeExecutionForTaskListRequest, NodeExecutionGetDataRequest,
    NodeExecutionGetDataResponse, NodeExecutionGetRequest, NodeExecutionList,
    NodeExecutionListRequest, NodeExecutionMetaData, TaskExecution, TaskExecutionClosure,
    TaskExecutionGetDataRequest, TaskExecutionGetDataResponse, TaskExecutionGetRequest,
    TaskExecutionList, TaskExecutionListRequest,
};
use alula_idl::flyteidl::core::{
    CompiledWorkflowClosure, Identifier, NodeExecutionIdentifier, ResourceType,
    TaskExecutionIdentifier, WorkflowExecutionIdentifier,
};

use super::events::{display_node, node_key};
use super::executions::execution_key;
use super::task_events::{display_task, task_key};
use super::{decode, list_params, AdminApi};
use crate::error::{AdminError, AdminResult};
use crate::list::ListParams;
use crate::store::{
    NodeExecutionKey, NodeExecutionRow, NodeParent, TaskExecutionKey, TaskExecutionRow,
    NODE_EXECUTION_FIELDS, TASK_EXECUTION_FIELDS,
};

pub(super) fn node_id_of(key: &NodeExecutionKey) -> NodeExecutionIdentifier {
    let e = &key.execution;
    NodeExecutionIdentifier {
        node_id: key.node_id.clone(),
        execution_id: Some(WorkflowExecutionIdentifier {
            project: e.project.clone(),
            domain: e.domain.clone(),
            name: e.name.clone(),
            org: String::new(),
        }),
    }
}

pub(super) fn task_id_of(key: &TaskExecutionKey) -> TaskExecutionIdentifier {
    TaskExecutionIdentifier {
        task_id: Some(Identifier {
            resource_type: ResourceType::Task as i32,
            project: key.task_project.clone(),
            domain: key.task_domain.clone(),
            name: key.task_name.clone(),
            version: key.task_version.clone(),
            org: String::new(),
        }),
        node_execution_id: Some(node_id_of(&key.node)),
        retry_attempt: u32::try_from(key.retry_attempt).unwrap_or(0),
    }
}

fn node_execution_of(row: &NodeExecutionRow) -> AdminResult<NodeExecution> {
    let what = || display_node(&row.key);
    Ok(NodeExecution {
        id: Some(node_id_of(&row.key)),
        input_uri: row.input_uri.clone(),
        closure: Some(decode::<NodeExecutionClosure>(&row.closure, what)?),
        metadata: Some(decode::<NodeExecutionMetaData>(&row.metadata, what)?),
    })
}

/// One page of node executions and the token of the next.
fn node_list(list: &ListParams, rows: &[NodeExecutionRow]) -> AdminResult<NodeExecutionList> {
    Ok(NodeExecutionList {
        token: list.next_token(rows.len()),
        node_executions: rows
            .iter()
            .map(node_execution_of)
            .collect::<AdminResult<_>>()?,
    })
}

impl AdminApi {
    async fn node_row(&self, key: &NodeExecutionKey) -> AdminResult<NodeExecutionRow> {
        self.store
            .get_node_execution(key)
            .await?
            .ok_or_else(|| AdminError::not_found(format!("{} not found", display_node(key))))
    }

    async fn task_row(&self, key: &TaskExecutionKey) -> AdminResult<TaskExecutionRow> {
        self.store
            .get_task_execution(key)
            .await?
            .ok_or_else(|| AdminError::not_found(format!("{} not found", display_task(key))))
    }

    /// A task execution is a parent when it yielded nodes (dynamic tasks).
    async fn task_execution_of(&self, row: &TaskExecutionRow) -> AdminResult<TaskExecution> {
        let one = ListParams::parse(&NODE_EXECUTION_FIELDS, "", None, 1, "")
            .map_err(AdminError::Internal)?;
        let children = self
            .store
            .list_node_executions(None, &NodeParent::Task(row.key.text()), &one)
            .await?;
        Ok(TaskExecution {
            id: Some(task_id_of(&row.key)),
            input_uri: row.input_uri.clone(),
            closure: Some(decode::<TaskExecutionClosure>(&row.closure, || {
                display_task(&row.key)
            })?),
            is_parent: !children.is_empty(),
        })
    }

    pub(crate) async fn get_node_execution(
        &self,
        req: NodeExecutionGetRequest,
    ) -> AdminResult<NodeExecution> {
        let key = node_key(req.id.as_ref())?;
        node_execution_of(&self.node_row(&key).await?)
    }

    /// The workflow a dynamic node ran, as its events reported it compiled.
    pub(crate) async fn get_dynamic_node_workflow(
        &self,
        req: GetDynamicNodeWorkflowRequest,
    ) -> AdminResult<DynamicNodeWorkflowResponse> {
        let key = node_key(req.id.as_ref())?;
        let row = self.node_row(&key).await?;
        if row.dynamic_workflow.is_empty() {
            return Err(AdminError::not_found(format!(
                "{} has no dynamic workflow",
                display_node(&key)
            )));
        }
        let compiled = decode::<CompiledWorkflowClosure>(&row.dynamic_workflow, || {
            format!("the dynamic workflow of {}", display_node(&key))
        })?;
        Ok(DynamicNodeWorkflowResponse {
            compiled_workflow: Some(compiled),
        })
    }

    /// The workflow's own nodes, or with `unique_parent_id` the children of that node.
    pub(crate) async fn list_node_executions(
        &self,
        req: NodeExecutionListRequest,
    ) -> AdminResult<NodeExecutionList> {
        let execution = execution_key(req.workflow_execution_id.as_ref())?;
        let list = list_params(
            &NODE_EXECUTION_FIELDS,
            &req.filters,
            req.sort_by.as_ref(),
            req.limit,
            &req.token,
        )?;
        self.execution_row(&execution).await?;
        let parent = if req.unique_parent_id.is_empty() {
            NodeParent::TopLevel
        } else {
            NodeParent::Node(req.unique_parent_id.clone())
        };
        let rows = self
            .store
            .list_node_executions(Some(&execution), &parent, &list)
            .await?;
        node_list(&list, &rows)
    }

    /// The nodes a task execution yielded (the nodes of a dynamic task's workflow).
    pub(crate) async fn list_node_executions_for_task(
        &self,
        req: NodeExecutionForTaskListRequest,
    ) -> AdminResult<NodeExecutionList> {
        let key = task_key(req.task_execution_id.as_ref())?;
        let list = list_params(
            &NODE_EXECUTION_FIELDS,
            &req.filters,
            req.sort_by.as_ref(),
            req.limit,
            &req.token,
        )?;
        self.task_row(&key).await?;
        let rows = self
            .store
            .list_node_executions(None, &NodeParent::Task(key.text()), &list)
            .await?;
        node_list(&list, &rows)
    }

    pub(crate) async fn get_node_execution_data(
        &self,
        req: NodeExecutionGetDataRequest,
    ) -> AdminResult<NodeExecutionGetDataResponse> {
        let key = node_key(req.id.as_ref())?;
        let row = self.node_row(&key).await?;
        // flytekit rebuilds a dynamic node's children from this closure.
        let dynamic_workflow = if row.dynamic_workflow.is_empty() {
            None
        } else {
            let compiled = decode::<CompiledWorkflowClosure>(&row.dynamic_workflow, || {
                format!("the dynamic workflow of {}", display_node(&key))
            })?;
            Some(alula_idl::flyteidl::admin::DynamicWorkflowNodeMetadata {
                id: compiled
                    .primary
                    .as_ref()
                    .and_then(|p| p.template.as_ref())
                    .and_then(|t| t.id.clone()),
                compiled_workflow: Some(compiled),
                dynamic_job_spec_uri: String::new(),
            })
        };
        let what = display_node(&key);
        let inputs = self
            .literals_for_client(&row.inputs, &row.inputs_uri, &format!("inputs of {what}"))
            .await?;
        let outputs = self
            .literals_for_client(
                &row.outputs,
                &row.outputs_uri,
                &format!("outputs of {what}"),
            )
            .await?;
        #[allow(deprecated)]
        Ok(NodeExecutionGetDataResponse {
            inputs: inputs.blob,
            outputs: outputs.blob,
            full_inputs: inputs.full,
            full_outputs: outputs.full,
            dynamic_workflow,
            ..Default::default()
        })
    }

    pub(crate) async fn get_task_execution(
        &self,
        req: TaskExecutionGetRequest,
    ) -> AdminResult<TaskExecution> {
        let key = task_key(req.id.as_ref())?;
        let row = self.task_row(&key).await?;
        self.task_execution_of(&row).await
    }

    pub(crate) async fn list_task_executions(
        &self,
        req: TaskExecutionListRequest,
    ) -> AdminResult<TaskExecutionList> {
        let node = node_key(req.node_execution_id.as_ref())?;
        let list = list_params(
            &TASK_EXECUTION_FIELDS,
            &req.filters,
            req.sort_by.as_ref(),
            req.limit,
            &req.token,
        )?;
        self.node_row(&node).await?;
        let rows = self.store.list_task_executions(&node, &list).await?;
        let mut task_executions = Vec::with_capacity(rows.len());
        for row in &rows {
            task_executions.push(self.task_execution_of(row).await?);
        }
        Ok(TaskExecutionList {
            token: list.next_token(rows.len()),
            task_executions,
        })
    }

    pub(crate) async fn get_task_execution_data(
        &self,
        req: TaskExecutionGetDataRequest,
    ) -> AdminResult<TaskExecutionGetDataResponse> {
        let key = task_key(req.id.as_ref())?;
        let row = self.task_row(&key).await?;
        let what = display_task(&key);
        let inputs = self
            .literals_for_client(&row.inputs, &row.inputs_uri, &format!("inputs of {what}"))
            .await?;
        let outputs = self
            .literals_for_client(
                &row.outputs,
                &row.outputs_uri,
                &format!("outputs of {what}"),
            )
            .await?;
        #[allow(deprecated)]
        Ok(TaskExecutionGetDataResponse {
            inputs: inputs.blob,
            outputs: outputs.blob,
            full_inputs: inputs.full,
            full_outputs: outputs.full,
            ..Default::default()
        })
    }
}
