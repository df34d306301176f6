//! The workflow's edges, the orphan wiring's queries, reachability and cycle detection, and the
//! `ConnectionSet` of the compiled output.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use alula_idl::flyteidl::core::{connection_set::IdList, ConnectionSet};

use crate::errors::ErrorCode;
use crate::names::START_NODE_ID;
use crate::workflow::WorkflowCompiler;

/// Whether an edge also makes the target a downstream of the source. The failure node only
/// records its upstreams: it runs when the workflow fails, not after its upstream nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EdgeKind {
    Execution,
    UpstreamOnly,
}

#[derive(Default)]
pub(crate) struct Graph {
    upstream: BTreeMap<String, BTreeSet<String>>,
    downstream: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    pub fn add(&mut self, from: &str, to: &str, kind: EdgeKind) {
        self.upstream
            .entry(to.to_string())
            .or_default()
            .insert(from.to_string());
        if kind == EdgeKind::Execution {
            self.downstream
                .entry(from.to_string())
                .or_default()
                .insert(to.to_string());
        }
    }

    pub fn has_upstream(&self, id: &str) -> bool {
        self.upstream.get(id).is_some_and(|s| !s.is_empty())
    }

    pub fn has_downstream(&self, id: &str) -> bool {
        self.downstream.get(id).is_some_and(|s| !s.is_empty())
    }

    pub fn connection_set(&self) -> ConnectionSet {
        let convert = |m: &BTreeMap<String, BTreeSet<String>>| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        IdList {
                            ids: v.iter().cloned().collect(),
                        },
                    )
                })
                .collect()
        };
        ConnectionSet {
            downstream: convert(&self.downstream),
            upstream: convert(&self.upstream),
        }
    }

    /// Depth-first search over downstream edges from `root`, skipping nodes already in
    /// `visited`. Returns the first cycle met, as the path from the repeated node onwards.
    /// Iterative, so a 100,000-node chain cannot overflow the stack.
    fn visit_from(&self, root: &str, visited: &mut HashSet<String>) -> Option<Vec<String>> {
        if !visited.insert(root.to_string()) {
            return None;
        }
        let mut on_path: HashSet<&str> = HashSet::from([root]);
        let mut stack: Vec<(&str, Vec<&str>)> = vec![(root, self.children(root))];
        while let Some((node, children)) = stack.last_mut() {
            let Some(child) = children.pop() else {
                on_path.remove(*node);
                stack.pop();
                continue;
            };
            if on_path.contains(child) {
                let start = stack.iter().position(|(n, _)| *n == child).unwrap_or(0);
                return Some(stack[start..].iter().map(|(n, _)| n.to_string()).collect());
            }
            if visited.insert(child.to_string()) {
                on_path.insert(child);
                stack.push((child, self.children(child)));
            }
        }
        None
    }

    /// Children in reverse order so that popping visits them sorted.
    fn children(&self, id: &str) -> Vec<&str> {
        self.downstream
            .get(id)
            .map(|s| s.iter().rev().map(String::as_str).collect())
            .unwrap_or_default()
    }
}

impl WorkflowCompiler<'_> {
    /// Every top-level node must be reachable from `start-node`, and the graph must be acyclic.
    pub(crate) fn check_reachability(&mut self, top_level: &[&str]) {
        let mut visited = HashSet::new();
        let mut cycles = Vec::new();
        cycles.extend(self.graph.visit_from(START_NODE_ID, &mut visited));
        let unreachable: Vec<&str> = top_level
            .iter()
            .copied()
            .filter(|id| !visited.contains(*id))
            .collect();
        if cycles.is_empty() && !unreachable.is_empty() {
            // Nodes in a cycle all have upstreams, so none was wired to start-node: name the
            // cycle too, it is the reason they cannot be reached.
            for id in &unreachable {
                cycles.extend(self.graph.visit_from(id, &mut visited));
            }
            self.error(
                ErrorCode::UnreachableNodes,
                unreachable[0],
                format!(
                    "The Workflow contain unreachable nodes [{}].",
                    unreachable.join(", ")
                ),
            );
        }
        for cycle in cycles {
            let first = cycle.first().cloned().unwrap_or_default();
            self.error(
                ErrorCode::CycleDetected,
                &first,
                format!(
                    "A cycle has been detected while traversing the Workflow [{}].",
                    cycle.join(">")
                ),
            );
        }
    }
}
