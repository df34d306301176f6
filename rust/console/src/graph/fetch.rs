//! What the graph reads from the API: the compiled workflow, node executions of a level, a
//! dynamic node's generated workflow, a map node's task execution; and the walk from the
//! execution's top level down a path of nested nodes.

use alula_idl::flyteidl::admin::{
    sort, Execution, GetDynamicNodeWorkflowRequest, NodeExecution, NodeExecutionListRequest,
    ObjectGetRequest, Sort, TaskExecution, TaskExecutionListRequest,
};
use alula_idl::flyteidl::core::{
    node, workflow_node, BranchNode, CompiledWorkflow, CompiledWorkflowClosure, Identifier, Node,
    NodeExecutionIdentifier, WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::service::admin_service_server::AdminService;

use super::model::{self, Graph, Kind};
use crate::error::{ConsoleError, ConsoleResult};
use crate::{format, Api};

/// Node executions per list call: one call holds the biggest workflows the console draws.
const NODE_PAGE: u32 = 5_000;

/// Task executions (attempts) per list call: more than any node retries.
const ATTEMPT_PAGE: u32 = 1_000;

pub fn execution_id(execution: &Execution) -> ConsoleResult<&WorkflowExecutionIdentifier> {
    execution
        .id
        .as_ref()
        .ok_or_else(|| ConsoleError::not_found("the execution has no id"))
}

/// The compiled workflow the execution runs (`None` when it has none to show, e.g. a single
/// task launched on its own).
pub async fn workflow_closure(
    api: &Api,
    execution: &Execution,
) -> ConsoleResult<Option<CompiledWorkflowClosure>> {
    let Some(id) = execution
        .closure
        .as_ref()
        .and_then(|c| c.workflow_id.clone())
    else {
        return Ok(None);
    };
    match AdminService::get_workflow(&api.admin, api.request(ObjectGetRequest { id: Some(id) }))
        .await
    {
        Ok(w) => Ok(w.into_inner().closure.and_then(|c| c.compiled_workflow)),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
        Err(status) => Err(status.into()),
    }
}

/// Every node execution of one level: the top level (`parent` empty) or a node's children,
/// oldest first. The execution page, the node panel and the graph all read nodes here.
pub async fn node_executions(
    api: &Api,
    id: &WorkflowExecutionIdentifier,
    parent: &str,
) -> ConsoleResult<Vec<NodeExecution>> {
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = AdminService::list_node_executions(
            &api.admin,
            api.request(NodeExecutionListRequest {
                workflow_execution_id: Some(id.clone()),
                limit: NODE_PAGE,
                token,
                filters: String::new(),
                sort_by: Some(Sort {
                    key: "created_at".to_string(),
                    direction: sort::Direction::Ascending as i32,
                }),
                unique_parent_id: parent.to_string(),
            }),
        )
        .await?
        .into_inner();
        all.extend(page.node_executions);
        if page.token.is_empty() {
            return Ok(all);
        }
        token = page.token;
    }
}

/// The attempts of node `node_id`'s task, first attempt first (an array node reports one task
/// execution per attempt too). The node panel, the node table's counts and the map node's
/// elements all read attempts here.
pub async fn task_executions(
    api: &Api,
    id: &WorkflowExecutionIdentifier,
    node_id: &str,
) -> ConsoleResult<Vec<TaskExecution>> {
    let list = AdminService::list_task_executions(
        &api.admin,
        api.request(TaskExecutionListRequest {
            node_execution_id: Some(NodeExecutionIdentifier {
                node_id: node_id.to_string(),
                execution_id: Some(id.clone()),
            }),
            limit: ATTEMPT_PAGE,
            ..Default::default()
        }),
    )
    .await?
    .into_inner();
    let mut attempts = list.task_executions;
    attempts.sort_by_key(|a| a.id.as_ref().map_or(0, |id| id.retry_attempt));
    Ok(attempts)
}

/// Fills in the element counts of the map nodes that ran: one call per map node, none for others.
pub async fn fill_element_counts(
    api: &Api,
    id: &WorkflowExecutionIdentifier,
    graph: &mut Graph,
) -> ConsoleResult<()> {
    for n in graph.nodes.iter_mut() {
        if n.kind == Kind::Map && n.ran {
            let attempts = task_executions(api, id, &n.id).await?;
            n.elements = Some(model::element_counts(&attempts));
        }
    }
    Ok(())
}

/// One level of nesting: a workflow (the top level, a subworkflow, a dynamic node's generated
/// workflow) or a branch's cases, with the node executions that ran in it.
pub enum Level {
    Workflow {
        workflow: Box<CompiledWorkflow>,
        executions: Vec<NodeExecution>,
        /// The phase of the node this level runs under (the workflow's for the top level).
        parent_phase: &'static str,
    },
    Branch {
        id: String,
        branch: BranchNode,
        phase: &'static str,
        children: Vec<NodeExecution>,
    },
}

