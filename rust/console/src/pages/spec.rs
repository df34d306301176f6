//! What the registered definitions say about an execution's nodes: their names, what they run,
//! and the interfaces that type their values. Read once per page (one GetWorkflow or GetTask),
//! never per node.

use std::collections::HashMap;

use alula_idl::flyteidl::admin::{Execution, ObjectGetRequest};
use alula_idl::flyteidl::core::{
    gate_node, node, task_node, workflow_node, CompiledWorkflowClosure, Identifier, Node,
    ResourceType, TypedInterface, VariableMap,
};
use alula_idl::flyteidl::service::admin_service_server::AdminService;

use crate::{graph, Api};

/// The compiled workflow of an execution, or the task a single-task execution runs.
#[derive(Default)]
pub struct Definition {
    pub workflow: Option<CompiledWorkflowClosure>,
    /// The interface of the execution (the workflow's, or the single task's).
    pub interface: Option<TypedInterface>,
}

impl Definition {
    /// Reads the definition of `execution`; a definition that cannot be read (deleted, say)
    /// leaves the page untyped rather than failing it.
    pub async fn load(api: &Api, execution: &Execution) -> Self {
        let closure = execution.closure.as_ref();
        let target = execution.spec.as_ref().and_then(|s| s.launch_plan.as_ref());
        if closure.is_some_and(|c| c.workflow_id.is_some()) {
            let workflow = graph::workflow_closure(api, execution)
                .await
                .unwrap_or_else(|e| {
                    tracing::debug!(error = %e, "the console could not read a workflow");
                    None
                });
            let interface = workflow
                .as_ref()
                .and_then(|w| w.primary.as_ref())
                .and_then(|p| p.template.as_ref())
                .and_then(|t| t.interface.clone());
            return Self {
                workflow,
                interface,
            };
        }
        match target {
            Some(task) if task.resource_type == ResourceType::Task as i32 => Self {
                workflow: None,
                interface: task_interface(api, task).await,
            },
            _ => Self::default(),
        }
    }

    /// The node whose spec id is `spec_node_id`, in the primary workflow, its subworkflows and
    /// branches (nested node executions are named `parent-retry-id`, their spec id is `id`).
    pub fn find_node(&self, spec_node_id: &str) -> Option<&Node> {
        let workflow = self.workflow.as_ref()?;
        let templates = workflow
            .primary
            .iter()
            .chain(&workflow.sub_workflows)
            .filter_map(|w| w.template.as_ref());
        for template in templates {
            for node in &template.nodes {
                if let Some(found) = find_in(node, spec_node_id) {
                    return Some(found);
                }
            }
        }
        None
    }

    /// A short description of each top-level node of the primary workflow, by node id.
    pub fn top_level_nodes(&self) -> HashMap<&str, NodeInfo> {
        let nodes = self
            .workflow
            .as_ref()
            .and_then(|w| w.primary.as_ref())
            .and_then(|p| p.template.as_ref())
            .map(|t| t.nodes.as_slice())
            .unwrap_or_default();
        nodes
            .iter()
            .map(|n| (n.id.as_str(), NodeInfo::of(n)))
            .collect()
    }

    pub fn inputs(&self) -> Option<&VariableMap> {
        self.interface.as_ref().and_then(|i| i.inputs.as_ref())
    }

    pub fn outputs(&self) -> Option<&VariableMap> {
        self.interface.as_ref().and_then(|i| i.outputs.as_ref())
    }
}

fn find_in<'a>(node: &'a Node, id: &str) -> Option<&'a Node> {
    if node.id == id {
        return Some(node);
    }
    match &node.target {
        Some(node::Target::BranchNode(branch)) => graph::case_nodes(branch)
            .into_iter()
            .find_map(|case| find_in(case, id)),
        Some(node::Target::ArrayNode(array)) => array.node.as_ref().and_then(|n| find_in(n, id)),
        _ => None,
    }
}

/// What a node is, for a table row: its name and what it runs.
pub struct NodeInfo {
    pub name: String,
    pub runs: String,
}

impl NodeInfo {
    pub fn of(node: &Node) -> Self {
        let name = node
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| node.id.clone());
        Self {
            name,
            runs: runs(node),
        }
    }
}

/// `task t1`, `launch plan lp`, `subworkflow sub`, `branch`, `approval`, `map of t1`.
fn runs(node: &Node) -> String {
    match &node.target {
        Some(node::Target::TaskNode(t)) => match &t.reference {
            Some(task_node::Reference::ReferenceId(id)) => format!("task {}", id.name),
            None => "task".to_string(),
        },
        Some(node::Target::WorkflowNode(w)) => match &w.reference {
            Some(workflow_node::Reference::LaunchplanRef(id)) => {
                format!("launch plan {}", id.name)
            }
            Some(workflow_node::Reference::SubWorkflowRef(id)) => {
                format!("subworkflow {}", id.name)
            }
            None => "workflow".to_string(),
        },
        Some(node::Target::BranchNode(_)) => "branch".to_string(),
        Some(node::Target::GateNode(g)) => match &g.condition {
            Some(gate_node::Condition::Approve(_)) => "approval".to_string(),
            Some(gate_node::Condition::Signal(_)) => "signal".to_string(),
            Some(gate_node::Condition::Sleep(_)) => "sleep".to_string(),
            None => "gate".to_string(),
        },
        Some(node::Target::ArrayNode(a)) => match a.node.as_deref() {
            Some(inner) => format!("map of {}", runs(inner)),
            None => "map".to_string(),
        },
        None => String::new(),
    }
}

/// The interface of task `id`, when it can be read.
pub async fn task_interface(api: &Api, id: &Identifier) -> Option<TypedInterface> {
    let mut id = id.clone();
    id.resource_type = ResourceType::Task as i32;
    let request = api.request(ObjectGetRequest { id: Some(id) });
    match AdminService::get_task(&api.admin, request).await {
        Ok(task) => {
            task.into_inner()
                .closure?
                .compiled_task?
                .template?
                .interface
        }
        Err(status) => {
            tracing::debug!(%status, "the console could not read a task");
            None
        }
    }
}
