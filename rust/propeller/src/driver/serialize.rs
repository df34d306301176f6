//! Cache serialization (flytekit's `cache_serialize=True`), as flytepropeller does it with
//! datacatalog's reservations: of the attempts of one cacheable task with the same cache key
//! running at once, the one holding the key's reservation runs; the others wait, looking at the
//! cache and the reservation every [`WAIT_CHECK`], and end as cache hits once the holder's
//! outputs are there, or take the reservation when the holder gave up (it failed) or died (its
//! reservation expired). The holder renews it every [`HEARTBEAT`] and releases it at the end.
//!
//! A waiting attempt is one the engine believes running: it holds a slot, and the engine has
//! nothing to do for it, so the driver sleeps until the next check rather than polling.

use std::time::{Duration, Instant};

use alula_engine::{AttemptId, TaskAttempt, TaskOutcome};
use alula_idl::flyteidl::core::CatalogCacheStatus;

use super::Driver;
use crate::DriveError;

/// How often a waiting attempt looks at the cache and the reservation again.
const WAIT_CHECK: Duration = Duration::from_secs(1);
/// How often the holder renews its reservations.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// How long a reservation lasts unrenewed: a few missed heartbeats (datacatalog's grace
/// period multiplier is 3), after which a waiter takes it over.
const EXPIRY: Duration = Duration::from_secs(30);

/// An attempt waiting for another owner's reservation of `key`.
pub(super) struct Waiting {
    attempt: TaskAttempt,
    key: String,
    next_check: Instant,
}

/// The reservations this driver holds and the attempts waiting for others'.
#[derive(Default)]
pub(super) struct Reservations {
    /// Attempt → the cache key it holds the reservation of, and as which owner.
    held: std::collections::HashMap<AttemptId, (String, String)>,
    waiting: Vec<Waiting>,
    last_renew: Option<Instant>,
}

impl Reservations {
    /// When something is due: a waiting attempt's next look, or renewing the held ones.
    pub(super) fn next_due(&self) -> Option<Instant> {
        let wait = self.waiting.iter().map(|w| w.next_check).min();
        let renew = self
            .last_renew
            .filter(|_| !self.held.is_empty())
            .map(|t| t + HEARTBEAT);
        match (wait, renew) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Forgets a waiting attempt (aborted); true when it was one.
    pub(super) fn forget_waiting(&mut self, id: AttemptId) -> bool {
        let before = self.waiting.len();
        self.waiting.retain(|w| w.attempt.id != id);
        self.waiting.len() != before
    }
}

fn serializable(ta: &TaskAttempt) -> bool {
    ta.task
        .metadata
        .as_ref()
        .is_some_and(|m| m.discoverable && m.cache_serializable)
}

fn micros_after(d: Duration) -> i64 {
    alula_plane::now_micros() + d.as_micros() as i64
}

impl Driver {
    /// Asks for (or extends) `owner`'s reservation of `key`; true when `owner` holds it.
    async fn ask_reservation(&self, key: &str, owner: &str) -> Result<bool, DriveError> {
        let holder = self
            .ctx
            .plane
            .reserve(key, owner, alula_plane::now_micros(), micros_after(EXPIRY))
            .await?;
        if holder != owner {
            tracing::debug!(key, holder = %holder, "cache reservation held by another");
        }
        Ok(holder == owner)
    }

    /// Who owns a reservation: the node execution (its element), the same across its retries
    /// and across a restart of this driver, so a resumed attempt finds its reservation its own.
    fn reservation_owner(&self, ta: &TaskAttempt) -> String {
        let mut owner = format!(
            "{}/{}/{}/{}",
            self.id.project, self.id.domain, self.id.name, ta.node_execution_id
        );
        if let Some(i) = ta.array_index {
            owner.push_str(&format!("/{i}"));
        }
        owner
    }