impl Level {
    pub fn graph(&self) -> Graph {
        match self {
            Level::Workflow {
                workflow,
                executions,
                parent_phase,
            } => match &workflow.template {
                Some(t) => model::from_template(
                    t,
                    workflow.connections.as_ref(),
                    executions,
                    (*parent_phase == "SUCCEEDED").then_some("SUCCEEDED"),
                ),
                None => Graph::default(),
            },
            Level::Branch {
                id,
                branch,
                phase,
                children,
            } => model::branch_cases(id, branch, phase, children),
        }
    }

    /// The template node and execution of `step` (a node execution id, or the template id of a
    /// node that has not run) in this level.
    fn find(&self, step: &str) -> Option<(Node, Option<NodeExecution>)> {
        let (executions, nodes): (&[NodeExecution], Vec<&Node>) = match self {
            Level::Workflow {
                workflow,
                executions,
                ..
            } => (
                executions,
                workflow
                    .template
                    .iter()
                    .flat_map(|t| t.nodes.iter())
                    .collect(),
            ),
            Level::Branch {
                branch, children, ..
            } => (children, model::case_nodes(branch)),
        };
        let run = executions
            .iter()
            .find(|e| model::node_execution_id(e) == step);
        let spec = run.map_or(step, |e| model::spec_id(e));
        let node = nodes.into_iter().find(|n| n.id == spec)?;
        Some((node.clone(), run.cloned()))
    }
}

fn same_workflow(a: Option<&Identifier>, b: &Identifier) -> bool {
    a.is_some_and(|a| {
        a.project == b.project && a.domain == b.domain && a.name == b.name && a.version == b.version
    })
}

/// Walks from the execution's top level down `path` (node execution ids, or template ids of
/// nodes that never ran) and answers the level inside the last node.
pub async fn nested_level(
    api: &Api,
    execution: &Execution,
    path: &[String],
) -> ConsoleResult<Level> {
    let id = execution_id(execution)?;
    let mut closure = workflow_closure(api, execution)
        .await?
        .ok_or_else(|| ConsoleError::not_found("the execution has no workflow to draw"))?;
    let mut level = Level::Workflow {
        workflow: Box::new(closure.primary.clone().unwrap_or_default()),
        executions: node_executions(api, id, "").await?,
        parent_phase: "UNDEFINED",
    };
    for step in path {
        let (spec, run) = level
            .find(step)
            .ok_or_else(|| ConsoleError::not_found(format!("no node {step:?} at this level")))?;
        let run_id = run.as_ref().map(model::node_execution_id).unwrap_or("");
        let phase = run.as_ref().map_or("UNDEFINED", |r| {
            format::node_phase(r.closure.as_ref().map_or(0, |c| c.phase))
        });
        let children = if run_id.is_empty() {
            Vec::new()
        } else {
            node_executions(api, id, run_id).await?
        };
        let dynamic = run.as_ref().is_some_and(|r| {
            r.metadata.as_ref().is_some_and(|m| m.is_dynamic)
                || r.closure
                    .as_ref()
                    .is_some_and(|c| !c.dynamic_job_spec_uri.is_empty())
        });
        level = match &spec.target {
            Some(node::Target::BranchNode(b)) => Level::Branch {
                id: if run_id.is_empty() { &spec.id } else { run_id }.to_string(),
                branch: (**b).clone(),
                phase,
                children,
            },
            Some(node::Target::WorkflowNode(w)) => match &w.reference {
                Some(workflow_node::Reference::SubWorkflowRef(wid)) => {
                    let workflow = closure
                        .sub_workflows
                        .iter()
                        .find(|s| {
                            same_workflow(s.template.as_ref().and_then(|t| t.id.as_ref()), wid)
                        })
                        .cloned()
                        .ok_or_else(|| {
                            ConsoleError::not_found(format!(
                                "subworkflow {} is not in the closure",
                                wid.name
                            ))
                        })?;
                    Level::Workflow {
                        workflow: Box::new(workflow),
                        executions: children,
                        parent_phase: phase,
                    }
                }
                _ => {
                    return Err(ConsoleError::bad_request(
                        "a launch plan node runs as its own execution: open it from the node",
                    ))
                }
            },
            Some(node::Target::TaskNode(_)) if dynamic => {
                let generated = AdminService::get_dynamic_node_workflow(
                    &api.admin,
                    api.request(GetDynamicNodeWorkflowRequest {
                        id: Some(NodeExecutionIdentifier {
                            node_id: run_id.to_string(),
                            execution_id: Some(id.clone()),
                        }),
                    }),
                )
                .await?
                .into_inner()
                .compiled_workflow
                .unwrap_or_default();
                // Deeper levels find the generated workflow's subworkflows too.
                closure
                    .sub_workflows
                    .extend(generated.sub_workflows.iter().cloned());
                Level::Workflow {
                    workflow: Box::new(generated.primary.unwrap_or_default()),
                    executions: children,
                    parent_phase: phase,
                }
            }
            _ => {
                return Err(ConsoleError::bad_request(format!(
                    "node {step:?} has no nested graph"
                )))
            }
        };
    }
    Ok(level)
}
