//! Event ingestion: CreateWorkflowEvent and CreateNodeEvent (task events in `task_events.rs`).
//! Propeller reports every phase change; admin folds each event into the execution, node or
//! task execution record, creating node and task records on their first event.
//!
//! The rules, per record (flyteadmin's, plus two that make retried and late events harmless):
//! - a repeat of the last event (same phase, same `occurred_at`) is accepted and changes nothing;
//!   the same phase reported anew answers AlreadyExists, as flyteadmin does;
//! - nothing changes a record in a terminal phase: FailedPrecondition with an
//!   `EventFailureReason.already_in_terminal_state` detail;
//! - an event older than the last one applied is accepted and ignored, so a late delivery cannot
//!   move a phase backwards.
//!
//! Records are updated conditionally on what was read; a lost race re-reads and retries.

use alula_idl::flyteidl::admin::{
    event_failure_reason, execution_closure, literal_map_blob, node_execution_closure,
    EventErrorAlreadyInTerminalState, EventFailureReason, ExecutionClosure, LiteralMapBlob,
    NodeExecutionClosure, NodeExecutionEventRequest, NodeExecutionEventResponse,
    NodeExecutionMetaData, TaskNodeMetadata, WorkflowExecutionEventRequest,
    WorkflowExecutionEventResponse, WorkflowNodeMetadata,
};
use alula_idl::flyteidl::core::{node_execution, workflow_execution, NodeExecutionIdentifier};
use alula_idl::flyteidl::event::{node_execution_event, workflow_execution_event};
use alula_idl::wkt::{Duration, Timestamp};
use prost::Message;

use super::executions::{display_exec, execution_key, is_terminal};
use super::{decode, timestamp, AdminApi};
use crate::error::{AdminError, AdminResult};
use crate::literals;
use crate::store::{now_micros, ExecutionEventUpdate, NodeExecutionKey, NodeExecutionRow};

/// How often a conditional update that lost a race is retried before giving up.
pub(super) const ATTEMPTS: usize = 5;

/// What to do with an event once the stored record has been read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Apply,
    /// Accepted without a change: a repeat or a late, older event.
    Ignore,
}

/// What an event is checked against.
pub(super) struct Stored<'a> {
    /// Names the record in messages, e.g. `node execution p/d/e/n0`.
    pub what: &'a str,
    pub phase: &'a str,
    pub terminal: bool,
    pub last_event_at: i64,
}

/// The rules of the module documentation. `same_phase` says whether the event repeats the stored
/// phase (for tasks: and brings no newer phase version).
pub(super) fn judge(
    stored: &Stored<'_>,
    event_phase: &str,
    same_phase: bool,
    event_at: i64,
) -> AdminResult<Verdict> {
    if same_phase {
        if event_at == stored.last_event_at {
            return Ok(Verdict::Ignore);
        }
        return Err(AdminError::AlreadyExists(format!(
            "{} is already in phase {event_phase}",
            stored.what
        )));
    }
    if stored.terminal {
        return Err(AdminError::EventRefused {
            message: format!(
                "invalid phase change from {} to {event_phase} for {}: it is already in terminal phase {}",
                stored.phase, stored.what, stored.phase
            ),
            reason: EventFailureReason {
                reason: Some(event_failure_reason::Reason::AlreadyInTerminalState(
                    EventErrorAlreadyInTerminalState {
                        current_phase: stored.phase.to_string(),
                    },
                )),
            },
        });
    }
    if event_at < stored.last_event_at {
        return Ok(Verdict::Ignore);
    }
    Ok(Verdict::Apply)
}

/// `occurred_at` in microseconds; events without one cannot be ordered.
pub(super) fn occurred_micros(ts: Option<&Timestamp>, what: &str) -> AdminResult<i64> {
    let ts = ts.ok_or_else(|| AdminError::invalid(format!("{what} is missing occurred_at")))?;
    Ok(ts
        .seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(ts.nanos) / 1000))
}

pub(super) fn micros_of(ts: Option<&Timestamp>) -> Option<i64> {
    ts.map(|t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000)
}

/// The time from `started` to `end`, both in microseconds.
pub(super) fn duration(started: i64, end: i64) -> Duration {
    let micros = end.saturating_sub(started).max(0);
    Duration {
        seconds: micros / 1_000_000,
        nanos: i32::try_from((micros % 1_000_000) * 1000).unwrap_or(0),
    }
}

/// The lost-race error once [`ATTEMPTS`] conditional updates have failed.
pub(super) fn contended(what: &str) -> AdminError {
    AdminError::FailedPrecondition(format!(
        "{what} kept changing while this event was applied; retry"
    ))
}

