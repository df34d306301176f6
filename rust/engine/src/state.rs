//! The serialisable state of one execution: every node execution, every workflow scope, and
//! the recipes of graphs made at run time. Persisting this after each transition is enough for
//! a restarted engine to resume (see [`crate::Execution::resume`]); its stored form is
//! [`crate::state_codec`]'s.

use std::collections::BTreeMap;

use alula_idl::flyteidl::core::{ExecutionError, Literal, LiteralMap, WorkflowExecutionIdentifier};
use serde::{Deserialize, Serialize};

use crate::program::GraphSource;

/// Phases of a workflow execution (flyteidl `WorkflowExecution.Phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkflowPhase {
    Queued,
    Running,
    Succeeding,
    Succeeded,
    Failing,
    Failed,
    Aborting,
    Aborted,
    TimedOut,
}

impl WorkflowPhase {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Aborted | Self::TimedOut
        )
    }
}

/// Phases of a node execution (flyteidl `NodeExecution.Phase`), plus `NotYetStarted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodePhase {
    NotYetStarted,
    Running,
    DynamicRunning,
    Succeeded,
    Failed,
    TimedOut,
    Skipped,
    Aborted,
}

impl NodePhase {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::TimedOut | Self::Skipped | Self::Aborted
        )
    }
}

/// What a node of each kind remembers beyond the common fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum KindState {
    None,
    /// A branch runs its chosen case as a child node in the same scope.
    Branch {
        child: Option<u32>,
    },
    /// A subworkflow or a dynamic task's workflow runs in a scope of its own.
    Scope {
        scope: u32,
    },
    /// A sleep gate wakes at this time (microseconds since the epoch).
    Sleep {
        wake_at_us: u64,
    },
    /// An approve or signal gate waits for `signal`.
    Signal,
    /// A launch plan runs as a child execution owned by the driver.
    Child,
    Array(Box<ArrayState>),
}

/// One node execution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeState {
    /// Unique within the execution: `n1`, or `n1-0-n0` inside a subworkflow run by `n1`.
    pub id: String,
    /// The scope whose outputs its bindings read.
    pub scope: u32,
    /// Where its spec lives: `program.graphs[graph].nodes[index]`.
    pub graph: u32,
    pub index: u32,
    /// The branch node this node is the chosen case of.
    pub branch_parent: Option<u32>,
    pub phase: NodePhase,
    /// Upstream nodes that have not finished yet.
    pub pending: u32,
    /// An upstream node was skipped (or failed, when the workflow goes on): this one will not run.
    pub blocked: bool,
    #[serde(with = "crate::state_codec::proto_option")]
    pub inputs: Option<LiteralMap>,
    #[serde(with = "crate::state_codec::proto_option")]
    pub outputs: Option<LiteralMap>,
    #[serde(with = "crate::state_codec::proto_option")]
    pub error: Option<ExecutionError>,
    /// Attempts started so far (the next attempt's `retry_attempt`).
    pub attempts: u32,
    pub user_failures: u32,
    pub system_failures: u32,
    /// The attempt in flight, if any.
    pub running: Option<u64>,
    pub kind: KindState,
    /// Succeeded by reusing the outputs the node had in the execution this one recovers
    /// (RecoverExecution): reported as RECOVERED, nothing ran.
    #[serde(default)]
    pub recovered: bool,
}

/// The state of one element of an array node, kept small: a map over 100,000 elements holds
/// 100,000 of these.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ElementState {
    pub phase: NodePhase,
    pub attempts: u32,
    pub user_failures: u32,
    pub system_failures: u32,
    pub running: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArrayState {
    pub elements: Vec<ElementState>,
    /// The next element to start.
    pub next: u32,
    pub running: u32,
    pub succeeded: u32,
    pub failed: u32,
    /// Most elements running at once (0: no limit of its own).
    pub parallelism: u32,
    pub min_successes: u32,
    #[serde(with = "crate::state_codec::proto_option")]
    pub first_error: Option<ExecutionError>,
    /// Element outputs by output name, one list slot per element (None until it succeeds):
    /// columns keep a 100,000-element map small where a map per element would not.
    #[serde(with = "crate::state_codec::proto_columns")]
    pub outputs: BTreeMap<String, Vec<Literal>>,
}

/// One run of a workflow graph: the primary workflow, a subworkflow, or a dynamic workflow.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScopeState {
    pub graph: u32,
    /// The node this scope runs for (`None`: the execution's primary workflow).
    pub parent: Option<u32>,
    /// Prefix of its nodes' execution ids.
    pub prefix: String,
    /// The values of the `start-node`'s outputs: the workflow's inputs.
    #[serde(with = "crate::state_codec::proto")]
    pub inputs: LiteralMap,
    /// Arena index of the graph's first node; the graph's nodes are contiguous.
    pub first_node: u32,
    /// Nodes not yet in a terminal phase.
    pub remaining: u32,
    #[serde(with = "crate::state_codec::proto_option")]
    pub error: Option<ExecutionError>,
    /// The failure node, once the scope failed and started it.
    pub failure_node: Option<u32>,
    pub done: bool,
}

/// Everything an execution needs to resume.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecutionState {
    #[serde(with = "crate::state_codec::proto")]
    pub execution_id: WorkflowExecutionIdentifier,
    pub phase: WorkflowPhase,
    pub nodes: Vec<NodeState>,
    pub scopes: Vec<ScopeState>,
    pub graph_sources: Vec<GraphSource>,
    pub next_attempt: u64,
    #[serde(with = "crate::state_codec::proto_option")]
    pub outputs: Option<LiteralMap>,
    #[serde(with = "crate::state_codec::proto_option")]
    pub error: Option<ExecutionError>,
}
