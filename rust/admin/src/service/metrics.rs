//! GetExecutionMetrics: the execution's timeline as spans built from what events recorded — the
//! workflow, its top-level nodes and (at depth 2 or more) their task attempts. flyteadmin adds
//! finer operation spans from its own bookkeeping; Alula has only the event timestamps.

use alula_idl::flyteidl::admin::{
    ExecutionClosure, NodeExecutionClosure, TaskExecutionClosure,
    WorkflowExecutionGetMetricsRequest, WorkflowExecutionGetMetricsResponse,
};
use alula_idl::flyteidl::core::{span, Span, WorkflowExecutionIdentifier};
use alula_idl::wkt::Timestamp;

use super::events::display_node;
use super::executions::{display_exec, execution_key};
use super::node_executions::{node_id_of, task_id_of};
use super::task_events::display_task;
use super::{decode, AdminApi};
use crate::error::{AdminError, AdminResult};
use crate::list::ListParams;
use crate::store::{NodeExecutionKey, NodeParent, NODE_EXECUTION_FIELDS, TASK_EXECUTION_FIELDS};

/// Rows fetched per query while collecting every node or task execution.
const PAGE: u32 = 500;

/// A span from `started` (or `created` when the entity never ran) to `end`, the last event: a
/// running entity's span ends at its latest report.
fn span_of(
    id: span::Id,
    started: Option<Timestamp>,
    created: Option<Timestamp>,
    end: Option<Timestamp>,
    spans: Vec<Span>,
) -> Span {
    Span {
        start_time: started.or(created),
        end_time: end,
        id: Some(id),
        spans,
    }
}

impl AdminApi {
    pub(crate) async fn get_execution_metrics(
        &self,
        req: WorkflowExecutionGetMetricsRequest,
    ) -> AdminResult<WorkflowExecutionGetMetricsResponse> {
        let key = execution_key(req.id.as_ref())?;
        let row = self.execution_row(&key).await?;
        let closure: ExecutionClosure =
            decode(&row.closure, || format!("execution {}", display_exec(&key)))?;
        let mut node_spans = Vec::new();
        let mut offset = 0u64;
        loop {
            let mut page = ListParams::parse(&NODE_EXECUTION_FIELDS, "", None, PAGE, "")
                .map_err(AdminError::Internal)?;
            page.offset = offset;
            let rows = self
                .store
                .list_node_executions(Some(&key), &NodeParent::TopLevel, &page)
                .await?;
            for node in &rows {
                let c: NodeExecutionClosure = decode(&node.closure, || display_node(&node.key))?;
                let tasks = if req.depth >= 2 {
                    self.task_spans(&node.key).await?
                } else {
                    Vec::new()
                };
                node_spans.push(span_of(
                    span::Id::NodeId(node_id_of(&node.key)),
                    c.started_at,
                    c.created_at,
                    c.updated_at,
                    tasks,
                ));
            }
            if rows.len() < PAGE as usize {
                break;
            }
            offset += u64::from(PAGE);
        }
        let id = WorkflowExecutionIdentifier {
            project: key.project.clone(),
            domain: key.domain.clone(),
            name: key.name.clone(),
            org: String::new(),
        };
        Ok(WorkflowExecutionGetMetricsResponse {
            span: Some(span_of(
                span::Id::WorkflowId(id),
                closure.started_at,
                closure.created_at,
                closure.updated_at,
                node_spans,
            )),
        })
    }

    async fn task_spans(&self, node: &NodeExecutionKey) -> AdminResult<Vec<Span>> {
        let mut spans = Vec::new();
        let mut offset = 0u64;
        loop {
            let mut page = ListParams::parse(&TASK_EXECUTION_FIELDS, "", None, PAGE, "")
                .map_err(AdminError::Internal)?;
            page.offset = offset;
            let rows = self.store.list_task_executions(node, &page).await?;
            for task in &rows {
                let c: TaskExecutionClosure = decode(&task.closure, || display_task(&task.key))?;
                spans.push(span_of(
                    span::Id::TaskId(task_id_of(&task.key)),
                    c.started_at,
                    c.created_at,
                    c.updated_at,
                    Vec::new(),
                ));
            }
            if rows.len() < PAGE as usize {
                return Ok(spans);
            }
            offset += u64::from(PAGE);
        }
    }
}