pub(super) fn node_key(id: Option<&NodeExecutionIdentifier>) -> AdminResult<NodeExecutionKey> {
    let id = id.ok_or_else(|| AdminError::invalid("missing node execution id"))?;
    super::require(&id.node_id, "node execution id node_id")?;
    Ok(NodeExecutionKey {
        execution: execution_key(id.execution_id.as_ref())?,
        node_id: id.node_id.clone(),
    })
}

pub(super) fn display_node(key: &NodeExecutionKey) -> String {
    format!(
        "node execution {}/{}",
        display_exec(&key.execution),
        key.node_id
    )
}

fn node_terminal(phase: node_execution::Phase) -> bool {
    use node_execution::Phase as P;
    matches!(
        phase,
        P::Succeeded | P::Failed | P::TimedOut | P::Aborted | P::Skipped | P::Recovered
    )
}

impl AdminApi {
    pub(crate) async fn create_workflow_event(
        &self,
        req: WorkflowExecutionEventRequest,
    ) -> AdminResult<WorkflowExecutionEventResponse> {
        use workflow_execution::Phase;
        let event = req
            .event
            .ok_or_else(|| AdminError::invalid("missing workflow execution event"))?;
        let key = execution_key(event.execution_id.as_ref())?;
        let what = format!("execution {}", display_exec(&key));
        let phase = Phase::try_from(event.phase).map_err(|_| {
            AdminError::invalid(format!(
                "event for {what} has unknown phase {}",
                event.phase
            ))
        })?;
        let event_at = occurred_micros(event.occurred_at.as_ref(), &format!("event for {what}"))?;
        // Decided once, on the first try that applies the event (see `crate::notify`).
        let mut notifications = None;
        for _ in 0..ATTEMPTS {
            let state = self
                .store
                .get_execution_event_state(&key)
                .await?
                .ok_or_else(|| AdminError::not_found(format!("{what} not found")))?;
            let stored = Phase::from_str_name(&state.phase).unwrap_or(Phase::Undefined);
            // QUEUED may be re-announced (flyteadmin lets propeller report a reassignment).
            let same =
                phase == stored && (phase != Phase::Queued || event_at == state.last_event_at);
            let verdict = judge(
                &Stored {
                    what: &what,
                    phase: &state.phase,
                    terminal: is_terminal(stored),
                    last_event_at: state.last_event_at,
                },
                phase.as_str_name(),
                same,
                event_at,
            )?;
            if verdict == Verdict::Ignore {
                return Ok(WorkflowExecutionEventResponse {});
            }
            let backwards = (stored == Phase::Running && phase == Phase::Queued)
                || (stored == Phase::Aborting && !is_terminal(phase));
            if backwards {
                return Err(AdminError::FailedPrecondition(format!(
                    "invalid phase change from {} to {} for {what}",
                    state.phase,
                    phase.as_str_name()
                )));
            }
            let mut closure: ExecutionClosure = decode(&state.closure, || what.clone())?;
            closure.phase = phase as i32;
            closure.updated_at = Some(timestamp(event_at));
            if phase == Phase::Running && closure.started_at.is_none() {
                closure.started_at = Some(timestamp(event_at));
            }
            if is_terminal(phase) {
                let started = micros_of(closure.started_at.as_ref()).unwrap_or(event_at);
                closure.duration = Some(duration(started, event_at));
            }
            let mut outputs = state.outputs.clone();
            let mut outputs_uri = state.outputs_uri.clone();
            match &event.output_result {
                // The event sent a reference only; the deprecated blob is flyteidl's only place
                // for it in the closure.
                #[allow(deprecated)]
                Some(workflow_execution_event::OutputResult::OutputUri(uri)) => {
                    closure.output_result =
                        Some(execution_closure::OutputResult::Outputs(LiteralMapBlob {
                            data: Some(literal_map_blob::Data::Uri(uri.clone())),
                        }));
                    outputs = Vec::new();
                    outputs_uri = uri.clone();
                }
                // An abort keeps the cause TerminateExecution recorded (flyteadmin does too).
                Some(workflow_execution_event::OutputResult::Error(_))
                    if phase == Phase::Aborted
                        && matches!(
                            closure.output_result,
                            Some(execution_closure::OutputResult::AbortMetadata(_))
                        ) => {}
                Some(workflow_execution_event::OutputResult::Error(error)) => {
                    closure.output_result =
                        Some(execution_closure::OutputResult::Error(error.clone()));
                }
                // Kept out of the closure (which every list returns); GetExecutionData serves it.
                // Too large for the row, it is stored, and the closure references it.
                Some(workflow_execution_event::OutputResult::OutputData(data)) => {
                    let placed = self
                        .place_literals(
                            &literals::keys::execution(&key, "outputs.pb"),
                            data.encode_to_vec(),
                        )
                        .await?;
                    if !placed.uri.is_empty() {
                        #[allow(deprecated)]
                        let outputs = execution_closure::OutputResult::Outputs(LiteralMapBlob {
                            data: Some(literal_map_blob::Data::Uri(placed.uri.clone())),
                        });
                        closure.output_result = Some(outputs);
                    }
                    outputs = placed.inline;
                    outputs_uri = placed.uri;
                }
                None => {}
            }
            if notifications.is_none() {
                let error = match &event.output_result {
                    Some(workflow_execution_event::OutputResult::Error(e)) => Some(e),
                    _ => None,
                };
                notifications = Some(crate::notify::due(&self.store, &key, phase, error).await);
            }
            let applied = self
                .store
                .apply_execution_event(
                    &key,
                    &state.phase,
                    state.last_event_at,
                    ExecutionEventUpdate {
                        phase: phase.as_str_name(),
                        closure: closure.encode_to_vec(),
                        outputs,
                        outputs_uri,
                        event_at,
                        now: now_micros(),
                    },
                    notifications.as_deref().unwrap_or_default(),
                )
                .await?;
            if applied {
                return Ok(WorkflowExecutionEventResponse {});
            }
        }
        Err(contended(&what))
    }

