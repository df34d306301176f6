//! The built-in authorization server: its signing keys live in the database (so every replica,
//! and the CLI's `alula auth rotate-key`, share them), it issues client-credentials tokens, and
//! it checks its own tokens (signature, then that their client was not revoked since).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use alula_auth::keys::{self, JwkSet, SigningKey, TokenClaims};
use alula_auth::secret::{hash_secret, verify_secret, Secret};
use alula_auth::verify::{KeySource, TokenError, Verifier, VerifierConfig, MAX_LEEWAY};
use alula_auth::Principal;
use tokio::time::Instant;

use super::{AuthError, AuthSettings};
use crate::store::{now_micros, KeyRow, Store};

/// The longest lifetime a deployment may give built-in tokens. Retired keys are kept this long
/// (plus the largest clock skew) so a rotation, wherever it runs, never drops a key a valid
/// token still needs.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The scope every built-in token carries: a client's permissions come from its role bindings.
pub const TOKEN_SCOPE: &str = "all";

/// How long a client's revocation may go unnoticed by a replica that checked it just before.
const CLIENT_STATUS_TTL: Duration = Duration::from_secs(5);

/// However many tokens name keys this replica has not loaded, the keys are re-read for them at
/// most this often: anyone can send tokens with made-up `kid`s, and each must not cost a
/// database read. A key rotated in by another replica or the CLI still verifies, after at most
/// this long a wait.
const UNKNOWN_KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// A token the token endpoint hands out.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub access_token: Secret,
    /// Seconds.
    pub expires_in: u64,
    pub scope: String,
}

/// Why no token was issued.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenRefusal {
    /// One answer for an unknown client, a revoked one and a wrong secret: a caller learns
    /// nothing about which ids exist.
    #[error("the client is unknown or revoked, or the secret is wrong")]
    InvalidClient,
    #[error("this server issues no tokens: its built-in authorization server is off")]
    NotIssuing,
    #[error("a token cannot be issued now: {0}")]
    Server(String),
}

/// The database's keys that still verify tokens: not retired, or retired less than a token's
/// lifetime (plus skew) ago.
struct StoredKeys {
    store: Store,
    live_for: Duration,
    /// How many times the keys were read for verifying (what the reload limit bounds).
    reads: AtomicU64,
}

impl StoredKeys {
    fn is_live(&self, row: &KeyRow, now: i64) -> bool {
        !row.is_retired() || row.retired_at > now - micros(self.live_for)
    }

    async fn live_jwks(&self) -> Result<JwkSet, AuthError> {
        let now = now_micros();
        let mut set = JwkSet::default();
        for row in self.store.signing_keys().await? {
            if self.is_live(&row, now) {
                set.keys.push(parse_key(&row)?.public_jwk());
            }
        }
        Ok(set)
    }
}

#[tonic::async_trait]
impl KeySource for StoredKeys {
    async fn load(&self) -> Result<JwkSet, String> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.live_jwks().await.map_err(|e| e.to_string())
    }
}

pub(super) struct Builtin {
    issuer: String,
    audience: String,
    token_lifetime: Duration,
    keys: Arc<StoredKeys>,
    verifier: Verifier,
    /// Client id -> (checked at, revoked or gone).
    client_status: Mutex<HashMap<String, (Instant, bool)>>,
    /// When the last reload for a token of an unknown key started; held while one runs.
    unknown_key_reload: tokio::sync::Mutex<Option<Instant>>,
}

impl Builtin {
    pub(super) async fn start(settings: &AuthSettings, store: Store) -> Result<Self, AuthError> {
        let issuer = settings.issuer.trim_end_matches('/').to_string();
        if issuer.is_empty() {
            return Err(AuthError::Settings(
                "the built-in authorization server needs an issuer (the server's public HTTP URL)"
                    .into(),
            ));
        }
        if settings.token_lifetime > MAX_TOKEN_LIFETIME || settings.token_lifetime.is_zero() {
            return Err(AuthError::Settings(format!(
                "token_lifetime_seconds must be between 1 and {}",
                MAX_TOKEN_LIFETIME.as_secs()
            )));
        }
        signing_key(&store).await?;
        let verifier_config = VerifierConfig {
            issuer: issuer.clone(),
            audiences: vec![settings.audience.clone()],
            leeway: settings.leeway,
            groups_claim: settings.groups_claim.clone(),
        };
        let keys = Arc::new(StoredKeys {
            store,
            live_for: settings.token_lifetime + settings.leeway.min(MAX_LEEWAY),
            reads: AtomicU64::new(0),
        });
        // The built-in server knows its tokens' lifetime: a longer-lived token under its key
        // was not issued as configured (a leaked key, a bug).
        let verifier =
            Verifier::new(verifier_config, keys.clone()).with_max_lifetime(settings.token_lifetime);
        Ok(Self {
            issuer,
            audience: settings.audience.clone(),
            token_lifetime: settings.token_lifetime,
            keys,
            verifier,
            client_status: Mutex::default(),
            unknown_key_reload: tokio::sync::Mutex::new(None),
        })
    }

