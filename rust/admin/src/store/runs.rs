//! Propeller's records in admin's database: leases on executions, the engine state of each, the
//! event outbox and the task output cache (see migration 0006).
//!
//! Every write that a lease protects is conditional on the caller still owning it, so an
//! instance that lost its lease (paused past its expiry, say) cannot overwrite the work of the
//! instance that took over.

use std::collections::HashSet;

use sqlx::Row;

use super::query::Sql;
use super::spill::Spill;
use super::{ExecutionKey, Store, StoreError};

/// Workflow phases in which an execution still needs a propeller.
const ACTIVE_PHASES: [&str; 5] = ["QUEUED", "RUNNING", "SUCCEEDING", "FAILING", "ABORTING"];

pub use alula_plane::{OutboxEvent, RunRecord};

fn key_condition(sql: &mut Sql, key: &ExecutionKey) {
    sql.push(" WHERE project = ")
        .bind(key.project.as_str())
        .push(" AND domain = ")
        .bind(key.domain.as_str())
        .push(" AND name = ")
        .bind(key.name.as_str());
}

impl Store {
    /// Leases up to `limit` executions that need a propeller and nobody else holds: new ones
    /// (a run record is created for them), those whose lease expired, and those this `owner`
    /// held before a restart. Returns what each new owner resumes from.
    pub async fn claim_runs(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let mut adopt = Sql::new(
            "INSERT INTO propeller_runs (project, domain, name, owner, lease_until, state, \
             generation, next_event, done, created_at, updated_at) \
             SELECT e.project, e.domain, e.name, '', 0, ",
        );
        adopt
            .bind(Vec::<u8>::new())
            // Oldest executions first: created_at is the execution's.
            .push(", 0, 0, 0, e.created_at, ")
            .bind(now)
            .push(" FROM executions e WHERE e.phase IN (");
        for (i, phase) in ACTIVE_PHASES.iter().enumerate() {
            if i > 0 {
                adopt.push(", ");
            }
            adopt.bind(*phase);
        }
        adopt.push(
            ") AND NOT EXISTS (SELECT 1 FROM propeller_runs r WHERE r.project = e.project \
             AND r.domain = e.domain AND r.name = e.name) ON CONFLICT DO NOTHING",
        );
        adopt.query().execute(&self.pool).await?;

        let mut candidates =
            Sql::new("SELECT project, domain, name FROM propeller_runs WHERE done = 0 AND (");
        candidates
            .push("lease_until < ")
            .bind(now)
            .push(" OR owner = ")
            .bind(owner)
            .push(") ORDER BY created_at, name LIMIT ")
            .bind(limit);
        let rows = candidates.query().fetch_all(&self.pool).await?;
        let mut claimed = Vec::new();
        for row in rows {
            let key = ExecutionKey {
                project: row.try_get("project")?,
                domain: row.try_get("domain")?,
                name: row.try_get("name")?,
            };
            // Conditional: of two instances racing for an expired lease, one update matches.
            let mut take = Sql::new("UPDATE propeller_runs SET owner = ");
            take.bind(owner)
                .push(", lease_until = ")
                .bind(lease_until)
                .push(", updated_at = ")
                .bind(now);
            key_condition(&mut take, &key);
            take.push(" AND done = 0 AND (lease_until < ")
                .bind(now)
                .push(" OR owner = ")
                .bind(owner)
                .push(")");
            if take.query().execute(&self.pool).await?.rows_affected() != 1 {
                continue;
            }
            let mut read = Sql::new("SELECT state, generation, next_event FROM propeller_runs");
            key_condition(&mut read, &key);
            let row = read.query().fetch_one(&self.pool).await?;
            let mut state: Vec<u8> = row.try_get("state")?;
            if let Some(spill) = &self.spill {
                state = spill.get_state(&key, state).await?;
            }
            claimed.push(RunRecord {
                key,
                state,
                generation: row.try_get("generation")?,
                next_event: row.try_get("next_event")?,
            });
        }
        Ok(claimed)
    }

