//! flyteidl execution events for every phase change, as propeller reports them to admin.
//!
//! Built only when the execution records events: a local run without observers skips the
//! allocations entirely.

use alula_idl::flyteidl::core::{
    node_execution, task_execution, workflow_execution, CatalogCacheStatus, ExecutionError,
    LiteralMap, NodeExecutionIdentifier, TaskTemplate, WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::event::{
    node_execution_event, task_execution_event, workflow_execution_event, NodeExecutionEvent,
    TaskExecutionEvent, TaskNodeMetadata, WorkflowExecutionEvent,
};
use alula_idl::wkt::Timestamp;

use crate::execution::ExecutionSettings;
use crate::state::{ExecutionState, NodePhase, NodeState, WorkflowPhase};

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

pub(crate) struct EventBuilder {
    enabled: bool,
    execution_id: WorkflowExecutionIdentifier,
    producer_id: String,
    events: Vec<Event>,
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

    pub(crate) fn node(&mut self, node: &NodeState, now_us: u64) {
        if !self.enabled {
            return;
        }
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
        let spec_node_id = node.id.rsplit("-0-").next().unwrap_or(&node.id).to_string();
        self.events.push(Event::Node(Box::new(NodeExecutionEvent {
            id: Some(NodeExecutionIdentifier {
                node_id: node.id.clone(),
                execution_id: Some(self.execution_id.clone()),
            }),
            producer_id: self.producer_id.clone(),
            phase: node_phase(node.phase) as i32,
            occurred_at: timestamp(now_us),
            input_value: node
                .inputs
                .clone()
                .map(node_execution_event::InputValue::InputData),
            output_result,
            spec_node_id,
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

    pub(crate) fn task_succeeded(
        &mut self,
        node: &NodeState,
        task: &TaskTemplate,
        retry: u32,
        outputs: &LiteralMap,
        cache: CatalogCacheStatus,
        now_us: u64,
    ) {
        if !self.enabled {
            return;
        }
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
            // The node event that follows carries the cache status, as propeller's does.
            self.events.push(Event::Node(Box::new(NodeExecutionEvent {
                id: Some(NodeExecutionIdentifier {
                    node_id: node.id.clone(),
                    execution_id: Some(self.execution_id.clone()),
                }),
                producer_id: self.producer_id.clone(),
                phase: node_execution::Phase::Running as i32,
                occurred_at: timestamp(now_us),
                target_metadata: Some(node_execution_event::TargetMetadata::TaskNodeMetadata(
                    TaskNodeMetadata {
                        cache_status: cache as i32,
                        ..Default::default()
                    },
                )),
                ..Default::default()
            })));
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
