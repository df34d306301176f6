//! Workflow executions: spec, closure and inputs as protobuf bytes, plus the columns lists
//! filter on (phase, launch entity, timestamps, principal) and their labels and tags in
//! `execution_tags`.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::query::{Param, Sql};
use super::{Backend, Store, StoreError};
use crate::list::{Field, FieldKind, FieldSet, Filter, ListParams};

const fn field(name: &'static str, column: &'static str, kind: FieldKind) -> Field {
    Field { name, column, kind }
}

pub static EXECUTION_FIELDS: FieldSet = FieldSet {
    entity: "execution",
    fields: &[
        field("project", "project", FieldKind::Text),
        field("domain", "domain", FieldKind::Text),
        field("name", "name", FieldKind::Text),
        field("phase", "phase", FieldKind::WorkflowPhase),
        field("mode", "mode", FieldKind::Integer),
        field("created_at", "created_at", FieldKind::Timestamp),
        field("execution_created_at", "created_at", FieldKind::Timestamp),
        field("updated_at", "updated_at", FieldKind::Timestamp),
        field("execution_updated_at", "updated_at", FieldKind::Timestamp),
        field("launch_plan.name", "launch_plan_name", FieldKind::Text),
        field(
            "launch_plan.version",
            "launch_plan_version",
            FieldKind::Text,
        ),
        field("workflow.name", "workflow_name", FieldKind::Text),
        field("workflow.version", "workflow_version", FieldKind::Text),
        field("task.name", "task_name", FieldKind::Text),
        field("task.version", "task_version", FieldKind::Text),
        // flyteadmin's `user` column: who launched the execution (spec.metadata.principal).
        field("user", "principal", FieldKind::Text),
        // flyteadmin's execution_tags join: a label is (key, value), a tag (key, ''). All the
        // tag filters of one request apply to the same tag row, as in flyteadmin's join, so
        // `eq(execution_tag.key,team)+eq(execution_tag.value,ml)` means the label team=ml.
        field("execution_tag.key", TAG_KEY, FieldKind::Text),
        field("execution_tag.value", TAG_VALUE, FieldKind::Text),
        // What flyteconsole filters tags with; flyteadmin maps it to execution_tag.key.
        field("admin_tag.name", TAG_KEY, FieldKind::Text),
    ],
    default_sort: "created_at",
    default_ascending: false,
};

/// The `execution_tags` columns; filters on them go into a subquery on that table.
const TAG_KEY: &str = "tag_key";
const TAG_VALUE: &str = "tag_value";

/// Whether a filter or sort field lives in `execution_tags` rather than `executions`.
pub fn is_tag_field(field: &Field) -> bool {
    field.column == TAG_KEY || field.column == TAG_VALUE
}

pub use alula_plane::ExecutionKey;

/// One execution. `spec`/`closure` are an encoded `admin.ExecutionSpec`/`ExecutionClosure`;
/// `inputs` the resolved `core.LiteralMap` (defaults and fixed inputs applied), `user_inputs`
/// what the caller sent. A literal map too large for the row is in object storage instead: its
/// bytes column is empty and its `*_uri` names it (see `crate::literals`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecutionRow {
    pub key: ExecutionKey,
    /// `core.ResourceType` of what was launched: a launch plan or a single task.
    pub launch_entity: i64,
    pub launch_plan_name: String,
    pub launch_plan_version: String,
    pub workflow_name: String,
    pub workflow_version: String,
    pub task_name: String,
    pub task_version: String,
    /// A `WorkflowExecution.Phase` name.
    pub phase: String,
    pub mode: i64,
    pub spec: Vec<u8>,
    pub closure: Vec<u8>,
    pub inputs: Vec<u8>,
    pub inputs_uri: String,
    pub user_inputs: Vec<u8>,
    pub user_inputs_uri: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Who launched it: `spec.metadata.principal`, the `user` filter.
    pub principal: String,
    /// The labels (key, value) and tags (key, "") of `spec`, the `execution_tag.*` filters.
    /// Written with the row; reads leave it empty (the spec holds them).
    pub tags: Vec<(String, String)>,
}

