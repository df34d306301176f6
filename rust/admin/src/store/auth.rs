//! The built-in authorization server's tables: its machine clients (a hash of each secret, never
//! the secret) and its ES256 signing keys. Times are unix microseconds, as everywhere in the
//! store.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::query::Sql;
use super::{now_micros, Store, StoreError};

/// A machine client of the built-in authorization server.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientRow {
    pub client_id: String,
    /// What `alula_auth::secret::hash_secret` made of the secret.
    pub secret_hash: String,
    pub description: String,
    pub created_at: i64,
    /// 0 while the client may get tokens; when it was revoked otherwise.
    pub revoked_at: i64,
}

impl ClientRow {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at != 0
    }
}

// By hand: the hash stays out of logs too (it is what a brute force would start from).
impl std::fmt::Debug for ClientRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRow")
            .field("client_id", &self.client_id)
            .field("description", &self.description)
            .field("created_at", &self.created_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// One signing key: its PKCS#8 document (the private key) and its life.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub kid: String,
    pub pkcs8: Vec<u8>,
    pub created_at: i64,
    /// 0 while the key may sign; when it stopped otherwise (it still verifies for a while).
    pub retired_at: i64,
}

impl KeyRow {
    pub fn is_retired(&self) -> bool {
        self.retired_at != 0
    }
}

// By hand: the private key never reaches a log line.
impl std::fmt::Debug for KeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRow")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

const CLIENT_COLUMNS: &str = "client_id, secret_hash, description, created_at, revoked_at";
const KEY_COLUMNS: &str = "kid, pkcs8, created_at, retired_at";

fn decode_client(row: &AnyRow) -> Result<ClientRow, sqlx::Error> {
    Ok(ClientRow {
        client_id: row.try_get("client_id")?,
        secret_hash: row.try_get("secret_hash")?,
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn decode_key(row: &AnyRow) -> Result<KeyRow, sqlx::Error> {
    Ok(KeyRow {
        kid: row.try_get("kid")?,
        pkcs8: row.try_get("pkcs8")?,
        created_at: row.try_get("created_at")?,
        retired_at: row.try_get("retired_at")?,
    })
}

impl Store {
    /// Adds a client; false when one of that id exists, revoked or not (a revoked id is never
    /// given again: tokens issued to the old client must stay refused).
    pub async fn create_client(
        &self,
        client_id: &str,
        secret_hash: &str,
        description: &str,
    ) -> Result<bool, StoreError> {
        let mut sql = Sql::new(&format!(
            "INSERT INTO auth_clients ({CLIENT_COLUMNS}) VALUES ("
        ));
        sql.bind(client_id)
            .push(", ")
            .bind(secret_hash)
            .push(", ")
            .bind(description)
            .push(", ")
            .bind(now_micros())
            .push(", 0) ON CONFLICT DO NOTHING");
        Ok(sql.query().execute(&self.pool).await?.rows_affected() == 1)
    }

    pub async fn auth_client(&self, client_id: &str) -> Result<Option<ClientRow>, StoreError> {
        let mut sql = Sql::new(&format!(
            "SELECT {CLIENT_COLUMNS} FROM auth_clients WHERE client_id = "
        ));
        sql.bind(client_id);
        let row = sql.query().fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(decode_client).transpose()?)
    }

    /// Every client, revoked ones too, by id.
    pub async fn list_auth_clients(&self) -> Result<Vec<ClientRow>, StoreError> {
        let sql = Sql::new(&format!(
            "SELECT {CLIENT_COLUMNS} FROM auth_clients ORDER BY client_id"
        ));
        let rows = sql.query().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(decode_client).collect::<Result<_, _>>()?)
    }

    /// Revokes a client: it gets no more tokens and the ones it has are refused. False when
    /// there is no such client or it was revoked already.
    pub async fn revoke_auth_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let mut sql = Sql::new("UPDATE auth_clients SET revoked_at = ");
        sql.bind(now_micros())
            .push(" WHERE client_id = ")
            .bind(client_id)
            .push(" AND revoked_at = 0");
        Ok(sql.query().execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Gives a client that is not revoked a new secret (the old one stops working at once);
    /// false when there is no such client.
    pub async fn replace_client_secret(
        &self,
        client_id: &str,
        secret_hash: &str,
    ) -> Result<bool, StoreError> {
        let mut sql = Sql::new("UPDATE auth_clients SET secret_hash = ");
        sql.bind(secret_hash)
            .push(" WHERE client_id = ")
            .bind(client_id)
            .push(" AND revoked_at = 0");
        Ok(sql.query().execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Every stored signing key, newest first.
    pub async fn signing_keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        let sql = Sql::new(&format!(
            "SELECT {KEY_COLUMNS} FROM auth_signing_keys ORDER BY created_at DESC, kid DESC"
        ));
        let rows = sql.query().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(decode_key).collect::<Result<_, _>>()?)
    }

    /// One signing key by id.
    pub async fn signing_key(&self, kid: &str) -> Result<Option<KeyRow>, StoreError> {
        let mut sql = Sql::new(&format!(
            "SELECT {KEY_COLUMNS} FROM auth_signing_keys WHERE kid = "
        ));
        sql.bind(kid);
        let row = sql.query().fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(decode_key).transpose()?)
    }

    pub async fn insert_signing_key(
        &self,
        kid: &str,
        pkcs8: &[u8],
        created_at: i64,
    ) -> Result<(), StoreError> {
        let mut sql = Sql::new(&format!(
            "INSERT INTO auth_signing_keys ({KEY_COLUMNS}) VALUES ("
        ));
        sql.bind(kid)
            .push(", ")
            .bind(pkcs8.to_vec())
            .push(", ")
            .bind(created_at)
            .push(", 0)");
        sql.query().execute(&self.pool).await?;
        Ok(())
    }

    /// Marks every key but `kid` that still signs as retired at `at`; returns how many.
    pub async fn retire_signing_keys_except(&self, kid: &str, at: i64) -> Result<u64, StoreError> {
        let mut sql = Sql::new("UPDATE auth_signing_keys SET retired_at = ");
        sql.bind(at)
            .push(" WHERE retired_at = 0 AND kid <> ")
            .bind(kid);
        Ok(sql.query().execute(&self.pool).await?.rows_affected())
    }

    /// Deletes the keys retired before `before`: no token they signed is valid any more.
    pub async fn delete_signing_keys_retired_before(&self, before: i64) -> Result<u64, StoreError> {
        let mut sql =
            Sql::new("DELETE FROM auth_signing_keys WHERE retired_at <> 0 AND retired_at < ");
        sql.bind(before);
        Ok(sql.query().execute(&self.pool).await?.rows_affected())
    }
}
