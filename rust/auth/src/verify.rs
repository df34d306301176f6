//! Checking a bearer token: a JWS signed by a key of the issuer's key set, with an algorithm of
//! the allow-list (never `none`, never an HMAC one: the keys are public), for the expected
//! audience, with an `exp`, not expired (clock skew bounded), no longer-lived than the issuer
//! ever issues when that is known ([`Verifier::with_max_lifetime`]), and turning its claims into
//! a [`Principal`] ([`crate::identity`]).

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::{Mutex, RwLock};
// tokio's clock, so tests can move it past the refresh interval without waiting.
use tokio::time::Instant;

use crate::identity::{principal_of, ClaimsPolicy};
use crate::keys::{unix_now, JwkSet};
use crate::principal::Principal;
use crate::public_key::{Algorithm, PublicKey};

/// The most clock skew a deployment may allow.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// Longer than any real access token (even with a long groups list); refusing bigger ones
/// bounds the work an unauthenticated caller can cause.
const MAX_TOKEN_LEN: usize = 64 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is not a signed JWT: {0}")]
    Malformed(String),
    #[error("tokens signed with {0} are not accepted")]
    Algorithm(String),
    #[error("the token's key {0:?} is not one of the issuer's")]
    UnknownKey(String),
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token lives longer than its issuer's tokens may")]
    Lifetime,
    #[error("the token was issued by {0:?}, not this server's issuer")]
    Issuer(String),
    #[error("the token is for another audience")]
    Audience,
    #[error("the issuer's keys cannot be read: {0}")]
    Keys(String),
}

/// Where the issuer's public keys come from: the built-in server's key table, or a provider's
/// `jwks_uri`. Called again when a token names a key id not seen yet (keys rotate), at most
/// once per [`Verifier::REFRESH_INTERVAL`].
#[async_trait::async_trait]
pub trait KeySource: Send + Sync + 'static {
    async fn load(&self) -> Result<JwkSet, String>;
}

/// A provider's JWKS over HTTP.
pub struct RemoteJwks {
    pub http: reqwest::Client,
    pub jwks_uri: String,
}

#[async_trait::async_trait]
impl KeySource for RemoteJwks {
    async fn load(&self) -> Result<JwkSet, String> {
        let body = crate::oidc::fetch(&self.http, &self.jwks_uri)
            .await
            .map_err(|e| e.to_string())?;
        serde_json::from_slice(&body)
            .map_err(|e| format!("{} is not a JWK set: {e}", self.jwks_uri))
    }
}

/// A fixed key set (tests, or a deployment that pins its issuer's keys).
pub struct StaticKeys(pub JwkSet);

#[async_trait::async_trait]
impl KeySource for StaticKeys {
    async fn load(&self) -> Result<JwkSet, String> {
        Ok(self.0.clone())
    }
}

#[derive(Clone, Debug)]
pub struct VerifierConfig {
    pub issuer: String,
    /// The token's `aud` must contain one of these (none: every token is refused).
    pub audiences: Vec<String>,
    /// Clock skew allowed on `exp`/`nbf`/`iat`; capped at [`MAX_LEEWAY`].
    pub leeway: Duration,
    /// The claim holding the user's groups (`groups`); a dotted name (`realm_access.roles`)
    /// reaches into nested objects when no claim has that exact name.
    pub groups_claim: String,
}

#[derive(Default)]
struct KeyCache {
    keys: Vec<PublicKey>,
    /// Whether some load ever succeeded.
    loaded: bool,
    /// When the last successful load was.
    loaded_at: Option<Instant>,
}

pub struct Verifier {
    config: VerifierConfig,
    source: Arc<dyn KeySource>,
    /// Read on every verification; written only briefly after a fetch, so checking tokens of
    /// known keys never waits on the network.
    cache: RwLock<KeyCache>,
    /// Held across a fetch: one fetch at a time, and when it was last tried.
    last_fetch: Mutex<Option<Instant>>,
    /// The longest `exp - iat` the issuer ever issues (the built-in server's token lifetime).
    max_lifetime: Option<Duration>,
    trust_username_claim: bool,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

fn b64_part(part: &str, what: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed(format!("its {what} is not base64url")))
}

impl Verifier {
    pub const REFRESH_INTERVAL: Duration = Duration::from_secs(30);
    /// Keys are re-read at least this often even when every token names a known one: a key the
    /// issuer withdrew (a rotation after a leak, a retired built-in key past its grace) stops
    /// verifying within this time instead of living until the process restarts.
    pub const MAX_KEY_AGE: Duration = Duration::from_secs(300);
    /// While no key set was ever loaded (the provider was down when the server started),
    /// loads are retried this often instead.
    const FIRST_LOAD_RETRY: Duration = Duration::from_secs(2);

