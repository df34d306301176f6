//! flyteidl execution events for every phase change, as propeller reports them to admin.
//!
//! Built only when the execution records events: a local run without observers skips the
//! allocations entirely.

use alula_idl::flyteidl::core::{
    connection_set, node, node_execution, task_execution, workflow_execution, workflow_node,
    CatalogCacheStatus, CompiledTask, CompiledWorkflow, CompiledWorkflowClosure, ConnectionSet,
    DynamicJobSpec, ExecutionError, Identifier, LiteralMap, NodeExecutionIdentifier, ResourceType,
    TaskLog, TaskTemplate, WorkflowExecutionIdentifier, WorkflowTemplate,
};
use alula_idl::flyteidl::event::{
    node_execution_event, task_execution_event, workflow_execution_event,
    DynamicWorkflowNodeMetadata, ExternalResourceInfo, NodeExecutionEvent,
    ParentNodeExecutionMetadata, TaskExecutionEvent, TaskExecutionMetadata, TaskNodeMetadata,
    WorkflowExecutionEvent,
};
use alula_idl::wkt::{value, Struct, Timestamp, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::execution::ExecutionSettings;
use crate::program::{Program, START_NODE};
use crate::state::{ExecutionState, KindState, NodePhase, NodeState, WorkflowPhase};

/// Array nodes with more elements than this report their task events without the per-element
/// external resources: one event must stay a reasonable size.
pub(crate) const MAX_EXTERNAL_RESOURCES: usize = 10_000;

/// An event for the execution's sink.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Workflow(Box<WorkflowExecutionEvent>),
    Node(Box<NodeExecutionEvent>),
    Task(Box<TaskExecutionEvent>),
}

/// Task attempt phases that the engine reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskPhase {
    Running,
    Succeeded,
    RetryableFailed,
    Failed,
}

/// Where a node execution sits, as flyteidl's node events say it: what admin needs to nest
/// node executions under their parents and flytekit to match them with their specs.
#[derive(Debug)]
pub(crate) struct NodeEventInfo<'a> {
    /// The id of the node in its workflow template (a branch case's node id for a branch's
    /// chosen case).
    pub spec_node_id: &'a str,
    /// The node execution this one runs under: the branch node of a chosen case, the
    /// subworkflow or dynamic node of a node in their workflow.
    pub parent: Option<&'a str>,
    /// The parent's attempt, as propeller reports it for nodes that have a parent.
    pub retry_group: Option<u32>,
    pub is_parent: bool,
    pub is_dynamic: bool,
    pub is_array: bool,
}

impl<'a> NodeEventInfo<'a> {
    pub(crate) fn of(program: &'a Program, state: &'a ExecutionState, n: u32) -> Self {
        let node = &state.nodes[n as usize];
        let spec = &program.graphs[node.graph as usize].nodes[node.index as usize];
        let parent = node
            .branch_parent
            .or_else(|| state.scopes.get(node.scope as usize)?.parent)
            .map(|p| &state.nodes[p as usize]);
        let in_scope = matches!(node.kind, KindState::Scope { .. });
        let (is_parent, is_dynamic) = match &spec.target {
            Some(node::Target::BranchNode(_)) => (true, false),
            Some(node::Target::WorkflowNode(w)) => (
                in_scope
                    || matches!(
                        w.reference,
                        Some(workflow_node::Reference::SubWorkflowRef(_))
                    ),
                false,
            ),
            Some(node::Target::TaskNode(_)) => (in_scope, in_scope),
            _ => (false, false),
        };
        NodeEventInfo {
            spec_node_id: &spec.id,
            parent: parent.map(|p| p.id.as_str()),
            retry_group: parent.map(|p| p.attempts.saturating_sub(1)),
            is_parent,
            is_dynamic,
            is_array: matches!(spec.target, Some(node::Target::ArrayNode(_))),
        }
    }
}

