//! Definitions a request uses from elsewhere. A request is admitted on the project and domain
//! it names, but a launch may name another project's launch plan or task, and a workflow or
//! launch plan may be built from another project's tasks, launch plans or workflows: using them
//! runs their code, so the caller needs the runner role where they are registered too
//! ([`super::Gate::require_use`]). Without this, a runner of one project could run any
//! project's code by launching (or wrapping) it from its own.

use alula_core::ids::IdDisplay;
use alula_idl::flyteidl::admin::{
    ExecutionCreateRequest, LaunchPlanCreateRequest, WorkflowCreateRequest,
};
use alula_idl::flyteidl::core::Identifier;

/// A definition a request uses, where it is registered.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Used {
    pub project: String,
    pub domain: String,
    /// In words, for the refusal (`launch plan p/d/lp@v1`).
    pub what: String,
}

fn used(kind: &str, id: &Identifier) -> Used {
    Used {
        project: id.project.clone(),
        domain: id.domain.clone(),
        what: format!("{kind} {}", IdDisplay(id)),
    }
}

/// The launch plan (or, for a single-task execution, the task) an execution starts.
pub fn used_by_execution(request: &ExecutionCreateRequest) -> Vec<Used> {
    request
        .spec
        .as_ref()
        .and_then(|spec| spec.launch_plan.as_ref())
        .map(|id| vec![used("definition", id)])
        .unwrap_or_default()
}

/// The tasks and launch plans a workflow's nodes (with its subworkflows') refer to, and the
/// subworkflows it carries.
pub fn used_by_workflow(request: &WorkflowCreateRequest) -> Vec<Used> {
    let Some(spec) = &request.spec else {
        return Vec::new();
    };
    let Some(template) = &spec.template else {
        return Vec::new();
    };
    let needs = alula_compiler::requirements(template, &spec.sub_workflows);
    let mut all: Vec<Used> = needs
        .task_ids
        .iter()
        .map(|id| used("task", id))
        .chain(
            needs
                .launch_plan_ids
                .iter()
                .map(|id| used("launch plan", id)),
        )
        .chain(
            spec.sub_workflows
                .iter()
                .filter_map(|sub| sub.id.as_ref())
                .map(|id| used("subworkflow", id)),
        )
        .collect();
    all.sort();
    all.dedup();
    all
}

/// The workflow a launch plan launches.
pub fn used_by_launch_plan(request: &LaunchPlanCreateRequest) -> Vec<Used> {
    request
        .spec
        .as_ref()
        .and_then(|spec| spec.workflow_id.as_ref())
        .map(|id| vec![used("workflow", id)])
        .unwrap_or_default()
}

/// What of `used` lies outside `project`/`domain` (the request's own scope). An empty project
/// or domain in a reference is resolved to the request's own by the service, so it is not
/// elsewhere.
pub fn elsewhere<'a>(
    used: &'a [Used],
    project: Option<&'a str>,
    domain: Option<&'a str>,
) -> impl Iterator<Item = &'a Used> + 'a {
    used.iter().filter(move |u| {
        let other_project = !u.project.is_empty() && Some(u.project.as_str()) != project;
        let other_domain = !u.domain.is_empty() && Some(u.domain.as_str()) != domain;
        other_project || other_domain
    })
}

#[cfg(test)]
mod tests {
    use alula_idl::flyteidl::admin::{ExecutionSpec, LaunchPlanSpec, WorkflowSpec};
    use alula_idl::flyteidl::core::{
        if_else_block, node, task_node, workflow_node, ArrayNode, BranchNode, IfBlock, IfElseBlock,
        Node, ResourceType, TaskNode, WorkflowNode, WorkflowTemplate,
    };

    use super::*;

    fn id(kind: ResourceType, project: &str, domain: &str, name: &str) -> Identifier {
        Identifier {
            resource_type: kind as i32,
            project: project.into(),
            domain: domain.into(),
            name: name.into(),
            version: "v1".into(),
            org: String::new(),
        }
    }

