//! What event ingestion maintains: node and task execution rows, and the event columns of
//! executions (inline outputs, time of the last applied event). Updates are conditional on the
//! phase and event time the caller read, so two events racing for one row cannot both win.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::query::{Param, Sql};
use super::{ExecutionKey, Store, StoreError};
use crate::list::{Field, FieldKind, FieldSet, ListParams};

const fn field(name: &'static str, column: &'static str, kind: FieldKind) -> Field {
    Field { name, column, kind }
}

pub static NODE_EXECUTION_FIELDS: FieldSet = FieldSet {
    entity: "node_execution",
    fields: &[
        field("node_id", "node_id", FieldKind::Text),
        field("phase", "phase", FieldKind::NodePhase),
        field("created_at", "created_at", FieldKind::Timestamp),
        field(
            "node_execution_created_at",
            "created_at",
            FieldKind::Timestamp,
        ),
        field("updated_at", "updated_at", FieldKind::Timestamp),
        field(
            "node_execution_updated_at",
            "updated_at",
            FieldKind::Timestamp,
        ),
    ],
    default_sort: "created_at",
    default_ascending: true,
};

pub static TASK_EXECUTION_FIELDS: FieldSet = FieldSet {
    entity: "task_execution",
    fields: &[
        field("retry_attempt", "retry_attempt", FieldKind::Integer),
        field("phase", "phase", FieldKind::TaskPhase),
        field("task.name", "task_name", FieldKind::Text),
        field("task.version", "task_version", FieldKind::Text),
        field("created_at", "created_at", FieldKind::Timestamp),
        field(
            "task_execution_created_at",
            "created_at",
            FieldKind::Timestamp,
        ),
        field("updated_at", "updated_at", FieldKind::Timestamp),
        field(
            "task_execution_updated_at",
            "updated_at",
            FieldKind::Timestamp,
        ),
    ],
    default_sort: "created_at",
    default_ascending: true,
};

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct NodeExecutionKey {
    pub execution: ExecutionKey,
    pub node_id: String,
}

/// A node execution. `closure`/`metadata` are an encoded `admin.NodeExecutionClosure` /
/// `NodeExecutionMetaData`; `inputs`/`outputs` an encoded `core.LiteralMap`, empty when the
/// events carried none inline or when it was too large for the row: then `inputs_uri` /
/// `outputs_uri` name it in object storage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeExecutionRow {
    pub key: NodeExecutionKey,
    /// A `NodeExecution.Phase` name.
    pub phase: String,
    /// The unique id of the parent node, empty at the top level.
    pub parent_id: String,
    /// The task execution that yielded this node (see [`TaskExecutionKey::text`]), or empty.
    pub parent_task: String,
    pub input_uri: String,
    pub closure: Vec<u8>,
    pub metadata: Vec<u8>,
    pub inputs: Vec<u8>,
    pub inputs_uri: String,
    pub outputs: Vec<u8>,
    pub outputs_uri: String,
    /// The `core.CompiledWorkflowClosure` of a dynamic node, or empty.
    pub dynamic_workflow: Vec<u8>,
    /// `occurred_at` of the last event applied, in microseconds.
    pub last_event_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TaskExecutionKey {
    pub node: NodeExecutionKey,
    pub task_project: String,
    pub task_domain: String,
    pub task_name: String,
    pub task_version: String,
    pub retry_attempt: i64,
}

impl TaskExecutionKey {
    /// One string naming the attempt, stored on the nodes it yields so that
    /// `ListNodeExecutionsForTask` is a single equality.
    pub fn text(&self) -> String {
        let n = &self.node;
        format!(
            "{}/{}/{}/{}/{}:{}/{}/{}/{}",
            n.execution.project,
            n.execution.domain,
            n.execution.name,
            n.node_id,
            self.retry_attempt,
            self.task_project,
            self.task_domain,
            self.task_name,
            self.task_version
        )
    }
}

