//! CreateTaskEvent: one record per attempt (task id, node execution, retry attempt). Within a
//! phase, propeller reports progress (new logs, reasons, custom info) with a growing
//! `phase_version`; those events update the record, repeats of a version do not.

use alula_idl::flyteidl::admin::{
    task_execution_closure, Reason, TaskExecutionClosure, TaskExecutionEventRequest,
    TaskExecutionEventResponse,
};
use alula_idl::flyteidl::core::{task_execution, TaskExecutionIdentifier, TaskLog};
use alula_idl::flyteidl::event::{task_execution_event, TaskExecutionEvent};
use prost::Message;

use super::events::{
    contended, display_node, duration, judge, micros_of, node_key, occurred_micros, Stored,
    Verdict, ATTEMPTS,
};
use super::{decode, timestamp, AdminApi};
use crate::error::{AdminError, AdminResult};
use crate::literals;
use crate::store::{now_micros, TaskExecutionKey, TaskExecutionRow};

pub(super) fn task_key(id: Option<&TaskExecutionIdentifier>) -> AdminResult<TaskExecutionKey> {
    let id = id.ok_or_else(|| AdminError::invalid("missing task execution id"))?;
    attempt_key(
        id.task_id.as_ref(),
        id.node_execution_id.as_ref(),
        id.retry_attempt,
    )
}

fn attempt_key(
    task: Option<&alula_idl::flyteidl::core::Identifier>,
    node: Option<&alula_idl::flyteidl::core::NodeExecutionIdentifier>,
    retry_attempt: u32,
) -> AdminResult<TaskExecutionKey> {
    let task = task.ok_or_else(|| AdminError::invalid("missing task execution task_id"))?;
    for (value, part) in [
        (&task.project, "project"),
        (&task.domain, "domain"),
        (&task.name, "name"),
        (&task.version, "version"),
    ] {
        super::require(value, &format!("task execution task_id {part}"))?;
    }
    Ok(TaskExecutionKey {
        node: node_key(node)?,
        task_project: task.project.clone(),
        task_domain: task.domain.clone(),
        task_name: task.name.clone(),
        task_version: task.version.clone(),
        retry_attempt: i64::from(retry_attempt),
    })
}

pub(super) fn display_task(key: &TaskExecutionKey) -> String {
    format!(
        "task execution of {}:{}:{}:{} attempt {} in {}",
        key.task_project,
        key.task_domain,
        key.task_name,
        key.task_version,
        key.retry_attempt,
        display_node(&key.node)
    )
}

fn task_terminal(phase: task_execution::Phase) -> bool {
    use task_execution::Phase as P;
    matches!(phase, P::Succeeded | P::Failed | P::Aborted)
}

impl AdminApi {
    pub(crate) async fn create_task_event(
        &self,
        req: TaskExecutionEventRequest,
    ) -> AdminResult<TaskExecutionEventResponse> {
        use task_execution::Phase;
        let event = req
            .event
            .ok_or_else(|| AdminError::invalid("missing task execution event"))?;
        let key = attempt_key(
            event.task_id.as_ref(),
            event.parent_node_execution_id.as_ref(),
            event.retry_attempt,
        )?;
        let what = display_task(&key);
        let phase = Phase::try_from(event.phase).map_err(|_| {
            AdminError::invalid(format!(
                "event for {what} has unknown phase {}",
                event.phase
            ))
        })?;
        let event_at = occurred_micros(event.occurred_at.as_ref(), &format!("event for {what}"))?;
        self.require_execution(&key.node.execution).await?;
        if self.store.get_node_execution(&key.node).await?.is_none() {
            return Err(AdminError::not_found(format!(
                "{} not found: send its node event before task events",
                display_node(&key.node)
            )));
        }
        for _ in 0..ATTEMPTS {
            let Some(stored_row) = self.store.get_task_execution(&key).await? else {
                let mut row = TaskExecutionRow {
                    key: key.clone(),
                    closure: TaskExecutionClosure {
                        created_at: Some(timestamp(event_at)),
                        ..Default::default()
                    }
                    .encode_to_vec(),
                    created_at: now_micros(),
                    ..Default::default()
                };
                apply_task_event(&mut row, &event, event_at, &what)?;
                self.offload_task_literals(&mut row).await?;
                if self.store.insert_task_execution(&row).await? {
                    return Ok(TaskExecutionEventResponse {});
                }
                continue;
            };
            let stored = Phase::from_str_name(&stored_row.phase).unwrap_or(Phase::Undefined);
            let same =
                phase == stored && stored_row.phase_version >= i64::from(event.phase_version);
            let verdict = judge(
                &Stored {
                    what: &what,
                    phase: &stored_row.phase,
                    terminal: task_terminal(stored),
                    last_event_at: stored_row.last_event_at,
                },
                phase.as_str_name(),
                same,
                event_at,
            )?;
            if verdict == Verdict::Ignore {
                return Ok(TaskExecutionEventResponse {});
            }
            let mut row = stored_row.clone();
            apply_task_event(&mut row, &event, event_at, &what)?;
            self.offload_task_literals(&mut row).await?;
            if self.store.update_task_execution(&row, &stored_row).await? {
                return Ok(TaskExecutionEventResponse {});
            }
        }
        Err(contended(&what))
    }