    fn task_node(task: Identifier) -> Node {
        Node {
            id: format!("n-{}", task.name),
            target: Some(node::Target::TaskNode(TaskNode {
                reference: Some(task_node::Reference::ReferenceId(task)),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn places(used: &[Used], project: &str, domain: &str) -> Vec<String> {
        elsewhere(used, Some(project), Some(domain))
            .map(|u| u.what.clone())
            .collect()
    }

    #[test]
    fn a_workflow_uses_the_tasks_and_launch_plans_of_every_nested_node() {
        let other_task = id(ResourceType::Task, "b", "development", "theirs");
        let own_task = id(ResourceType::Task, "a", "development", "ours");
        let other_lp = id(ResourceType::LaunchPlan, "b", "production", "lp");
        let branch = Node {
            id: "branch".into(),
            target: Some(node::Target::BranchNode(Box::new(BranchNode {
                if_else: Some(Box::new(IfElseBlock {
                    case: Some(Box::new(IfBlock {
                        condition: None,
                        then_node: Some(Box::new(task_node(own_task.clone()))),
                    })),
                    other: vec![],
                    default: Some(if_else_block::Default::ElseNode(Box::new(Node {
                        id: "map".into(),
                        target: Some(node::Target::ArrayNode(Box::new(ArrayNode {
                            node: Some(Box::new(task_node(other_task.clone()))),
                            ..Default::default()
                        }))),
                        ..Default::default()
                    }))),
                })),
            }))),
            ..Default::default()
        };
        let lp_node = Node {
            id: "lp".into(),
            target: Some(node::Target::WorkflowNode(WorkflowNode {
                reference: Some(workflow_node::Reference::LaunchplanRef(other_lp.clone())),
            })),
            ..Default::default()
        };
        let request = WorkflowCreateRequest {
            id: Some(id(ResourceType::Workflow, "a", "development", "wf")),
            spec: Some(WorkflowSpec {
                template: Some(WorkflowTemplate {
                    nodes: vec![branch, lp_node],
                    ..Default::default()
                }),
                ..Default::default()
            }),
        };
        let used = used_by_workflow(&request);
        assert_eq!(used.len(), 3, "{used:?}");
        assert_eq!(
            places(&used, "a", "development"),
            [
                "task b/development/theirs@v1",
                "launch plan b/production/lp@v1"
            ]
        );
        // From project b's development domain only the production launch plan is elsewhere.
        assert_eq!(
            places(&used, "b", "development"),
            [
                "task a/development/ours@v1",
                "launch plan b/production/lp@v1"
            ]
        );
    }

    #[test]
    fn a_launch_and_a_launch_plan_use_what_they_name() {
        let lp = id(ResourceType::LaunchPlan, "b", "development", "lp");
        let launch = ExecutionCreateRequest {
            project: "a".into(),
            domain: "development".into(),
            spec: Some(ExecutionSpec {
                launch_plan: Some(lp.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            places(&used_by_execution(&launch), "a", "development"),
            ["definition b/development/lp@v1"]
        );
        assert!(places(&used_by_execution(&launch), "b", "development").is_empty());
        let plan = LaunchPlanCreateRequest {
            id: Some(id(ResourceType::LaunchPlan, "a", "staging", "lp")),
            spec: Some(LaunchPlanSpec {
                workflow_id: Some(id(ResourceType::Workflow, "a", "development", "wf")),
                ..Default::default()
            }),
        };
        assert_eq!(
            places(&used_by_launch_plan(&plan), "a", "staging"),
            ["workflow a/development/wf@v1"]
        );
    }

    #[test]
    fn empty_names_in_a_reference_are_the_requests_own() {
        let used = vec![used("task", &id(ResourceType::Task, "", "", "t"))];
        assert!(places(&used, "a", "development").is_empty());
    }
}