    pub(crate) async fn create_node_event(
        &self,
        req: NodeExecutionEventRequest,
    ) -> AdminResult<NodeExecutionEventResponse> {
        use node_execution::Phase;
        let event = req
            .event
            .ok_or_else(|| AdminError::invalid("missing node execution event"))?;
        let key = node_key(event.id.as_ref())?;
        let what = display_node(&key);
        let phase = Phase::try_from(event.phase).map_err(|_| {
            AdminError::invalid(format!(
                "event for {what} has unknown phase {}",
                event.phase
            ))
        })?;
        let event_at = occurred_micros(event.occurred_at.as_ref(), &format!("event for {what}"))?;
        self.require_execution(&key.execution).await?;
        if let Some(node_execution_event::TargetMetadata::WorkflowNodeMetadata(meta)) =
            &event.target_metadata
        {
            // A subworkflow launched as its own execution must have been created first.
            if let Some(child) = &meta.execution_id {
                self.require_execution(&execution_key(Some(child))?).await?;
            }
        }
        for _ in 0..ATTEMPTS {
            let Some(mut row) = self.store.get_node_execution(&key).await? else {
                let mut row = new_node_row(&key, &event, event_at)?;
                self.offload_node_literals(&mut row).await?;
                if self.store.insert_node_execution(&row).await? {
                    return Ok(NodeExecutionEventResponse {});
                }
                continue;
            };
            let stored = Phase::from_str_name(&row.phase).unwrap_or(Phase::Undefined);
            let verdict = judge(
                &Stored {
                    what: &what,
                    phase: &row.phase,
                    terminal: node_terminal(stored),
                    last_event_at: row.last_event_at,
                },
                phase.as_str_name(),
                phase == stored,
                event_at,
            )?;
            if verdict == Verdict::Ignore {
                return Ok(NodeExecutionEventResponse {});
            }
            let (from_phase, from_at) = (row.phase.clone(), row.last_event_at);
            apply_node_event(&mut row, &event, event_at, &what)?;
            self.offload_node_literals(&mut row).await?;
            if self
                .store
                .update_node_execution(&row, &from_phase, from_at)
                .await?
            {
                return Ok(NodeExecutionEventResponse {});
            }
        }
        Err(contended(&what))
    }

    /// Moves a node's inline inputs or outputs that are too large for the row to storage.
    async fn offload_node_literals(&self, row: &mut NodeExecutionRow) -> AdminResult<()> {
        let key = row.key.clone();
        self.offload_inline(&mut row.inputs, &mut row.inputs_uri, || {
            literals::keys::node(&key, "inputs.pb")
        })
        .await?;
        self.offload_inline(&mut row.outputs, &mut row.outputs_uri, || {
            literals::keys::node(&key, "outputs.pb")
        })
        .await
    }

    /// Replaces inline literal bytes larger than the inline limit by the URI they were stored
    /// under; small ones stay.
    pub(super) async fn offload_inline(
        &self,
        inline: &mut Vec<u8>,
        uri: &mut String,
        key: impl FnOnce() -> String,
    ) -> AdminResult<()> {
        if inline.len() <= self.config.max_inline_literal_bytes {
            return Ok(());
        }
        let placed = self.place_literals(&key(), std::mem::take(inline)).await?;
        *inline = placed.inline;
        *uri = placed.uri;
        Ok(())
    }
}

type NodeEvent = alula_idl::flyteidl::event::NodeExecutionEvent;

