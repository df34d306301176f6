//! Cache reservations (migration 0008), datacatalog's GetOrExtendReservation and
//! ReleaseReservation: with `cache_serialize`, one attempt per cache key runs while the others
//! wait for its outputs.
//!
//! Taking one is a single conditional upsert, so of two propeller instances racing for a key
//! exactly one wins; an expired reservation is taken over, so a crashed owner never blocks the
//! others for longer than one expiry.

use sqlx::Row;

use super::query::Sql;
use super::{Store, StoreError};

/// Who holds a cache key's reservation, and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub owner: String,
    /// Microseconds since the epoch.
    pub expires_at: i64,
}

impl Store {
    /// Takes the reservation of `cache_key` for `owner` until `expires_at` when it is free,
    /// expired (as of `now`) or `owner`'s already (then extended); returns who holds it
    /// afterwards, which is `owner` exactly when it got it.
    pub async fn get_or_extend_reservation(
        &self,
        cache_key: &str,
        owner: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Reservation, StoreError> {
        // Released by its holder between the two statements: ask again.
        loop {
            let mut take = Sql::new(
                "INSERT INTO cache_reservations (cache_key, owner, expires_at, created_at, \
                 updated_at) VALUES (",
            );
            take.bind(cache_key)
                .push(", ")
                .bind(owner)
                .push(", ")
                .bind(expires_at)
                .push(", ")
                .bind(now)
                .push(", ")
                .bind(now)
                .push(
                    ") ON CONFLICT (cache_key) DO UPDATE SET owner = excluded.owner, \
                     expires_at = excluded.expires_at, updated_at = excluded.updated_at \
                     WHERE cache_reservations.owner = excluded.owner \
                     OR cache_reservations.expires_at < ",
                )
                .bind(now);
            take.query().execute(&self.pool).await?;
            let mut read =
                Sql::new("SELECT owner, expires_at FROM cache_reservations WHERE cache_key = ");
            read.bind(cache_key);
            if let Some(row) = read.query().fetch_optional(&self.pool).await? {
                return Ok(Reservation {
                    owner: row.try_get("owner")?,
                    expires_at: row.try_get("expires_at")?,
                });
            }
        }
    }

    /// Gives the reservation up if `owner` holds it; true when it did.
    pub async fn release_reservation(
        &self,
        cache_key: &str,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let mut sql = Sql::new("DELETE FROM cache_reservations WHERE cache_key = ");
        sql.bind(cache_key).push(" AND owner = ").bind(owner);
        Ok(sql.query().execute(&self.pool).await?.rows_affected() == 1)
    }
}
