//! Launch-plan schedules (migration 0011): the row of each launch plan name whose active
//! version has a schedule, its pending tick and the lease of the scheduler launching it.
//!
//! Every change of the pending tick is a compare-and-set on it, and a tick is taken under a
//! lease, so of several scheduler instances (replicas, or one restarted) one launches a tick
//! and the others see it gone.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::query::Sql;
use super::{Store, StoreError};

/// One schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleRow {
    pub project: String,
    pub domain: String,
    pub name: String,
    pub version: String,
    /// The launch plan's `admin.Schedule`, encoded.
    pub schedule: Vec<u8>,
    /// The earliest tick not launched yet, in micros since the epoch.
    pub next_tick: i64,
    pub lease_owner: String,
    pub lease_expires_at: i64,
}

const COLUMNS: &str =
    "project, domain, name, version, schedule, next_tick, lease_owner, lease_expires_at";

fn decode(row: &AnyRow) -> Result<ScheduleRow, sqlx::Error> {
    Ok(ScheduleRow {
        project: row.try_get("project")?,
        domain: row.try_get("domain")?,
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        schedule: row.try_get("schedule")?,
        next_tick: row.try_get("next_tick")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_expires_at: row.try_get("lease_expires_at")?,
    })
}

/// ` WHERE` the row of `row`'s name and version.
fn key_condition(sql: &mut Sql, row: &ScheduleRow) {
    sql.push(" WHERE project = ")
        .bind(row.project.as_str())
        .push(" AND domain = ")
        .bind(row.domain.as_str())
        .push(" AND name = ")
        .bind(row.name.as_str())
        .push(" AND version = ")
        .bind(row.version.as_str());
}

impl Store {
    /// Makes `row` the schedule of its launch plan name. The same version with the same
    /// schedule keeps its pending tick (activating an active version again, as `pyflyte
    /// register --activate-launchplans` does on every registration, neither skips nor repeats
    /// a tick); another version or schedule starts from `row.next_tick`.
    pub async fn put_schedule(&self, row: &ScheduleRow, now: i64) -> Result<(), StoreError> {
        let mut sql = Sql::new(&format!(
            "INSERT INTO schedules ({COLUMNS}, created_at, updated_at) VALUES ("
        ));
        sql.bind(row.project.as_str())
            .push(", ")
            .bind(row.domain.as_str())
            .push(", ")
            .bind(row.name.as_str())
            .push(", ")
            .bind(row.version.as_str())
            .push(", ")
            .bind(row.schedule.clone())
            .push(", ")
            .bind(row.next_tick)
            .push(", '', 0, ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(
                ") ON CONFLICT (project, domain, name) DO UPDATE SET \
                 version = excluded.version, schedule = excluded.schedule, \
                 next_tick = excluded.next_tick, lease_owner = '', lease_expires_at = 0, \
                 updated_at = excluded.updated_at \
                 WHERE schedules.version <> excluded.version \
                 OR schedules.schedule <> excluded.schedule",
            );
        sql.query().execute(&self.pool).await?;
        Ok(())
    }

    /// Deletes the schedule of a launch plan name, only if it is `version`'s when one is given;
    /// true when a row went.
    pub async fn delete_schedule(
        &self,
        project: &str,
        domain: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut sql = Sql::new("DELETE FROM schedules WHERE project = ");
        sql.bind(project)
            .push(" AND domain = ")
            .bind(domain)
            .push(" AND name = ")
            .bind(name);
        if let Some(version) = version {
            sql.push(" AND version = ").bind(version);
        }
        Ok(sql.query().execute(&self.pool).await?.rows_affected() > 0)
    }

    /// The schedule of a launch plan name, if its active version has one.
    pub async fn get_schedule(
        &self,
        project: &str,
        domain: &str,
        name: &str,
    ) -> Result<Option<ScheduleRow>, StoreError> {
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM schedules WHERE project = "));
        sql.bind(project)
            .push(" AND domain = ")
            .bind(domain)
            .push(" AND name = ")
            .bind(name);
        let row = sql.query().fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(decode).transpose()?)
    }

    /// Up to `limit` schedules whose pending tick is due at `now` and that no live lease holds,
    /// earliest first.
    pub async fn due_schedules(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<ScheduleRow>, StoreError> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM schedules WHERE next_tick <= "
        ));
        sql.bind(now)
            .push(" AND (lease_owner = '' OR lease_expires_at < ")
            .bind(now)
            .push(") ORDER BY next_tick, project, domain, name LIMIT ")
            .bind(limit);
        let rows = sql.query().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
    }

    /// Takes the lease of `row`'s pending tick for `owner` until `expires_at`, if the row still
    /// has that version and tick and no other live lease; true when taken.
    pub async fn lease_schedule(
        &self,
        row: &ScheduleRow,
        owner: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let mut sql = Sql::new("UPDATE schedules SET lease_owner = ");
        sql.bind(owner)
            .push(", lease_expires_at = ")
            .bind(expires_at)
            .push(", updated_at = ")
            .bind(now);
        key_condition(&mut sql, row);
        sql.push(" AND next_tick = ")
            .bind(row.next_tick)
            .push(" AND (lease_owner = '' OR lease_owner = ")
            .bind(owner)
            .push(" OR lease_expires_at < ")
            .bind(now)
            .push(")");
        Ok(sql.query().execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Moves `row`'s pending tick to `next_tick` and gives the lease up, if `owner` still holds
    /// it for that tick; true when moved.
    pub async fn advance_schedule(
        &self,
        row: &ScheduleRow,
        owner: &str,
        next_tick: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut sql = Sql::new("UPDATE schedules SET next_tick = ");
        sql.bind(next_tick)
            .push(", lease_owner = '', lease_expires_at = 0, updated_at = ")
            .bind(now);
        key_condition(&mut sql, row);
        sql.push(" AND next_tick = ")
            .bind(row.next_tick)
            .push(" AND lease_owner = ")
            .bind(owner);
        Ok(sql.query().execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Gives `owner`'s lease of `row` up without moving the tick (a launch to retry).
    pub async fn release_schedule(
        &self,
        row: &ScheduleRow,
        owner: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut sql =
            Sql::new("UPDATE schedules SET lease_owner = '', lease_expires_at = 0, updated_at = ");
        sql.bind(now);
        key_condition(&mut sql, row);
        sql.push(" AND lease_owner = ").bind(owner);
        sql.query().execute(&self.pool).await?;
        Ok(())
    }
}