    /// Extends the lease; false when `owner` no longer holds it.
    pub async fn renew_run(
        &self,
        key: &ExecutionKey,
        owner: &str,
        lease_until: i64,
    ) -> Result<bool, StoreError> {
        let mut sql = Sql::new("UPDATE propeller_runs SET lease_until = ");
        sql.bind(lease_until);
        key_condition(&mut sql, key);
        sql.push(" AND owner = ").bind(owner);
        Ok(sql.query().execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Saves the engine state and appends `events` (numbered from `first_seq`) in one
    /// transaction, renewing the lease. False (and nothing written) when `owner` lost it.
    #[allow(clippy::too_many_arguments)]
    pub async fn save_run(
        &self,
        key: &ExecutionKey,
        owner: &str,
        state: Vec<u8>,
        first_seq: i64,
        events: &[(i64, Vec<u8>)],
        lease_until: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        // Large values go to storage first: the row then refers to objects that exist.
        let (state, events, spilled_events) = match &self.spill {
            None => (state, events.to_vec(), Vec::new()),
            Some(spill) => {
                let state = spill.put_state(key, state).await?;
                let mut rows = Vec::with_capacity(events.len());
                let mut objects = Vec::new();
                for (kind, event) in events {
                    match spill.put_event(key, event).await? {
                        Some(row) => {
                            objects.extend(Spill::event_object(&row));
                            rows.push((*kind, row));
                        }
                        None => rows.push((*kind, event.clone())),
                    }
                }
                (state, rows, objects)
            }
        };
        let new_objects = match &self.spill {
            Some(_) => Spill::state_objects(key, &state),
            None => HashSet::new(),
        };
        // Read before the transaction: only the owner writes the row (every write is fenced on
        // it), and on SQLite a transaction that reads before it writes fails at once with
        // SQLITE_BUSY_SNAPSHOT when another connection committed in between.
        let old_objects = self.spilled_objects(key, owner).await?;
        let mut tx = self.pool.begin().await?;
        let mut sql = Sql::new("UPDATE propeller_runs SET state = ");
        sql.bind(state)
            .push(", generation = generation + 1, next_event = ")
            .bind(first_seq + events.len() as i64)
            .push(", lease_until = ")
            .bind(lease_until)
            .push(", updated_at = ")
            .bind(now);
        key_condition(&mut sql, key);
        sql.push(" AND owner = ").bind(owner);
        if sql.query().execute(&mut *tx).await?.rows_affected() != 1 {
            tx.rollback().await?;
            if let Some(spill) = &self.spill {
                spill.forget(spilled_events).await;
            }
            return Ok(false);
        }
        for (i, (kind, event)) in events.iter().enumerate() {
            let mut insert = Sql::new(
                "INSERT INTO propeller_outbox (project, domain, name, seq, kind, event) VALUES (",
            );
            insert
                .bind(key.project.as_str())
                .push(", ")
                .bind(key.domain.as_str())
                .push(", ")
                .bind(key.name.as_str())
                .push(", ")
                .bind(first_seq + i as i64)
                .push(", ")
                .bind(*kind)
                .push(", ")
                .bind(event.clone())
                .push(")");
            insert.query().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        if let Some(spill) = &self.spill {
            // Values the previous state held and this one no longer does.
            spill
                .forget(old_objects.difference(&new_objects).cloned())
                .await;
        }
        Ok(true)
    }

    /// The oldest undelivered events of an execution, in order.
    pub async fn outbox(
        &self,
        key: &ExecutionKey,
        limit: i64,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let mut sql = Sql::new("SELECT seq, kind, event FROM propeller_outbox");
        key_condition(&mut sql, key);
        sql.push(" ORDER BY seq LIMIT ").bind(limit);
        let rows = sql.query().fetch_all(&self.pool).await?;
        let mut events = Vec::with_capacity(rows.len());
        for r in rows {
            let mut event: Vec<u8> = r.try_get("event")?;
            if let Some(spill) = &self.spill {
                event = spill.get_event(event).await?;
            }
            events.push(OutboxEvent {
                seq: r.try_get("seq")?,
                kind: r.try_get("kind")?,
                event,
            });
        }
        Ok(events)
    }

    /// Forgets delivered events (every one up to `last_seq`).
    pub async fn ack_outbox(&self, key: &ExecutionKey, last_seq: i64) -> Result<(), StoreError> {
        let mut spilled = Vec::new();
        if self.spill.is_some() {
            // Only short rows can be references; inline events stay unread.
            let mut read = Sql::new("SELECT event FROM propeller_outbox");
            key_condition(&mut read, key);
            read.push(" AND seq <= ")
                .bind(last_seq)
                .push(" AND LENGTH(event) < 1024");
            for row in read.query().fetch_all(&self.pool).await? {
                spilled.extend(Spill::event_object(&row.try_get::<Vec<u8>, _>("event")?));
            }
        }
        let mut sql = Sql::new("DELETE FROM propeller_outbox");
        key_condition(&mut sql, key);
        sql.push(" AND seq <= ").bind(last_seq);
        sql.query().execute(&self.pool).await?;
        if let Some(spill) = &self.spill {
            spill.forget(spilled).await;
        }
        Ok(())
    }

    /// The storage objects the saved state of `owner`'s run refers to (none without a spill).
    async fn spilled_objects(
        &self,
        key: &ExecutionKey,
        owner: &str,
    ) -> Result<HashSet<String>, StoreError> {
        if self.spill.is_none() {
            return Ok(HashSet::new());
        }
        let mut read = Sql::new("SELECT state FROM propeller_runs");
        key_condition(&mut read, key);
        read.push(" AND owner = ").bind(owner);
        Ok(match read.query().fetch_optional(&self.pool).await? {
            Some(row) => Spill::state_objects(key, &row.try_get::<Vec<u8>, _>("state")?),
            None => HashSet::new(),
        })
    }

    /// Marks a run finished (terminal, events delivered) and drops its state: nothing will
    /// resume it, and a large workflow's state should not outlive it.
    pub async fn finish_run(
        &self,
        key: &ExecutionKey,
        owner: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let objects = self.spilled_objects(key, owner).await?;
        let mut sql = Sql::new("UPDATE propeller_runs SET done = 1, owner = '', state = ");
        sql.bind(Vec::<u8>::new())
            .push(", lease_until = 0, updated_at = ")
            .bind(now);
        key_condition(&mut sql, key);
        sql.push(" AND owner = ").bind(owner);
        let finished = sql.query().execute(&self.pool).await?.rows_affected() == 1;
        if finished {
            if let Some(spill) = &self.spill {
                spill.forget(objects).await;
            }
        }
        Ok(finished)
    }

    /// Gives up every lease of `owner` (a clean shutdown), so another instance, or this one
    /// restarted, resumes at once.
    pub async fn release_runs(&self, owner: &str) -> Result<u64, StoreError> {
        let mut sql =
            Sql::new("UPDATE propeller_runs SET owner = '', lease_until = 0 WHERE owner = ");
        sql.bind(owner).push(" AND done = 0");
        Ok(sql.query().execute(&self.pool).await?.rows_affected())
    }

    /// How many runs are open (leased or waiting), for metrics and tests.
    pub async fn count_open_runs(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM propeller_runs WHERE done = 0")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    pub async fn get_cached_outputs(&self, cache_key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut sql = Sql::new("SELECT outputs FROM task_cache WHERE cache_key = ");
        sql.bind(cache_key);
        let row = sql.query().fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.try_get("outputs")).transpose()?)
    }

    /// Stores outputs under `cache_key` unless some are there already (first writer wins, as
    /// datacatalog's artifacts are immutable).
    pub async fn put_cached_outputs(
        &self,
        cache_key: &str,
        outputs: Vec<u8>,
        source: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut sql =
            Sql::new("INSERT INTO task_cache (cache_key, outputs, source, created_at) VALUES (");
        sql.bind(cache_key)
            .push(", ")
            .bind(outputs)
            .push(", ")
            .bind(source)
            .push(", ")
            .bind(now)
            .push(") ON CONFLICT DO NOTHING");
        sql.query().execute(&self.pool).await?;
        Ok(())
    }
}