/// The closure reported for a dynamic workflow the compiler could not check (it calls launch
/// plans): the workflow as the graph runs it, with its subworkflows and the tasks it names.
pub(crate) fn uncompiled_dynamic_closure(
    program: &Program,
    graph: usize,
    spec: &DynamicJobSpec,
    node_id: &str,
) -> CompiledWorkflowClosure {
    let g = &program.graphs[graph];
    let mut upstream = std::collections::BTreeMap::new();
    let mut downstream = std::collections::BTreeMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        for &d in &g.downstream[i] {
            let down = &g.nodes[d].id;
            upstream
                .entry(down.clone())
                .or_insert_with(connection_set::IdList::default)
                .ids
                .push(n.id.clone());
            downstream
                .entry(n.id.clone())
                .or_insert_with(connection_set::IdList::default)
                .ids
                .push(down.clone());
        }
        if g.upstream_count[i] == 0 {
            downstream
                .entry(START_NODE.to_string())
                .or_insert_with(connection_set::IdList::default)
                .ids
                .push(n.id.clone());
        }
    }
    let template = WorkflowTemplate {
        id: Some(Identifier {
            resource_type: ResourceType::Workflow as i32,
            name: format!("{node_id}-dynamic"),
            ..Default::default()
        }),
        interface: g.interface.clone(),
        nodes: g.nodes.clone(),
        outputs: g.outputs.clone(),
        ..Default::default()
    };
    let required = alula_compiler::requirements(&template, &spec.subworkflows);
    let tasks = required
        .task_ids
        .iter()
        .filter_map(|id| program.task(id).ok())
        .map(|t| CompiledTask {
            template: Some((*t).clone()),
        })
        .collect();
    CompiledWorkflowClosure {
        primary: Some(CompiledWorkflow {
            template: Some(template),
            connections: Some(ConnectionSet {
                upstream,
                downstream,
            }),
        }),
        sub_workflows: spec
            .subworkflows
            .iter()
            .map(|w| CompiledWorkflow {
                template: Some(w.clone()),
                connections: None,
            })
            .collect(),
        tasks,
        ..Default::default()
    }
}

fn element_phase(p: NodePhase, terminal: bool) -> task_execution::Phase {
    use task_execution::Phase as P;
    match p {
        NodePhase::Succeeded => P::Succeeded,
        NodePhase::Failed | NodePhase::TimedOut => P::Failed,
        NodePhase::Aborted | NodePhase::Skipped => P::Aborted,
        // Elements still pending when the array node ends were cancelled.
        _ if terminal => P::Aborted,
        NodePhase::Running | NodePhase::DynamicRunning => P::Running,
        NodePhase::NotYetStarted => P::Queued,
    }
}

/// Room for every `TaskExecution.Phase` number (they run 0..=8 today).
const PHASE_SLOTS: usize = 16;

/// The `custom_info` of every array node task event: how many elements there are and how many
/// are in each phase, so a reader knows the array's progress even when the event carries no
/// per-element external resources (arrays over [`MAX_EXTERNAL_RESOURCES`]). The shape:
///
/// ```json
/// {"elements": {"total": 3, "phases": {"SUCCEEDED": 2, "RUNNING": 1}}}
/// ```
///
/// `phases` keys are `TaskExecution.Phase` names (the phase an external resource of the element
/// would carry: QUEUED, RUNNING, SUCCEEDED, FAILED, ABORTED), only phases with elements appear,
/// and the counts add up to `total`. Numbers are JSON numbers (protobuf `Struct` doubles).
fn element_counts(phases: impl Iterator<Item = task_execution::Phase>) -> Struct {
    // Counted by the phase's number, not its name: this runs over every element of arrays of
    // any size, and an indexed add is far cheaper than a map lookup per element.
    let mut counts = [0u64; PHASE_SLOTS];
    for p in phases {
        if let Some(c) = counts.get_mut(p as usize) {
            *c += 1;
        }
    }
    let total = counts.iter().sum();
    let number = |n: u64| Value {
        kind: Some(value::Kind::NumberValue(n as f64)),
    };
    let object = |fields: BTreeMap<String, Value>| Value {
        kind: Some(value::Kind::StructValue(Struct { fields })),
    };
    let phases = counts
        .into_iter()
        .enumerate()
        .filter(|&(_, n)| n > 0)
        .filter_map(|(i, n)| {
            let phase = task_execution::Phase::try_from(i32::try_from(i).ok()?).ok()?;
            Some((phase.as_str_name().to_string(), number(n)))
        })
        .collect();
    let elements = BTreeMap::from([
        ("total".to_string(), number(total)),
        ("phases".to_string(), object(phases)),
    ]);
    Struct {
        fields: BTreeMap::from([("elements".to_string(), object(elements))]),
    }
}