/// A task execution (one attempt); `closure` is an encoded `admin.TaskExecutionClosure`;
/// `inputs`/`outputs` as on [`NodeExecutionRow`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskExecutionRow {
    pub key: TaskExecutionKey,
    /// A `TaskExecution.Phase` name.
    pub phase: String,
    pub phase_version: i64,
    pub input_uri: String,
    pub closure: Vec<u8>,
    pub inputs: Vec<u8>,
    pub inputs_uri: String,
    pub outputs: Vec<u8>,
    pub outputs_uri: String,
    pub last_event_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Which nodes of an execution a list returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeParent {
    /// Nodes of the workflow itself.
    TopLevel,
    /// Children of the node with this unique id.
    Node(String),
    /// Nodes yielded by a task execution ([`TaskExecutionKey::text`]), across executions.
    Task(String),
}

/// Where an execution stands with respect to events, read in one query so that the phase,
/// closure and event time are consistent with each other.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecutionEventState {
    /// A `WorkflowExecution.Phase` name.
    pub phase: String,
    /// An encoded `admin.ExecutionClosure`.
    pub closure: Vec<u8>,
    pub outputs: Vec<u8>,
    /// Where the outputs are when they are not inline.
    pub outputs_uri: String,
    pub last_event_at: i64,
}

/// A new event-driven state of an execution.
pub struct ExecutionEventUpdate<'a> {
    pub phase: &'a str,
    pub closure: Vec<u8>,
    pub outputs: Vec<u8>,
    pub outputs_uri: String,
    pub event_at: i64,
    pub now: i64,
}

const NODE_COLUMNS: &str = "project, domain, name, node_id, phase, parent_id, parent_task, \
    input_uri, closure, metadata, inputs, inputs_uri, outputs, outputs_uri, dynamic_workflow, \
    last_event_at, created_at, updated_at";

const TASK_COLUMNS: &str = "project, domain, name, node_id, task_project, task_domain, \
    task_name, task_version, retry_attempt, phase, phase_version, input_uri, closure, inputs, \
    inputs_uri, outputs, outputs_uri, last_event_at, created_at, updated_at";

fn execution_key(row: &AnyRow) -> Result<ExecutionKey, sqlx::Error> {
    Ok(ExecutionKey {
        project: row.try_get("project")?,
        domain: row.try_get("domain")?,
        name: row.try_get("name")?,
    })
}