    /// Before an attempt starts: true when it may start now (not serialized, or the
    /// reservation is its own). Otherwise it waits for the holder, or, when the holder's
    /// outputs are there already, it ends as a cache hit here.
    pub(super) async fn may_start(&mut self, ta: &TaskAttempt) -> Result<bool, DriveError> {
        if !serializable(ta) {
            return Ok(true);
        }
        let Some(key) = self.cache_key(ta) else {
            return Ok(true);
        };
        if self.reservations.held.contains_key(&ta.id) {
            return Ok(true);
        }
        if self.take_or_hit(ta, &key).await? {
            return Ok(false);
        }
        if self.reservations.held.contains_key(&ta.id) {
            return Ok(true);
        }
        tracing::debug!(node = %ta.node_execution_id, key, "waiting for the cache reservation");
        self.reservations.waiting.push(Waiting {
            attempt: ta.clone(),
            key,
            next_check: Instant::now() + WAIT_CHECK,
        });
        Ok(false)
    }

    /// A cache hit ends the attempt (true); otherwise the reservation is asked for, and held
    /// when granted.
    async fn take_or_hit(&mut self, ta: &TaskAttempt, key: &str) -> Result<bool, DriveError> {
        if let Some(outputs) = self.cache_lookup(ta).await? {
            self.finished(
                ta.id,
                TaskOutcome::Succeeded {
                    outputs,
                    cache_status: CatalogCacheStatus::CacheHit,
                },
            )?;
            return Ok(true);
        }
        let owner = self.reservation_owner(ta);
        if self.ask_reservation(key, &owner).await? {
            self.reservations
                .held
                .insert(ta.id, (key.to_string(), owner));
            self.reservations
                .last_renew
                .get_or_insert_with(Instant::now);
        }
        Ok(false)
    }

    /// After a resume, for an attempt that was running: its reservation is held again (it is
    /// its node execution's, whichever instance asked), so it is renewed and released as before.
    pub(super) async fn resume_reservation(&mut self, ta: &TaskAttempt) -> Result<(), DriveError> {
        if !serializable(ta) {
            return Ok(());
        }
        let Some(key) = self.cache_key(ta) else {
            return Ok(());
        };
        let owner = self.reservation_owner(ta);
        if self.ask_reservation(&key, &owner).await? {
            self.reservations.held.insert(ta.id, (key, owner));
            self.reservations
                .last_renew
                .get_or_insert_with(Instant::now);
        }
        Ok(())
    }

    /// Once a round: looks again for the waiting attempts that are due (a hit ends them, a
    /// granted reservation starts them) and renews the held reservations when due.
    pub(super) async fn tend_reservations(&mut self) -> Result<(), DriveError> {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reservations.waiting)
            .into_iter()
            .partition(|w| w.next_check <= now);
        self.reservations.waiting = later;
        for mut w in due {
            if self.take_or_hit(&w.attempt, &w.key).await? {
                continue;
            }
            if self.reservations.held.contains_key(&w.attempt.id) {
                tracing::debug!(node = %w.attempt.node_execution_id, "took the cache reservation");
                self.to_start.push(w.attempt);
            } else {
                w.next_check = Instant::now() + WAIT_CHECK;
                self.reservations.waiting.push(w);
            }
        }
        let renew_due = self
            .reservations
            .last_renew
            .is_some_and(|t| t.elapsed() >= HEARTBEAT);
        if renew_due && !self.reservations.held.is_empty() {
            let held: Vec<(String, String)> = self.reservations.held.values().cloned().collect();
            for (key, owner) in held {
                if !self.ask_reservation(&key, &owner).await? {
                    // Paused past its expiry: another attempt runs the same task now. Ours
                    // goes on (its outputs are as good); the cache keeps the first written.
                    tracing::warn!(key, "cache reservation taken over");
                }
            }
            self.reservations.last_renew = Some(Instant::now());
        }
        Ok(())
    }

    /// After an attempt ended or was aborted: gives its reservation up, so a waiter goes on.
    pub(super) async fn release_reservation(&mut self, id: AttemptId) {
        let Some((key, owner)) = self.reservations.held.remove(&id) else {
            return;
        };
        if let Err(e) = self.ctx.plane.release_reservation(&key, &owner).await {
            // It expires on its own.
            tracing::warn!(key, error = %e, "cannot release a cache reservation");
        }
        if self.reservations.held.is_empty() {
            self.reservations.last_renew = None;
        }
    }

    /// An abort of the execution: nothing waits any more, and nothing is held.
    pub(super) async fn drop_reservations(&mut self) {
        self.reservations.waiting.clear();
        let held: Vec<AttemptId> = self.reservations.held.keys().copied().collect();
        for id in held {
            self.release_reservation(id).await;
        }
    }
}