pub(crate) struct EventBuilder {
    enabled: bool,
    execution_id: WorkflowExecutionIdentifier,
    producer_id: String,
    events: Vec<Event>,
    /// The cache status of a task node whose terminal event comes next.
    pending_cache: Option<(u32, i32)>,
    /// Log links of array elements' latest attempts, as the driver hands them in (the engine
    /// does no I/O): (node, element) → (retry attempt, links). Kept in memory only, as links
    /// are: a restarted driver hands them in again for the attempts it re-attaches to.
    element_logs: HashMap<(u32, u32), (u32, Vec<TaskLog>)>,
    /// Array nodes whose elements got links since their last task event.
    logs_changed: BTreeSet<u32>,
}

fn timestamp(us: u64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: (us / 1_000_000) as i64,
        nanos: ((us % 1_000_000) * 1000) as i32,
    })
}

pub fn node_phase(p: NodePhase) -> node_execution::Phase {
    use node_execution::Phase as P;
    match p {
        NodePhase::NotYetStarted => P::Undefined,
        NodePhase::Running => P::Running,
        NodePhase::DynamicRunning => P::DynamicRunning,
        NodePhase::Succeeded => P::Succeeded,
        NodePhase::Failed => P::Failed,
        NodePhase::TimedOut => P::TimedOut,
        NodePhase::Skipped => P::Skipped,
        NodePhase::Aborted => P::Aborted,
    }
}

pub fn workflow_phase(p: WorkflowPhase) -> workflow_execution::Phase {
    use workflow_execution::Phase as P;
    match p {
        WorkflowPhase::Queued => P::Queued,
        WorkflowPhase::Running => P::Running,
        WorkflowPhase::Succeeding => P::Succeeding,
        WorkflowPhase::Succeeded => P::Succeeded,
        WorkflowPhase::Failing => P::Failing,
        WorkflowPhase::Failed => P::Failed,
        WorkflowPhase::Aborting => P::Aborting,
        WorkflowPhase::Aborted => P::Aborted,
        WorkflowPhase::TimedOut => P::TimedOut,
    }
}

impl EventBuilder {
    pub(crate) fn new(settings: &ExecutionSettings) -> Self {
        EventBuilder {
            enabled: settings.record_events,
            execution_id: settings.execution_id.clone(),
            producer_id: settings.producer_id.clone(),
            events: Vec::new(),
            pending_cache: None,
            element_logs: HashMap::new(),
            logs_changed: BTreeSet::new(),
        }
    }

