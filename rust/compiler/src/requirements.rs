//! `requirements`: which tasks and launch plans a workflow needs before it can be compiled
//! (admin loads them from its store, which is why tasks are registered first).

use std::collections::{BTreeMap, BTreeSet};

use alula_core::ids::EntityKey;
use alula_idl::flyteidl::core::{
    if_else_block, node::Target, task_node, workflow_node, Identifier, Node, WorkflowTemplate,
};

/// The ids a workflow (with its subworkflows) refers to, deduplicated and sorted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Requirements {
    pub task_ids: Vec<Identifier>,
    pub launch_plan_ids: Vec<Identifier>,
}

/// Walks task nodes, launch-plan nodes, branches, array nodes, failure nodes and (recursively)
/// the subworkflows referenced from `primary`.
pub fn requirements(primary: &WorkflowTemplate, subworkflows: &[WorkflowTemplate]) -> Requirements {
    let subs: BTreeMap<EntityKey, &WorkflowTemplate> = subworkflows
        .iter()
        .filter_map(|wf| Some((EntityKey::from(wf.id.as_ref()?), wf)))
        .collect();
    let mut walk = Walk {
        subs,
        visited_subworkflows: BTreeSet::new(),
        tasks: BTreeMap::new(),
        launch_plans: BTreeMap::new(),
    };
    walk.workflow(primary);
    Requirements {
        task_ids: walk.tasks.into_values().collect(),
        launch_plan_ids: walk.launch_plans.into_values().collect(),
    }
}

struct Walk<'a> {
    subs: BTreeMap<EntityKey, &'a WorkflowTemplate>,
    visited_subworkflows: BTreeSet<EntityKey>,
    tasks: BTreeMap<EntityKey, Identifier>,
    launch_plans: BTreeMap<EntityKey, Identifier>,
}

impl Walk<'_> {
    fn workflow(&mut self, wf: &WorkflowTemplate) {
        for node in wf.nodes.iter().chain(wf.failure_node.as_ref()) {
            self.node(node);
        }
    }

    fn node(&mut self, node: &Node) {
        match &node.target {
            Some(Target::TaskNode(t)) => {
                if let Some(task_node::Reference::ReferenceId(id)) = &t.reference {
                    self.tasks.insert(EntityKey::from(id), id.clone());
                }
            }
            Some(Target::WorkflowNode(w)) => match &w.reference {
                Some(workflow_node::Reference::LaunchplanRef(id)) => {
                    self.launch_plans.insert(EntityKey::from(id), id.clone());
                }
                Some(workflow_node::Reference::SubWorkflowRef(id)) => {
                    let key = EntityKey::from(id);
                    // A subworkflow used twice (or recursively) is walked once.
                    if self.visited_subworkflows.insert(key.clone()) {
                        if let Some(sub) = self.subs.get(&key).copied() {
                            self.workflow(sub);
                        }
                    }
                }
                None => {}
            },
            Some(Target::BranchNode(b)) => {
                let Some(if_else) = &b.if_else else { return };
                let thens = if_else
                    .case
                    .iter()
                    .map(|c| &**c)
                    .chain(&if_else.other)
                    .filter_map(|c| c.then_node.as_deref());
                for then in thens {
                    self.node(then);
                }
                if let Some(if_else_block::Default::ElseNode(n)) = &if_else.default {
                    self.node(n);
                }
            }
            Some(Target::ArrayNode(a)) => {
                if let Some(inner) = &a.node {
                    self.node(inner);
                }
            }
            Some(Target::GateNode(_)) | None => {}
        }
    }
}