    pub(super) fn issuer(&self) -> &str {
        &self.issuer
    }

    fn store(&self) -> &Store {
        &self.keys.store
    }

    pub(super) async fn jwks(&self) -> Result<JwkSet, AuthError> {
        self.keys.live_jwks().await
    }

    pub(super) async fn issue(
        &self,
        client_id: &str,
        secret: &str,
    ) -> Result<IssuedToken, TokenRefusal> {
        let server = |e: AuthError| TokenRefusal::Server(e.to_string());
        let client = self
            .store()
            .auth_client(client_id)
            .await
            .map_err(|e| server(e.into()))?;
        let valid = match &client {
            Some(client) => verify_secret(secret, &client.secret_hash) && !client.is_revoked(),
            None => {
                // The same work as for a known client, so timing does not tell ids apart.
                static UNUSED: OnceLock<String> = OnceLock::new();
                let _ = verify_secret(secret, UNUSED.get_or_init(|| hash_secret("unused")));
                false
            }
        };
        if !valid {
            return Err(TokenRefusal::InvalidClient);
        }
        let key = signing_key(self.store()).await.map_err(server)?;
        let claims = TokenClaims::for_client(
            &self.issuer,
            &self.audience,
            client_id,
            TOKEN_SCOPE,
            self.token_lifetime,
        );
        let token = keys::sign(&key, &claims).map_err(|e| server(e.into()))?;
        Ok(IssuedToken {
            access_token: Secret::new(token),
            expires_in: self.token_lifetime.as_secs(),
            scope: TOKEN_SCOPE.to_string(),
        })
    }

    /// The principal a token of this server proves; the refusal's text otherwise.
    pub(super) async fn verify(&self, token: &str) -> Result<Principal, String> {
        let principal = match self.verifier.verify(token).await {
            // Maybe a key the database has but this verifier has not loaded: a rotation by
            // another replica or the CLI, within the verifier's refresh interval.
            Err(TokenError::UnknownKey(_)) => {
                self.reload_for_unknown_key().await?;
                self.verifier.verify(token).await
            }
            other => other,
        }
        .map_err(|e| e.to_string())?;
        if self.client_is_revoked(&principal.subject).await? {
            return Err(format!(
                "the client {:?} was revoked or deleted",
                principal.subject
            ));
        }
        Ok(principal)
    }

    /// Re-reads the keys for a token naming one this verifier has not loaded, unless a reload
    /// that started after the token came already did. Reloads are at least
    /// [`UNKNOWN_KEY_RELOAD_INTERVAL`] apart: tokens arriving sooner wait for the next one and
    /// share it, so made-up key ids cost one read a second whatever their number.
    async fn reload_for_unknown_key(&self) -> Result<(), String> {
        let arrived = Instant::now();
        let mut last = self.unknown_key_reload.lock().await;
        if let Some(started) = *last {
            if started >= arrived {
                return Ok(());
            }
            tokio::time::sleep_until(started + UNKNOWN_KEY_RELOAD_INTERVAL).await;
        }
        *last = Some(Instant::now());
        self.verifier.refresh().await.map(drop).map_err(|e| {
            tracing::warn!(error = %e, "cannot read the signing keys");
            "the token's key cannot be checked now".to_string()
        })
    }

    /// Whether `client_id` may no longer use its tokens (looked up at most every few seconds).
    async fn client_is_revoked(&self, client_id: &str) -> Result<bool, String> {
        let cached = self
            .client_status
            .lock()
            .ok()
            .and_then(|cache| cache.get(client_id).copied())
            .filter(|(at, _)| at.elapsed() < CLIENT_STATUS_TTL);
        if let Some((_, revoked)) = cached {
            return Ok(revoked);
        }
        let client = self.store().auth_client(client_id).await.map_err(|e| {
            tracing::warn!(error = %e, "cannot read the client of a token");
            "the token's client cannot be checked now".to_string()
        })?;
        let revoked = client.is_none_or(|c| c.is_revoked());
        if let Ok(mut cache) = self.client_status.lock() {
            cache.insert(client_id.to_string(), (Instant::now(), revoked));
        }
        Ok(revoked)
    }
}

