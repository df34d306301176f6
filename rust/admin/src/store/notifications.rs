//! The notifications outbox (`notification_outbox`): rows queued with an execution's phase
//! change and the sender loop's claims. A claim bumps `attempts` and moves `next_attempt_at`
//! forward (a lease: a sender that dies mid-send leaves the row due again later); every later
//! write is conditional on `attempts` still being the claimed count, so of two admin replicas
//! only the one that claimed a row records its outcome.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::query::Sql;
use super::{ExecutionKey, Store, StoreError};

/// A notification to queue with a phase change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNotification {
    /// The notification's index in the list it came from.
    pub position: i64,
    /// `email`, `slack` or `pager_duty`.
    pub channel: String,
    /// A JSON array of addresses.
    pub recipients: String,
    /// A JSON object: the template variables at the phase change.
    pub context: String,
}

/// Where a row is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotificationState {
    Pending,
    Sent,
    Failed,
}

impl NotificationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "sent" => Self::Sent,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// One queued notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationRow {
    pub execution: ExecutionKey,
    /// The `WorkflowExecution.Phase` name that triggered it.
    pub phase: String,
    pub notification: NewNotification,
    pub state: NotificationState,
    /// Sends tried so far (a claim counts as one).
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: String,
}

const COLUMNS: &str = "project, domain, name, phase, position, channel, recipients, context, \
    state, attempts, next_attempt_at, last_error";

fn decode(row: &AnyRow) -> Result<NotificationRow, sqlx::Error> {
    Ok(NotificationRow {
        execution: ExecutionKey {
            project: row.try_get("project")?,
            domain: row.try_get("domain")?,
            name: row.try_get("name")?,
        },
        phase: row.try_get("phase")?,
        notification: NewNotification {
            position: row.try_get("position")?,
            channel: row.try_get("channel")?,
            recipients: row.try_get("recipients")?,
            context: row.try_get("context")?,
        },
        state: NotificationState::parse(&row.try_get::<String, _>("state")?),
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
    })
}

fn row_condition(sql: &mut Sql, row: &NotificationRow) {
    sql.push(" WHERE project = ")
        .bind(row.execution.project.as_str())
        .push(" AND domain = ")
        .bind(row.execution.domain.as_str())
        .push(" AND name = ")
        .bind(row.execution.name.as_str())
        .push(" AND phase = ")
        .bind(row.phase.as_str())
        .push(" AND position = ")
        .bind(row.notification.position);
}

/// Queues `rows` for `key` reaching `phase`, on the connection (a transaction) that records the
/// phase change. A row already queued for the same (execution, phase, position) stays as it is.
pub(super) async fn enqueue(
    conn: &mut AnyConnection,
    key: &ExecutionKey,
    phase: &str,
    rows: &[NewNotification],
    now: i64,
) -> Result<(), StoreError> {
    for n in rows {
        let mut sql = Sql::new(&format!(
            "INSERT INTO notification_outbox ({COLUMNS}, created_at, updated_at) VALUES ("
        ));
        sql.bind(key.project.as_str())
            .push(", ")
            .bind(key.domain.as_str())
            .push(", ")
            .bind(key.name.as_str())
            .push(", ")
            .bind(phase)
            .push(", ")
            .bind(n.position)
            .push(", ")
            .bind(n.channel.as_str())
            .push(", ")
            .bind(n.recipients.as_str())
            .push(", ")
            .bind(n.context.as_str())
            .push(", ")
            .bind(NotificationState::Pending.as_str())
            .push(", 0, ")
            .bind(now)
            .push(", '', ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(") ON CONFLICT DO NOTHING");
        sql.query().execute(&mut *conn).await?;
    }
    Ok(())
}

impl Store {
    /// What notifications of an execution are decided from: its encoded `admin.ExecutionSpec`
    /// and `admin.ExecutionClosure`, without its literal maps.
    pub async fn execution_spec_and_closure(
        &self,
        key: &ExecutionKey,
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError> {
        let mut sql = Sql::new("SELECT spec, closure FROM executions WHERE project = ");
        sql.bind(key.project.as_str())
            .push(" AND domain = ")
            .bind(key.domain.as_str())
            .push(" AND name = ")
            .bind(key.name.as_str());
        let row = sql.query().fetch_optional(&self.pool).await?;
        Ok(row
            .map(|r| Ok::<_, sqlx::Error>((r.try_get("spec")?, r.try_get("closure")?)))
            .transpose()?)
    }

    /// Pending rows due at `now`, the oldest first.
    pub async fn due_notifications(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM notification_outbox WHERE state = "
        ));
        sql.bind(NotificationState::Pending.as_str())
            .push(" AND next_attempt_at <= ")
            .bind(now)
            .push(" ORDER BY next_attempt_at LIMIT ")
            .bind(limit);
        let rows = sql.query().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
    }

    /// Every row queued for an execution, in (phase, position) order.
    pub async fn execution_notifications(
        &self,
        key: &ExecutionKey,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM notification_outbox WHERE project = "
        ));
        sql.bind(key.project.as_str())
            .push(" AND domain = ")
            .bind(key.domain.as_str())
            .push(" AND name = ")
            .bind(key.name.as_str())
            .push(" ORDER BY phase, position");
        let rows = sql.query().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
    }

    /// Takes `row` (as read) for one send: counts the attempt and makes the row due again only
    /// at `lease_until`. False when another sender took or finished it first.
    pub async fn claim_notification(
        &self,
        row: &NotificationRow,
        lease_until: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut sql = Sql::new("UPDATE notification_outbox SET attempts = ");
        sql.bind(row.attempts + 1)
            .push(", next_attempt_at = ")
            .bind(lease_until)
            .push(", updated_at = ")
            .bind(now);
        row_condition(&mut sql, row);
        sql.push(" AND state = ")
            .bind(NotificationState::Pending.as_str())
            .push(" AND attempts = ")
            .bind(row.attempts);
        Ok(sql.query().execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Deletes sent and failed rows last changed before `before`; returns how many.
    pub async fn prune_notifications(&self, before: i64) -> Result<u64, StoreError> {
        let mut sql = Sql::new("DELETE FROM notification_outbox WHERE state <> ");
        sql.bind(NotificationState::Pending.as_str())
            .push(" AND updated_at < ")
            .bind(before);
        Ok(sql.query().execute(&self.pool).await?.rows_affected())
    }

    /// Records the outcome of the send claimed as attempt `attempts`: sent, failed for good, or
    /// pending again from `next_attempt_at`. False when the claim was lost meanwhile.
    pub async fn finish_notification(
        &self,
        row: &NotificationRow,
        attempts: i64,
        state: NotificationState,
        next_attempt_at: i64,
        error: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut sql = Sql::new("UPDATE notification_outbox SET state = ");
        sql.bind(state.as_str())
            .push(", next_attempt_at = ")
            .bind(next_attempt_at)
            .push(", last_error = ")
            .bind(error)
            .push(", updated_at = ")
            .bind(now);
        row_condition(&mut sql, row);
        sql.push(" AND state = ")
            .bind(NotificationState::Pending.as_str())
            .push(" AND attempts = ")
            .bind(attempts);
        Ok(sql.query().execute(&self.pool).await?.rows_affected() == 1)
    }
}