const COLUMNS: &str =
    "project, domain, name, launch_entity, launch_plan_name, launch_plan_version, \
    workflow_name, workflow_version, task_name, task_version, phase, mode, spec, closure, inputs, \
    inputs_uri, user_inputs, user_inputs_uri, created_at, updated_at, principal";

/// What a list returns: the row without its literal maps, which lists do not show and which
/// can be large (GetExecutionData reads them). `empty` is the backend's empty-bytes literal.
fn list_columns(empty: &str) -> String {
    format!(
        "project, domain, name, launch_entity, launch_plan_name, launch_plan_version, \
         workflow_name, workflow_version, task_name, task_version, phase, mode, spec, closure, \
         {empty} AS inputs, inputs_uri, {empty} AS user_inputs, user_inputs_uri, created_at, \
         updated_at, principal"
    )
}

fn decode(row: &AnyRow) -> Result<ExecutionRow, sqlx::Error> {
    Ok(ExecutionRow {
        key: ExecutionKey {
            project: row.try_get("project")?,
            domain: row.try_get("domain")?,
            name: row.try_get("name")?,
        },
        launch_entity: row.try_get("launch_entity")?,
        launch_plan_name: row.try_get("launch_plan_name")?,
        launch_plan_version: row.try_get("launch_plan_version")?,
        workflow_name: row.try_get("workflow_name")?,
        workflow_version: row.try_get("workflow_version")?,
        task_name: row.try_get("task_name")?,
        task_version: row.try_get("task_version")?,
        phase: row.try_get("phase")?,
        mode: row.try_get("mode")?,
        spec: row.try_get("spec")?,
        closure: row.try_get("closure")?,
        inputs: row.try_get("inputs")?,
        inputs_uri: row.try_get("inputs_uri")?,
        user_inputs: row.try_get("user_inputs")?,
        user_inputs_uri: row.try_get("user_inputs_uri")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        principal: row.try_get("principal")?,
        tags: Vec::new(),
    })
}

fn key_condition(sql: &mut Sql, key: &ExecutionKey) {
    sql.push(" WHERE project = ")
        .bind(key.project.as_str())
        .push(" AND domain = ")
        .bind(key.domain.as_str())
        .push(" AND name = ")
        .bind(key.name.as_str());
}

/// Writes `row` and its tags in `tx`; false (and nothing written) when the key exists.
async fn insert_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    row: &ExecutionRow,
) -> Result<bool, StoreError> {
    let mut sql = Sql::new(&format!("INSERT INTO executions ({COLUMNS}) VALUES ("));
    let values: [Param; 21] = [
        row.key.project.as_str().into(),
        row.key.domain.as_str().into(),
        row.key.name.as_str().into(),
        row.launch_entity.into(),
        row.launch_plan_name.as_str().into(),
        row.launch_plan_version.as_str().into(),
        row.workflow_name.as_str().into(),
        row.workflow_version.as_str().into(),
        row.task_name.as_str().into(),
        row.task_version.as_str().into(),
        row.phase.as_str().into(),
        row.mode.into(),
        row.spec.clone().into(),
        row.closure.clone().into(),
        row.inputs.clone().into(),
        row.inputs_uri.as_str().into(),
        row.user_inputs.clone().into(),
        row.user_inputs_uri.as_str().into(),
        row.created_at.into(),
        row.updated_at.into(),
        row.principal.as_str().into(),
    ];
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(v);
    }
    sql.push(") ON CONFLICT DO NOTHING");
    if sql.query().execute(&mut **tx).await?.rows_affected() != 1 {
        return Ok(false);
    }
    // A handful of labels per execution: one statement each keeps the SQL portable.
    for (key, value) in &row.tags {
        let mut tag = Sql::new(&format!(
            "INSERT INTO execution_tags (project, domain, name, {TAG_KEY}, {TAG_VALUE}) VALUES ("
        ));
        tag.bind(row.key.project.as_str())
            .push(", ")
            .bind(row.key.domain.as_str())
            .push(", ")
            .bind(row.key.name.as_str())
            .push(", ")
            .bind(key.as_str())
            .push(", ")
            .bind(value.as_str())
            .push(") ON CONFLICT DO NOTHING");
        tag.query().execute(&mut **tx).await?;
    }
    Ok(true)
}