fn new_node_row(
    key: &NodeExecutionKey,
    event: &NodeEvent,
    event_at: i64,
) -> AdminResult<NodeExecutionRow> {
    let parent_task = match event
        .parent_task_metadata
        .as_ref()
        .and_then(|m| m.id.as_ref())
    {
        Some(id) => super::task_events::task_key(Some(id))?.text(),
        None => String::new(),
    };
    let closure = NodeExecutionClosure {
        created_at: Some(timestamp(event_at)),
        ..Default::default()
    };
    let mut row = NodeExecutionRow {
        key: key.clone(),
        phase: node_execution::Phase::Undefined.as_str_name().to_string(),
        parent_id: event
            .parent_node_metadata
            .as_ref()
            .map(|m| m.node_id.clone())
            .unwrap_or_default(),
        parent_task,
        closure: closure.encode_to_vec(),
        metadata: NodeExecutionMetaData::default().encode_to_vec(),
        created_at: now_micros(),
        ..Default::default()
    };
    apply_node_event(&mut row, event, event_at, &display_node(key))?;
    Ok(row)
}

/// Folds `event` into `row`: phase, timestamps, data, cache status and metadata.
fn apply_node_event(
    row: &mut NodeExecutionRow,
    event: &NodeEvent,
    event_at: i64,
    what: &str,
) -> AdminResult<()> {
    use node_execution::Phase;
    let mut closure: NodeExecutionClosure = decode(&row.closure, || what.to_string())?;
    let mut meta: NodeExecutionMetaData = decode(&row.metadata, || what.to_string())?;
    let phase = Phase::try_from(event.phase).unwrap_or(Phase::Undefined);
    closure.phase = phase as i32;
    closure.updated_at = Some(timestamp(event_at));
    if phase == Phase::Running && closure.started_at.is_none() {
        closure.started_at = Some(timestamp(event_at));
    }
    if node_terminal(phase) {
        let started = micros_of(closure.started_at.as_ref()).unwrap_or(event_at);
        closure.duration = Some(duration(started, event_at));
    }
    match &event.input_value {
        Some(node_execution_event::InputValue::InputUri(uri)) => row.input_uri = uri.clone(),
        Some(node_execution_event::InputValue::InputData(data)) => {
            row.inputs = data.encode_to_vec();
            row.inputs_uri.clear();
        }
        None => {}
    }
    match &event.output_result {
        // Deprecated in the closure, yet where flyteidl puts a reference-only output.
        #[allow(deprecated)]
        Some(node_execution_event::OutputResult::OutputUri(uri)) => {
            closure.output_result =
                Some(node_execution_closure::OutputResult::OutputUri(uri.clone()));
            row.outputs.clear();
            row.outputs_uri = uri.clone();
        }
        Some(node_execution_event::OutputResult::Error(error)) => {
            closure.output_result =
                Some(node_execution_closure::OutputResult::Error(error.clone()));
        }
        Some(node_execution_event::OutputResult::OutputData(data)) => {
            row.outputs = data.encode_to_vec();
            row.outputs_uri.clear();
        }
        None => {}
    }
    match &event.target_metadata {
        Some(node_execution_event::TargetMetadata::TaskNodeMetadata(task)) => {
            if let Some(dynamic) = &task.dynamic_workflow {
                closure.dynamic_job_spec_uri = dynamic.dynamic_job_spec_uri.clone();
                if let Some(compiled) = &dynamic.compiled_workflow {
                    row.dynamic_workflow = compiled.encode_to_vec();
                }
            }
            closure.target_metadata = Some(
                node_execution_closure::TargetMetadata::TaskNodeMetadata(TaskNodeMetadata {
                    cache_status: task.cache_status,
                    catalog_key: task.catalog_key.clone(),
                    checkpoint_uri: task.checkpoint_uri.clone(),
                }),
            );
        }
        Some(node_execution_event::TargetMetadata::WorkflowNodeMetadata(wf)) => {
            closure.target_metadata = Some(
                node_execution_closure::TargetMetadata::WorkflowNodeMetadata(
                    WorkflowNodeMetadata {
                        execution_id: wf.execution_id.clone(),
                    },
                ),
            );
        }
        None => {}
    }
    if !event.deck_uri.is_empty() {
        closure.deck_uri = event.deck_uri.clone();
    }
    // Later events may omit what earlier ones said; keep the first non-empty value of each.
    if meta.retry_group.is_empty() {
        meta.retry_group = event.retry_group.clone();
    }
    if meta.spec_node_id.is_empty() {
        meta.spec_node_id = event.spec_node_id.clone();
    }
    meta.is_parent_node |= event.is_parent;
    meta.is_dynamic |= event.is_dynamic;
    meta.is_array |= event.is_array;
    meta.is_eager |= event.is_eager;
    row.phase = phase.as_str_name().to_string();
    row.closure = closure.encode_to_vec();
    row.metadata = meta.encode_to_vec();
    row.last_event_at = event_at;
    row.updated_at = now_micros();
    Ok(())
}