    /// Moves an attempt's inline inputs or outputs that are too large for the row to storage.
    async fn offload_task_literals(&self, row: &mut TaskExecutionRow) -> AdminResult<()> {
        let key = row.key.clone();
        self.offload_inline(&mut row.inputs, &mut row.inputs_uri, || {
            literals::keys::task(&key, "inputs.pb")
        })
        .await?;
        self.offload_inline(&mut row.outputs, &mut row.outputs_uri, || {
            literals::keys::task(&key, "outputs.pb")
        })
        .await
    }
}

/// Folds `event` into `row`: phase and version, timestamps, logs (a log replaces the one of the
/// same name), reasons (appended), custom info and metadata (replaced when sent), data.
fn apply_task_event(
    row: &mut TaskExecutionRow,
    event: &TaskExecutionEvent,
    event_at: i64,
    what: &str,
) -> AdminResult<()> {
    use task_execution::Phase;
    let mut closure: TaskExecutionClosure = decode(&row.closure, || what.to_string())?;
    let phase = Phase::try_from(event.phase).unwrap_or(Phase::Undefined);
    closure.phase = phase as i32;
    closure.updated_at = Some(timestamp(event_at));
    if phase == Phase::Running && closure.started_at.is_none() {
        closure.started_at = Some(timestamp(event_at));
    }
    if task_terminal(phase) {
        let started = micros_of(closure.started_at.as_ref()).unwrap_or(event_at);
        closure.duration = Some(duration(started, event_at));
    }
    merge_logs(&mut closure.logs, &event.logs);
    #[allow(deprecated)]
    let reason = &event.reason;
    if !reason.is_empty() {
        closure.reason = reason.clone();
        closure.reasons.push(Reason {
            occurred_at: Some(timestamp(event_at)),
            message: reason.clone(),
        });
    }
    for r in &event.reasons {
        closure.reasons.push(Reason {
            occurred_at: r.occurred_at.or(Some(timestamp(event_at))),
            message: r.reason.clone(),
        });
    }
    if event.custom_info.is_some() {
        closure.custom_info = event.custom_info.clone();
    }
    if event.metadata.is_some() {
        closure.metadata = event.metadata.clone();
    }
    if event.log_context.is_some() {
        closure.log_context = event.log_context.clone();
    }
    if !event.task_type.is_empty() {
        closure.task_type = event.task_type.clone();
    }
    closure.event_version = event.event_version;
    match &event.input_value {
        Some(task_execution_event::InputValue::InputUri(uri)) => row.input_uri = uri.clone(),
        Some(task_execution_event::InputValue::InputData(data)) => {
            row.inputs = data.encode_to_vec();
            row.inputs_uri.clear();
        }
        None => {}
    }
    match &event.output_result {
        // Deprecated in the closure, yet where flyteidl puts a reference-only output.
        #[allow(deprecated)]
        Some(task_execution_event::OutputResult::OutputUri(uri)) => {
            closure.output_result =
                Some(task_execution_closure::OutputResult::OutputUri(uri.clone()));
            row.outputs.clear();
            row.outputs_uri = uri.clone();
        }
        Some(task_execution_event::OutputResult::Error(error)) => {
            closure.output_result =
                Some(task_execution_closure::OutputResult::Error(error.clone()));
        }
        Some(task_execution_event::OutputResult::OutputData(data)) => {
            row.outputs = data.encode_to_vec();
            row.outputs_uri.clear();
        }
        None => {}
    }
    row.phase = phase.as_str_name().to_string();
    row.phase_version = i64::from(event.phase_version);
    row.closure = closure.encode_to_vec();
    row.last_event_at = event_at;
    row.updated_at = now_micros();
    Ok(())
}

fn merge_logs(logs: &mut Vec<TaskLog>, new: &[TaskLog]) {
    for log in new {
        match logs.iter_mut().find(|l| l.name == log.name) {
            Some(existing) => *existing = log.clone(),
            None => logs.push(log.clone()),
        }
    }
}