fn decode_node(row: &AnyRow) -> Result<NodeExecutionRow, sqlx::Error> {
    Ok(NodeExecutionRow {
        key: NodeExecutionKey {
            execution: execution_key(row)?,
            node_id: row.try_get("node_id")?,
        },
        phase: row.try_get("phase")?,
        parent_id: row.try_get("parent_id")?,
        parent_task: row.try_get("parent_task")?,
        input_uri: row.try_get("input_uri")?,
        closure: row.try_get("closure")?,
        metadata: row.try_get("metadata")?,
        inputs: row.try_get("inputs")?,
        inputs_uri: row.try_get("inputs_uri")?,
        outputs: row.try_get("outputs")?,
        outputs_uri: row.try_get("outputs_uri")?,
        dynamic_workflow: row.try_get("dynamic_workflow")?,
        last_event_at: row.try_get("last_event_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn decode_task(row: &AnyRow) -> Result<TaskExecutionRow, sqlx::Error> {
    Ok(TaskExecutionRow {
        key: TaskExecutionKey {
            node: NodeExecutionKey {
                execution: execution_key(row)?,
                node_id: row.try_get("node_id")?,
            },
            task_project: row.try_get("task_project")?,
            task_domain: row.try_get("task_domain")?,
            task_name: row.try_get("task_name")?,
            task_version: row.try_get("task_version")?,
            retry_attempt: row.try_get("retry_attempt")?,
        },
        phase: row.try_get("phase")?,
        phase_version: row.try_get("phase_version")?,
        input_uri: row.try_get("input_uri")?,
        closure: row.try_get("closure")?,
        inputs: row.try_get("inputs")?,
        inputs_uri: row.try_get("inputs_uri")?,
        outputs: row.try_get("outputs")?,
        outputs_uri: row.try_get("outputs_uri")?,
        last_event_at: row.try_get("last_event_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn execution_condition(sql: &mut Sql, key: &ExecutionKey) {
    sql.push(" WHERE project = ")
        .bind(key.project.as_str())
        .push(" AND domain = ")
        .bind(key.domain.as_str())
        .push(" AND name = ")
        .bind(key.name.as_str());
}

fn node_condition(sql: &mut Sql, key: &NodeExecutionKey) {
    execution_condition(sql, &key.execution);
    sql.push(" AND node_id = ").bind(key.node_id.as_str());
}

fn task_condition(sql: &mut Sql, key: &TaskExecutionKey) {
    node_condition(sql, &key.node);
    sql.push(" AND task_project = ")
        .bind(key.task_project.as_str())
        .push(" AND task_domain = ")
        .bind(key.task_domain.as_str())
        .push(" AND task_name = ")
        .bind(key.task_name.as_str())
        .push(" AND task_version = ")
        .bind(key.task_version.as_str())
        .push(" AND retry_attempt = ")
        .bind(key.retry_attempt);
}

/// `INSERT INTO table (columns) VALUES (values...) ON CONFLICT DO NOTHING`.
fn insert(table: &str, columns: &str, values: Vec<Param>) -> Sql {
    let mut sql = Sql::new(&format!("INSERT INTO {table} ({columns}) VALUES ("));
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(v);
    }
    sql.push(") ON CONFLICT DO NOTHING");
    sql
}

impl Store {
    pub async fn get_execution_event_state(
        &self,
        key: &ExecutionKey,
    ) -> Result<Option<ExecutionEventState>, StoreError> {
        let mut sql =
            Sql::new("SELECT phase, closure, outputs, outputs_uri, last_event_at FROM executions");
        execution_condition(&mut sql, key);
        let Some(row) = sql.query().fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        Ok(Some(ExecutionEventState {
            phase: row.try_get("phase")?,
            closure: row.try_get("closure")?,
            outputs: row.try_get("outputs")?,
            outputs_uri: row.try_get("outputs_uri")?,
            last_event_at: row.try_get("last_event_at")?,
        }))
    }

    /// Applies an event to an execution still in `from_phase` with its last event at
    /// `from_event_at`; false when another writer got there first. `notifications` are queued
    /// in the same transaction (see `notifications.rs`).
    pub async fn apply_execution_event(
        &self,
        key: &ExecutionKey,
        from_phase: &str,
        from_event_at: i64,
        update: ExecutionEventUpdate<'_>,
        notifications: &[super::NewNotification],
    ) -> Result<bool, StoreError> {
        let (phase, now) = (update.phase, update.now);
        let mut sql = Sql::new("UPDATE executions SET phase = ");
        sql.bind(update.phase)
            .push(", closure = ")
            .bind(update.closure)
            .push(", outputs = ")
            .bind(update.outputs)
            .push(", outputs_uri = ")
            .bind(update.outputs_uri)
            .push(", last_event_at = ")
            .bind(update.event_at)
            .push(", updated_at = ")
            .bind(update.now);
        execution_condition(&mut sql, key);
        sql.push(" AND phase = ")
            .bind(from_phase)
            .push(" AND last_event_at = ")
            .bind(from_event_at);
        if notifications.is_empty() {
            return Ok(sql.query().execute(&self.pool).await?.rows_affected() == 1);
        }
        let mut tx = self.pool.begin().await?;
        if sql.query().execute(&mut *tx).await?.rows_affected() != 1 {
            return Ok(false);
        }
        super::notifications::enqueue(&mut tx, key, phase, notifications, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// False when the node execution exists already.
    pub async fn insert_node_execution(&self, row: &NodeExecutionRow) -> Result<bool, StoreError> {
        let e = &row.key.execution;
        let sql = insert(
            "node_executions",
            NODE_COLUMNS,
            vec![
                e.project.as_str().into(),
                e.domain.as_str().into(),
                e.name.as_str().into(),
                row.key.node_id.as_str().into(),
                row.phase.as_str().into(),
                row.parent_id.as_str().into(),
                row.parent_task.as_str().into(),
                row.input_uri.as_str().into(),
                row.closure.clone().into(),
                row.metadata.clone().into(),
                row.inputs.clone().into(),
                row.inputs_uri.as_str().into(),
                row.outputs.clone().into(),
                row.outputs_uri.as_str().into(),
                row.dynamic_workflow.clone().into(),
                row.last_event_at.into(),
                row.created_at.into(),
                row.updated_at.into(),
            ],
        );
        Ok(sql.query().execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Replaces the event-driven columns of `row` if the stored row is still at `from_phase`
    /// and `from_event_at`; false otherwise.
    pub async fn update_node_execution(
        &self,
        row: &NodeExecutionRow,
        from_phase: &str,
        from_event_at: i64,
    ) -> Result<bool, StoreError> {
        let mut sql = Sql::new("UPDATE node_executions SET phase = ");
        sql.bind(row.phase.as_str())
            .push(", input_uri = ")
            .bind(row.input_uri.as_str())
            .push(", closure = ")
            .bind(row.closure.clone())
            .push(", metadata = ")
            .bind(row.metadata.clone())
            .push(", inputs = ")
            .bind(row.inputs.clone())
            .push(", inputs_uri = ")
            .bind(row.inputs_uri.as_str())
            .push(", outputs = ")
            .bind(row.outputs.clone())
            .push(", outputs_uri = ")
            .bind(row.outputs_uri.as_str())
            .push(", dynamic_workflow = ")
            .bind(row.dynamic_workflow.clone())
            .push(", last_event_at = ")
            .bind(row.last_event_at)
            .push(", updated_at = ")
            .bind(row.updated_at);
        node_condition(&mut sql, &row.key);
        sql.push(" AND phase = ")
            .bind(from_phase)
            .push(" AND last_event_at = ")
            .bind(from_event_at);
        Ok(sql.query().execute(&self.pool).await?.rows_affected() == 1)
    }

    pub async fn get_node_execution(
        &self,
        key: &NodeExecutionKey,
    ) -> Result<Option<NodeExecutionRow>, StoreError> {
        let mut sql = Sql::new(&format!("SELECT {NODE_COLUMNS} FROM node_executions"));
        node_condition(&mut sql, key);
        let row = sql.query().fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(decode_node).transpose()?)
    }

    /// Every node execution of `execution`, at any depth, that ended with outputs to reuse
    /// (SUCCEEDED, or RECOVERED by an earlier recovery): what RecoverExecution skips.
    pub async fn recoverable_node_executions(
        &self,
        execution: &ExecutionKey,
    ) -> Result<Vec<NodeExecutionRow>, StoreError> {
        let mut sql = Sql::new(&format!("SELECT {NODE_COLUMNS} FROM node_executions"));
        execution_condition(&mut sql, execution);
        sql.push(" AND phase IN (")
            .bind("SUCCEEDED")
            .push(", ")
            .bind("RECOVERED")
            .push(")");
        let rows = sql.query().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(decode_node).collect::<Result<_, _>>()?)
    }

    /// Node executions of `execution` (all executions for [`NodeParent::Task`]) under `parent`.
    pub async fn list_node_executions(
        &self,
        execution: Option<&ExecutionKey>,
        parent: &NodeParent,
        list: &ListParams,
    ) -> Result<Vec<NodeExecutionRow>, StoreError> {
        let mut sql = Sql::new(&format!("SELECT {NODE_COLUMNS} FROM node_executions"));
        match execution {
            Some(key) => execution_condition(&mut sql, key),
            None => {
                sql.push(" WHERE 1 = 1");
            }
        }
        match parent {
            NodeParent::TopLevel => sql.push(" AND parent_id = ").bind(""),
            NodeParent::Node(id) => sql.push(" AND parent_id = ").bind(id.as_str()),
            NodeParent::Task(task) => sql.push(" AND parent_task = ").bind(task.as_str()),
        };
        sql.push_list(list, "project, domain, name, node_id");
        let rows = sql.query().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(decode_node).collect::<Result<_, _>>()?)
    }

    /// False when the task execution exists already.
    pub async fn insert_task_execution(&self, row: &TaskExecutionRow) -> Result<bool, StoreError> {
        let k = &row.key;
        let e = &k.node.execution;
        let sql = insert(
            "task_executions",
            TASK_COLUMNS,
            vec![
                e.project.as_str().into(),
                e.domain.as_str().into(),
                e.name.as_str().into(),
                k.node.node_id.as_str().into(),
                k.task_project.as_str().into(),
                k.task_domain.as_str().into(),
                k.task_name.as_str().into(),
                k.task_version.as_str().into(),
                k.retry_attempt.into(),
                row.phase.as_str().into(),
                row.phase_version.into(),
                row.input_uri.as_str().into(),
                row.closure.clone().into(),
                row.inputs.clone().into(),
                row.inputs_uri.as_str().into(),
                row.outputs.clone().into(),
                row.outputs_uri.as_str().into(),
                row.last_event_at.into(),
                row.created_at.into(),
                row.updated_at.into(),
            ],
        );
        Ok(sql.query().execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Like [`Store::update_node_execution`], also conditional on the stored phase version.
    pub async fn update_task_execution(
        &self,
        row: &TaskExecutionRow,
        from: &TaskExecutionRow,
    ) -> Result<bool, StoreError> {
        let mut sql = Sql::new("UPDATE task_executions SET phase = ");
        sql.bind(row.phase.as_str())
            .push(", phase_version = ")
            .bind(row.phase_version)
            .push(", input_uri = ")
            .bind(row.input_uri.as_str())
            .push(", closure = ")
            .bind(row.closure.clone())
            .push(", inputs = ")
            .bind(row.inputs.clone())
            .push(", inputs_uri = ")
            .bind(row.inputs_uri.as_str())
            .push(", outputs = ")
            .bind(row.outputs.clone())
            .push(", outputs_uri = ")
            .bind(row.outputs_uri.as_str())
            .push(", last_event_at = ")
            .bind(row.last_event_at)
            .push(", updated_at = ")
            .bind(row.updated_at);
        task_condition(&mut sql, &row.key);
        sql.push(" AND phase = ")
            .bind(from.phase.as_str())
            .push(" AND phase_version = ")
            .bind(from.phase_version)
            .push(" AND last_event_at = ")
            .bind(from.last_event_at);
        Ok(sql.query().execute(&self.pool).await?.rows_affected() == 1)
    }

    pub async fn get_task_execution(
        &self,
        key: &TaskExecutionKey,
    ) -> Result<Option<TaskExecutionRow>, StoreError> {
        let mut sql = Sql::new(&format!("SELECT {TASK_COLUMNS} FROM task_executions"));
        task_condition(&mut sql, key);
        let row = sql.query().fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(decode_task).transpose()?)
    }

    pub async fn list_task_executions(
        &self,
        node: &NodeExecutionKey,
        list: &ListParams,
    ) -> Result<Vec<TaskExecutionRow>, StoreError> {
        let mut sql = Sql::new(&format!("SELECT {TASK_COLUMNS} FROM task_executions"));
        node_condition(&mut sql, node);
        sql.push_list(
            list,
            "task_project, task_domain, task_name, task_version, retry_attempt",
        );
        let rows = sql.query().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(decode_task).collect::<Result<_, _>>()?)
    }
}