    pub(crate) fn take(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    pub(crate) fn workflow(&mut self, state: &ExecutionState, now_us: u64) {
        if !self.enabled {
            return;
        }
        let output_result = match state.phase {
            WorkflowPhase::Succeeded => state
                .outputs
                .clone()
                .map(workflow_execution_event::OutputResult::OutputData),
            WorkflowPhase::Failed | WorkflowPhase::Aborted | WorkflowPhase::TimedOut => state
                .error
                .clone()
                .map(workflow_execution_event::OutputResult::Error),
            _ => None,
        };
        self.events
            .push(Event::Workflow(Box::new(WorkflowExecutionEvent {
                execution_id: Some(self.execution_id.clone()),
                producer_id: self.producer_id.clone(),
                phase: workflow_phase(state.phase) as i32,
                occurred_at: timestamp(now_us),
                output_result,
            })));
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    pub(crate) fn node(&mut self, program: &Program, state: &ExecutionState, n: u32, now_us: u64) {
        if !self.enabled {
            return;
        }
        self.push_node(program, state, n, None, now_us);
    }

    /// The event that moves a dynamic node to DYNAMIC_RUNNING, carrying the workflow it runs:
    /// flytekit matches the node's children with that workflow's nodes.
    pub(crate) fn node_dynamic(
        &mut self,
        program: &Program,
        state: &ExecutionState,
        n: u32,
        closure: CompiledWorkflowClosure,
        now_us: u64,
    ) {
        if !self.enabled {
            return;
        }
        let id = closure
            .primary
            .as_ref()
            .and_then(|p| p.template.as_ref())
            .and_then(|t| t.id.clone());
        let metadata = TaskNodeMetadata {
            dynamic_workflow: Some(DynamicWorkflowNodeMetadata {
                id,
                compiled_workflow: Some(closure),
                dynamic_job_spec_uri: String::new(),
            }),
            ..Default::default()
        };
        self.push_node(
            program,
            state,
            n,
            Some(node_execution_event::TargetMetadata::TaskNodeMetadata(
                metadata,
            )),
            now_us,
        );
    }

    fn push_node(
        &mut self,
        program: &Program,
        state: &ExecutionState,
        n: u32,
        mut target_metadata: Option<node_execution_event::TargetMetadata>,
        now_us: u64,
    ) {
        let node = &state.nodes[n as usize];
        if let Some((_, cache_status)) = self.pending_cache.take_if(|(p, _)| *p == n) {
            match &mut target_metadata {
                Some(node_execution_event::TargetMetadata::TaskNodeMetadata(m)) => {
                    m.cache_status = cache_status
                }
                _ => {
                    target_metadata = Some(node_execution_event::TargetMetadata::TaskNodeMetadata(
                        TaskNodeMetadata {
                            cache_status,
                            ..Default::default()
                        },
                    ))
                }
            }
        }
        let info = NodeEventInfo::of(program, state, n);
        let output_result = match node.phase {
            NodePhase::Succeeded => node
                .outputs
                .clone()
                .map(node_execution_event::OutputResult::OutputData),
            NodePhase::Failed | NodePhase::TimedOut => node
                .error
                .clone()
                .map(node_execution_event::OutputResult::Error),
            _ => None,
        };
        self.events.push(Event::Node(Box::new(NodeExecutionEvent {
            id: Some(NodeExecutionIdentifier {
                node_id: node.id.clone(),
                execution_id: Some(self.execution_id.clone()),
            }),
            producer_id: self.producer_id.clone(),
            phase: if node.recovered && node.phase == NodePhase::Succeeded {
                node_execution::Phase::Recovered as i32
            } else {
                node_phase(node.phase) as i32
            },
            occurred_at: timestamp(now_us),
            input_value: node
                .inputs
                .clone()
                .map(node_execution_event::InputValue::InputData),
            output_result,
            target_metadata,
            spec_node_id: info.spec_node_id.to_string(),
            parent_node_metadata: info.parent.map(|p| ParentNodeExecutionMetadata {
                node_id: p.to_string(),
            }),
            retry_group: info.retry_group.map(|r| r.to_string()).unwrap_or_default(),
            is_parent: info.is_parent,
            is_dynamic: info.is_dynamic,
            is_array: info.is_array,
            event_version: 1,
            reported_at: timestamp(now_us),
            ..Default::default()
        })));
    }

    /// Records the log links of attempt `retry` of element `e` of array node `n`, for the
    /// node's next task event.
    pub(crate) fn element_logs(&mut self, n: u32, e: u32, retry: u32, logs: Vec<TaskLog>) {
        if !self.enabled {
            return;
        }
        self.element_logs.insert((n, e), (retry, logs));
        self.logs_changed.insert(n);
    }

    /// A RUNNING task event of every running array node whose elements got links since its
    /// last event, so their logs can be followed while they run. Its phase version counts the
    /// attempts started (kept in the saved state, so it grows across restarts too): admin
    /// takes a RUNNING event only with a higher version than the one it holds.
    pub(crate) fn array_logs_progress(&mut self, state: &ExecutionState, now_us: u64) {
        for n in std::mem::take(&mut self.logs_changed) {
            let Some(node) = state.nodes.get(n as usize) else {
                continue;
            };
            let KindState::Array(arr) = &node.kind else {
                continue;
            };
            if node.phase.is_terminal() {
                continue;
            }
            let version = arr.elements.iter().map(|el| el.attempts).sum();
            self.push_array_task(state, n, task_execution::Phase::Running, version, now_us);
        }
    }

    /// A task event of array node `n` (as flytepropeller's ArrayNode reports them), with one
    /// external resource per element unless the array is too large.
    pub(crate) fn array_task(
        &mut self,
        state: &ExecutionState,
        n: u32,
        phase: task_execution::Phase,
        now_us: u64,
    ) {
        if !self.enabled {
            return;
        }
        self.push_array_task(state, n, phase, 0, now_us);
    }

    fn push_array_task(
        &mut self,
        state: &ExecutionState,
        n: u32,
        phase: task_execution::Phase,
        phase_version: u32,
        now_us: u64,
    ) {
        let node = &state.nodes[n as usize];
        let KindState::Array(arr) = &node.kind else {
            return;
        };
        let terminal = matches!(
            phase,
            task_execution::Phase::Succeeded
                | task_execution::Phase::Failed
                | task_execution::Phase::Aborted
        );
        let external_resources = if arr.elements.len() <= MAX_EXTERNAL_RESOURCES {
            arr.elements
                .iter()
                .enumerate()
                .map(|(i, el)| {
                    let retry_attempt = el.attempts.saturating_sub(1);
                    // Only the links of the attempt the resource stands for.
                    let logs = match self.element_logs.get(&(n, i as u32)) {
                        Some((retry, logs)) if *retry == retry_attempt && el.attempts > 0 => {
                            logs.clone()
                        }
                        _ => Vec::new(),
                    };
                    ExternalResourceInfo {
                        external_id: format!("{}-{i}", node.id),
                        index: i as u32,
                        retry_attempt,
                        phase: element_phase(el.phase, terminal) as i32,
                        cache_status: CatalogCacheStatus::CacheDisabled as i32,
                        logs,
                        ..Default::default()
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        let custom_info = element_counts(
            arr.elements
                .iter()
                .map(|el| element_phase(el.phase, terminal)),
        );
        if terminal {
            // Nothing more is reported of this node.
            self.element_logs.retain(|(m, _), _| *m != n);
            self.logs_changed.remove(&n);
        }
        let execution_id = &self.execution_id;
        self.events.push(Event::Task(Box::new(TaskExecutionEvent {
            // flytepropeller names the array node's "task" after the node.
            task_id: Some(Identifier {
                resource_type: ResourceType::Task as i32,
                project: execution_id.project.clone(),
                domain: execution_id.domain.clone(),
                name: node.id.clone(),
                version: "v1".into(),
                org: execution_id.org.clone(),
            }),
            parent_node_execution_id: Some(NodeExecutionIdentifier {
                node_id: node.id.clone(),
                execution_id: Some(execution_id.clone()),
            }),
            retry_attempt: 0,
            phase: phase as i32,
            phase_version,
            producer_id: self.producer_id.clone(),
            occurred_at: timestamp(now_us),
            metadata: Some(TaskExecutionMetadata {
                external_resources,
                plugin_identifier: "container".into(),
                ..Default::default()
            }),
            task_type: "k8s-array".into(),
            custom_info: Some(custom_info),
            event_version: 1,
            reported_at: timestamp(now_us),
            ..Default::default()
        })));
    }

    pub(crate) fn task(
        &mut self,
        node: &NodeState,
        task: &TaskTemplate,
        retry: u32,
        phase: TaskPhase,
        error: Option<&ExecutionError>,
        now_us: u64,
    ) {
        if !self.enabled {
            return;
        }
        self.push_task(
            node,
            task,
            retry,
            phase,
            error
                .cloned()
                .map(task_execution_event::OutputResult::Error),
            now_us,
        );
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn task_succeeded(
        &mut self,
        state: &ExecutionState,
        n: u32,
        task: &TaskTemplate,
        retry: u32,
        outputs: &LiteralMap,
        cache: CatalogCacheStatus,
        now_us: u64,
    ) {
        if !self.enabled {
            return;
        }
        let node = &state.nodes[n as usize];
        self.push_task(
            node,
            task,
            retry,
            TaskPhase::Succeeded,
            Some(task_execution_event::OutputResult::OutputData(
                outputs.clone(),
            )),
            now_us,
        );
        if cache != CatalogCacheStatus::CacheDisabled {
            // The node's terminal event, which follows, carries the cache status (a second
            // RUNNING event would be refused by admin as a repeated phase).
            self.pending_cache = Some((n, cache as i32));
        }
    }

    fn push_task(
        &mut self,
        node: &NodeState,
        task: &TaskTemplate,
        retry: u32,
        phase: TaskPhase,
        output_result: Option<task_execution_event::OutputResult>,
        now_us: u64,
    ) {
        use task_execution::Phase as P;
        let phase = match phase {
            TaskPhase::Running => P::Running,
            TaskPhase::Succeeded => P::Succeeded,
            TaskPhase::RetryableFailed => P::RetryableFailed,
            TaskPhase::Failed => P::Failed,
        };
        self.events.push(Event::Task(Box::new(TaskExecutionEvent {
            task_id: task.id.clone(),
            parent_node_execution_id: Some(NodeExecutionIdentifier {
                node_id: node.id.clone(),
                execution_id: Some(self.execution_id.clone()),
            }),
            retry_attempt: retry,
            phase: phase as i32,
            producer_id: self.producer_id.clone(),
            occurred_at: timestamp(now_us),
            input_value: node
                .inputs
                .clone()
                .map(task_execution_event::InputValue::InputData),
            output_result,
            task_type: task.r#type.clone(),
            event_version: 1,
            reported_at: timestamp(now_us),
            ..Default::default()
        })));
    }
}