    pub fn new(config: VerifierConfig, keys: Arc<dyn KeySource>) -> Self {
        Self {
            config,
            source: keys,
            cache: RwLock::new(KeyCache::default()),
            last_fetch: Mutex::new(None),
            max_lifetime: None,
            trust_username_claim: false,
        }
    }

    /// Refuses tokens without `iat` and those whose `exp - iat` exceeds `lifetime` (plus the
    /// leeway): for an issuer whose lifetime is known, like the built-in server, a token that
    /// lives longer was not issued by it as configured (a leaked key, a bug), however good its
    /// signature.
    #[must_use]
    pub fn with_max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = Some(lifetime);
        self
    }

    /// Lets `preferred_username` name people in role bindings (see [`crate::identity`]): only
    /// for providers whose usernames people cannot choose or change.
    #[must_use]
    pub fn trusting_username_claim(mut self, trust: bool) -> Self {
        self.trust_username_claim = trust;
        self
    }

    /// How this verifier reads identities from claims.
    pub fn claims_policy(&self) -> ClaimsPolicy {
        ClaimsPolicy {
            groups_claim: self.config.groups_claim.clone(),
            trust_username_claim: self.trust_username_claim,
        }
    }

    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// Loads the key set now, whatever the refresh interval says (at startup, to fail early,
    /// or after the built-in server rotated its key). Returns how many usable keys it has.
    pub async fn refresh(&self) -> Result<usize, TokenError> {
        let mut last_fetch = self.last_fetch.lock().await;
        self.fetch(&mut last_fetch).await
    }

    async fn fetch(&self, last_fetch: &mut Option<Instant>) -> Result<usize, TokenError> {
        *last_fetch = Some(Instant::now());
        let set = self.source.load().await.map_err(TokenError::Keys)?;
        let keys: Vec<PublicKey> = set
            .keys
            .iter()
            .filter_map(|jwk| match PublicKey::from_jwk(jwk) {
                Ok(key) => Some(key),
                Err(reason) => {
                    tracing::debug!(kid = ?jwk.kid, %reason, "ignoring a key of the issuer's set");
                    None
                }
            })
            .collect();
        let count = keys.len();
        *self.cache.write().await = KeyCache {
            keys,
            loaded: true,
            loaded_at: Some(Instant::now()),
        };
        Ok(count)
    }

    /// Reloads the keys unless that was tried recently. `Err` only when a load was due and
    /// failed.
    async fn refresh_if_due(&self) -> Result<(), TokenError> {
        // Waiting here while another verification fetches is intended: once it is done, the
        // keys it found are in the cache and this one need not fetch again.
        let mut last_fetch = self.last_fetch.lock().await;
        let interval = if self.cache.read().await.loaded {
            Self::REFRESH_INTERVAL
        } else {
            Self::FIRST_LOAD_RETRY
        };
        if last_fetch.is_some_and(|at| at.elapsed() < interval) {
            return Ok(());
        }
        self.fetch(&mut last_fetch).await.map(drop)
    }

    /// Checks the signature with the key the header names (by `kid`; without one, the only
    /// key of the right type). `Ok(None)` when no such key is cached.
    async fn check_signature(
        &self,
        alg: Algorithm,
        kid: Option<&str>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<Option<bool>, TokenError> {
        let cache = self.cache.read().await;
        let key = match kid {
            Some(kid) => {
                let mut named = cache
                    .keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .peekable();
                if named.peek().is_none() {
                    return Ok(None);
                }
                named
                    .find(|k| k.suits(alg))
                    .ok_or_else(|| TokenError::Algorithm(alg.as_str().into()))?
            }
            None => {
                let mut suitable = cache.keys.iter().filter(|k| k.suits(alg));
                match (suitable.next(), suitable.next()) {
                    (Some(only), None) => only,
                    (None, _) => return Ok(None),
                    (Some(_), Some(_)) => {
                        return Err(TokenError::Malformed(
                            "it names no key and the issuer has several".into(),
                        ))
                    }
                }
            }
        };
        Ok(Some(key.verify(alg, message, signature)))
    }

    /// The principal `token` proves, or why it proves nothing.
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed("it is too long".into()));
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed(
                "it is not three dot-separated parts".into(),
            ));
        };
        let header: Header = serde_json::from_slice(&b64_part(header_b64, "header")?)
            .map_err(|_| TokenError::Malformed("its header is not a JOSE header".into()))?;
        // Before anything else looks at a key: `none` and HMAC tokens never get that far.
        let alg = Algorithm::parse(&header.alg)
            .ok_or_else(|| TokenError::Algorithm(header.alg.clone()))?;
        if header.crit.is_some() {
            // RFC 7515 §4.1.11: extensions the verifier does not understand must fail it.
            return Err(TokenError::Malformed(
                "it has critical header extensions".into(),
            ));
        }
        let payload = b64_part(payload_b64, "payload")?;
        let signature = b64_part(signature_b64, "signature")?;
        let message = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
        let kid = header.kid.as_deref();

        let stale = self
            .cache
            .read()
            .await
            .loaded_at
            .is_some_and(|at| at.elapsed() >= Self::MAX_KEY_AGE);
        if stale {
            if let Err(error) = self.refresh_if_due().await {
                // The last keys stay in use: a provider that is briefly down must not lock
                // everyone out.
                tracing::warn!(%error, "the issuer's keys could not be re-read");
            }
        }
        let mut verdict = self.check_signature(alg, kid, message, &signature).await?;
        if verdict.is_none() {
            self.refresh_if_due().await?;
            verdict = self.check_signature(alg, kid, message, &signature).await?;
        }
        match verdict {
            None => return Err(TokenError::UnknownKey(kid.unwrap_or_default().to_string())),
            Some(false) => return Err(TokenError::Signature),
            Some(true) => {}
        }

        let claims: Map<String, Value> = serde_json::from_slice(&payload)
            .map_err(|_| TokenError::Malformed("its payload is not a JSON object".into()))?;
        self.check_claims(&claims, unix_now())?;
        principal_of(&claims, &self.claims_policy())
    }

    fn check_claims(&self, claims: &Map<String, Value>, now: i64) -> Result<(), TokenError> {
        let leeway = i64::try_from(self.config.leeway.min(MAX_LEEWAY).as_secs()).unwrap_or(0);
        let exp = time_claim(claims, "exp")?
            .ok_or_else(|| TokenError::Malformed("it has no exp claim".into()))?;
        if now >= exp.saturating_add(leeway) {
            return Err(TokenError::Expired);
        }
        for claim in ["nbf", "iat"] {
            if time_claim(claims, claim)?.is_some_and(|t| t > now.saturating_add(leeway)) {
                return Err(TokenError::NotYetValid);
            }
        }
        if let Some(max) = self.max_lifetime {
            check_lifetime(claims, exp, max, self.config.leeway)?;
        }
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if iss.trim_end_matches('/') != self.config.issuer.trim_end_matches('/') || iss.is_empty() {
            return Err(TokenError::Issuer(iss.to_string()));
        }
        let wanted = |aud: &str| self.config.audiences.iter().any(|a| a == aud);
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => wanted(aud),
            Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(wanted),
            _ => false,
        };
        if !audience_ok {
            return Err(TokenError::Audience);
        }
        Ok(())
    }
}