impl Store {
    /// Returns false when an execution with this key exists already. The row and its tags are
    /// written in one transaction, so a list never sees an execution without its labels.
    pub async fn insert_execution(&self, row: &ExecutionRow) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = insert_in(&mut tx, row).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// Inserts many executions in one transaction (imports, benchmarks); returns how many were
    /// new. Each is written exactly as [`Store::insert_execution`] writes it.
    pub async fn insert_executions(&self, rows: &[ExecutionRow]) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0;
        for row in rows {
            inserted += usize::from(insert_in(&mut tx, row).await?);
        }
        tx.commit().await?;
        Ok(inserted)
    }

    pub async fn get_execution(
        &self,
        key: &ExecutionKey,
    ) -> Result<Option<ExecutionRow>, StoreError> {
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM executions"));
        key_condition(&mut sql, key);
        let row = sql.query().fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(decode).transpose()?)
    }

    /// Whether the execution exists, without reading its payloads (events ask on every call).
    pub async fn execution_exists(&self, key: &ExecutionKey) -> Result<bool, StoreError> {
        let mut sql = Sql::new("SELECT 1 AS one FROM executions");
        key_condition(&mut sql, key);
        Ok(sql.query().fetch_optional(&self.pool).await?.is_some())
    }

    /// A page of the executions of `project`/`domain`. Filters on labels and tags select the
    /// names from `execution_tags` (its index leads with project, domain, key, value), the others
    /// apply to `executions`, each with an index leading with project, domain, the column and
    /// `created_at`. The sort must be on an `executions` column (the service checks).
    pub async fn list_executions(
        &self,
        project: &str,
        domain: &str,
        list: &ListParams,
    ) -> Result<Vec<ExecutionRow>, StoreError> {
        let (tag_filters, own_filters): (Vec<&Filter>, Vec<&Filter>) =
            list.filters.iter().partition(|f| is_tag_field(f.field));
        let empty = match self.backend {
            Backend::Sqlite => "X''",
            Backend::Postgres => "''::bytea",
        };
        let mut sql = Sql::new(&format!(
            "SELECT {} FROM executions WHERE project = ",
            list_columns(empty)
        ));
        sql.bind(project).push(" AND domain = ").bind(domain);
        if !tag_filters.is_empty() {
            sql.push(
                " AND name IN (SELECT execution_tags.name FROM execution_tags WHERE project = ",
            )
            .bind(project)
            .push(" AND domain = ")
            .bind(domain)
            .push_filters(tag_filters)
            .push(")");
        }
        sql.push_filters(own_filters);
        // The tiebreak runs the same way as the sort, so one index scan yields the order.
        let tiebreak = if list.ascending {
            "name ASC"
        } else {
            "name DESC"
        };
        sql.push_order_page(list, tiebreak);
        let rows = sql.query().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
    }

    /// Moves an execution from `from_phase` to `phase` with its new closure. Returns false when
    /// the stored phase is no longer `from_phase` (someone else changed it first).
    pub async fn update_execution_phase(
        &self,
        key: &ExecutionKey,
        from_phase: &str,
        phase: &str,
        closure: Vec<u8>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut sql = Sql::new("UPDATE executions SET phase = ");
        sql.bind(phase)
            .push(", closure = ")
            .bind(closure)
            .push(", updated_at = ")
            .bind(now);
        key_condition(&mut sql, key);
        sql.push(" AND phase = ").bind(from_phase);
        Ok(sql.query().execute(&self.pool).await?.rows_affected() == 1)
    }

    /// How many executions are stored in each phase, for the metrics endpoint.
    pub async fn count_executions_by_phase(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT phase, COUNT(*) AS n FROM executions GROUP BY phase")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("phase")?, r.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
