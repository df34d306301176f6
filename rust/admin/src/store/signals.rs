//! Gate-node signals: the expected `core.LiteralType` and, once set, the `core.Literal` value,
//! keyed by execution and signal id.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::query::Sql;
use super::{ExecutionKey, Store, StoreError};
use crate::list::{Field, FieldKind, FieldSet, ListParams};

const fn field(name: &'static str, column: &'static str, kind: FieldKind) -> Field {
    Field { name, column, kind }
}

pub static SIGNAL_FIELDS: FieldSet = FieldSet {
    entity: "signal",
    fields: &[
        field("signal_id", "signal_id", FieldKind::Text),
        field("created_at", "created_at", FieldKind::Timestamp),
        field("updated_at", "updated_at", FieldKind::Timestamp),
    ],
    default_sort: "created_at",
    default_ascending: false,
};

/// One signal. `value` is empty until the signal is set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignalRow {
    pub execution: ExecutionKey,
    pub signal_id: String,
    pub literal_type: Vec<u8>,
    pub value: Vec<u8>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "project, domain, name, signal_id, type, value, created_at, updated_at";

fn decode(row: &AnyRow) -> Result<SignalRow, sqlx::Error> {
    Ok(SignalRow {
        execution: ExecutionKey {
            project: row.try_get("project")?,
            domain: row.try_get("domain")?,
            name: row.try_get("name")?,
        },
        signal_id: row.try_get("signal_id")?,
        literal_type: row.try_get("type")?,
        value: row.try_get("value")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn key_condition(sql: &mut Sql, execution: &ExecutionKey, signal_id: &str) {
    sql.push(" WHERE project = ")
        .bind(execution.project.as_str())
        .push(" AND domain = ")
        .bind(execution.domain.as_str())
        .push(" AND name = ")
        .bind(execution.name.as_str())
        .push(" AND signal_id = ")
        .bind(signal_id);
}

impl Store {
    /// Inserts `row` unless a signal with its key exists, then returns the stored signal (the
    /// existing one wins, so concurrent gate nodes agree on one row).
    pub async fn get_or_create_signal(&self, row: &SignalRow) -> Result<SignalRow, StoreError> {
        let mut sql = Sql::new(&format!("INSERT INTO signals ({COLUMNS}) VALUES ("));
        sql.bind(row.execution.project.as_str())
            .push(", ")
            .bind(row.execution.domain.as_str())
            .push(", ")
            .bind(row.execution.name.as_str())
            .push(", ")
            .bind(row.signal_id.as_str())
            .push(", ")
            .bind(row.literal_type.clone())
            .push(", ")
            .bind(row.value.clone())
            .push(", ")
            .bind(row.created_at)
            .push(", ")
            .bind(row.updated_at)
            .push(") ON CONFLICT DO NOTHING");
        sql.query().execute(&self.pool).await?;
        let stored = self.get_signal(&row.execution, &row.signal_id).await?;
        // The row was inserted or already there, and signals are never deleted.
        stored.ok_or_else(|| StoreError::Database(sqlx::Error::RowNotFound))
    }

    pub async fn get_signal(
        &self,
        execution: &ExecutionKey,
        signal_id: &str,
    ) -> Result<Option<SignalRow>, StoreError> {
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM signals"));
        key_condition(&mut sql, execution, signal_id);
        let row = sql.query().fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(decode).transpose()?)
    }

    pub async fn list_signals(
        &self,
        execution: &ExecutionKey,
        list: &ListParams,
    ) -> Result<Vec<SignalRow>, StoreError> {
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM signals WHERE project = "));
        sql.bind(execution.project.as_str())
            .push(" AND domain = ")
            .bind(execution.domain.as_str())
            .push(" AND name = ")
            .bind(execution.name.as_str());
        sql.push_list(list, "signal_id");
        let rows = sql.query().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
    }

    /// Sets the value of an unset signal. Returns false when the signal is missing or was set
    /// already; the condition on the empty value makes two concurrent sets yield one winner.
    pub async fn set_signal_value(
        &self,
        execution: &ExecutionKey,
        signal_id: &str,
        value: Vec<u8>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut sql = Sql::new("UPDATE signals SET value = ");
        sql.bind(value).push(", updated_at = ").bind(now);
        key_condition(&mut sql, execution, signal_id);
        sql.push(" AND length(value) = 0");
        Ok(sql.query().execute(&self.pool).await?.rows_affected() == 1)
    }
}