/// `exp - iat` at most `max` plus the leeway (capped like the verifier's), `iat` required.
fn check_lifetime(
    claims: &Map<String, Value>,
    exp: i64,
    max: Duration,
    leeway: Duration,
) -> Result<(), TokenError> {
    let iat = time_claim(claims, "iat")?
        .ok_or_else(|| TokenError::Malformed("it has no iat claim".into()))?;
    let allowed = max.saturating_add(leeway.min(MAX_LEEWAY)).as_secs();
    let allowed = i64::try_from(allowed).unwrap_or(i64::MAX);
    if exp.saturating_sub(iat) > allowed {
        return Err(TokenError::Lifetime);
    }
    Ok(())
}

/// A NumericDate claim (seconds; some issuers write fractions).
pub(crate) fn time_claim(
    claims: &Map<String, Value>,
    name: &str,
) -> Result<Option<i64>, TokenError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let seconds = value
        .as_i64()
        .or_else(|| {
            value
                .as_f64()
                .filter(|f| f.is_finite() && f.abs() < 1e15)
                // In range by the filter above; the fraction is dropped on purpose.
                .map(|f| f.floor() as i64)
        })
        .ok_or_else(|| TokenError::Malformed(format!("its {name} claim is not a time")))?;
    Ok(Some(seconds))
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a panic is how a test reports failure"
    )]

    use serde_json::json;

    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn times_may_be_fractional_but_must_be_numbers() {
        let c = claims(json!({"exp": 10.7, "nbf": "soon", "iat": 1e300}));
        assert_eq!(time_claim(&c, "exp"), Ok(Some(10)));
        assert!(time_claim(&c, "nbf").is_err());
        assert!(time_claim(&c, "iat").is_err());
        assert_eq!(time_claim(&c, "missing"), Ok(None));
    }
}