/// The key new tokens are signed with: the newest one not retired, created (and stored) when
/// there is none yet.
async fn signing_key(store: &Store) -> Result<SigningKey, AuthError> {
    if let Some(row) = store.signing_keys().await?.iter().find(|k| !k.is_retired()) {
        return parse_key(row);
    }
    let key = SigningKey::generate()?;
    store
        .insert_signing_key(
            &key.kid,
            key.pkcs8(),
            key.created_at.saturating_mul(1_000_000),
        )
        .await?;
    Ok(key)
}

/// A new signing key from now on; the others are retired now (they verify the tokens they
/// signed until those expire), and keys retired longer ago than any token lives are deleted.
pub async fn rotate_signing_key(store: &Store) -> Result<String, AuthError> {
    let key = SigningKey::generate()?;
    let now = now_micros();
    store.insert_signing_key(&key.kid, key.pkcs8(), now).await?;
    store.retire_signing_keys_except(&key.kid, now).await?;
    store
        .delete_signing_keys_retired_before(now - micros(MAX_TOKEN_LIFETIME + MAX_LEEWAY))
        .await?;
    Ok(key.kid)
}

fn parse_key(row: &KeyRow) -> Result<SigningKey, AuthError> {
    Ok(SigningKey::from_pkcs8(
        &row.kid,
        row.created_at / 1_000_000,
        &row.pkcs8,
    )?)
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    use super::*;
    use crate::auth::AuthMode;

    async fn builtin(store: &Store) -> Builtin {
        let settings = AuthSettings {
            mode: AuthMode::Builtin,
            issuer: "http://alula.test:8088".into(),
            ..AuthSettings::default()
        };
        Builtin::start(&settings, store.clone()).await.unwrap()
    }

    /// A well-formed ES256 token naming a key nobody has.
    fn token_of_unknown_key() -> String {
        let kid = format!("{:032x}", rand::random::<u128>());
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": kid});
        let part = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
        let signature = URL_SAFE_NO_PAD.encode([7u8; 64]);
        format!(
            "{}.{}.{signature}",
            part(&header),
            part(&serde_json::json!({}))
        )
    }

    async fn token(builtin: &Builtin, store: &Store) -> String {
        store
            .create_client("ci", &hash_secret("pw"), "")
            .await
            .unwrap();
        let issued = builtin.issue("ci", "pw").await.unwrap();
        issued.access_token.expose().to_string()
    }

    #[tokio::test]
    async fn made_up_key_ids_cost_a_read_a_second_not_one_each() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let builtin = builtin(&store).await;
        let valid = token(&builtin, &store).await;
        builtin.verify(&valid).await.unwrap();
        let reads_before = builtin.keys.reads.load(Ordering::Relaxed);

        let started = Instant::now();
        let tokens: Vec<String> = (0..100).map(|_| token_of_unknown_key()).collect();
        let verdicts =
            futures::future::join_all(tokens.iter().map(|token| builtin.verify(token))).await;
        for verdict in verdicts {
            let refusal = verdict.unwrap_err();
            assert!(refusal.contains("key"), "{refusal}");
        }
        let reads = builtin.keys.reads.load(Ordering::Relaxed) - reads_before;
        assert!(
            reads <= 2,
            "{reads} key reads for 100 tokens of unknown keys"
        );
        assert!(started.elapsed() < Duration::from_secs(5));

        // A later stranger waits for the next reload slot, then is refused without another.
        builtin.verify(&token_of_unknown_key()).await.unwrap_err();
        builtin.verify(&valid).await.unwrap();
    }

    #[tokio::test]
    async fn a_key_rotated_in_elsewhere_verifies_despite_strangers() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let replica = builtin(&store).await;
        let issuer = builtin(&store).await;
        let before = token(&issuer, &store).await;
        replica.verify(&before).await.unwrap();
        // A stranger's token just made the replica reload its keys...
        replica.verify(&token_of_unknown_key()).await.unwrap_err();

        // ...and right then another replica rotates the key and signs with the new one.
        rotate_signing_key(&store).await.unwrap();
        let after = issuer.issue("ci", "pw").await.unwrap();
        let started = Instant::now();
        let principal = replica.verify(after.access_token.expose()).await.unwrap();
        assert_eq!(principal.subject, "ci");
        assert!(started.elapsed() <= UNKNOWN_KEY_RELOAD_INTERVAL + Duration::from_millis(500));
        replica.verify(&before).await.unwrap();
    }
}
