//! Checking a bearer token: a JWS signed by a key of the issuer's key set, with an algorithm of
//! the allow-list (never `none`, never an HMAC one: the keys are public), for the expected
//! audience, not expired (clock skew bounded), and turning its claims into a [`Principal`].

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::{Mutex, RwLock};
// tokio's clock, so tests can move it past the refresh interval without waiting.
use tokio::time::Instant;

use crate::keys::{unix_now, JwkSet};
use crate::principal::{Principal, PrincipalKind};
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
        principal_of(&claims, &self.config.groups_claim)
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

/// A NumericDate claim (seconds; some issuers write fractions).
fn time_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, TokenError> {
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

fn string_claim(claims: &Map<String, Value>, name: &str) -> String {
    claims
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The groups claim: an array of strings (others ignored) or one string.
fn groups_of(claims: &Map<String, Value>, claim: &str) -> Vec<String> {
    let value = claims.get(claim).or_else(|| {
        let mut path = claim.split('.');
        let first = claims.get(path.next()?)?;
        path.try_fold(first, |value, step| value.get(step))
    });
    match value {
        Some(Value::String(group)) => vec![group.clone()],
        Some(Value::Array(groups)) => groups
            .iter()
            .filter_map(|g| g.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// The principal a verified token's claims describe.
///
/// Kind: `Client` when the token was issued to a machine rather than a person, which is when
/// its subject is the client it was issued to (`sub` == `client_id` | `azp` | `cid`: the
/// built-in server, Okta, Keycloak-style client credentials) or when it says it came from the
/// client-credentials grant (`gty`, as Auth0 writes it); `User` otherwise.
fn principal_of(claims: &Map<String, Value>, groups_claim: &str) -> Result<Principal, TokenError> {
    let subject = string_claim(claims, "sub");
    if subject.is_empty() {
        return Err(TokenError::Malformed("it has no sub claim".into()));
    }
    let client_id = ["client_id", "azp", "cid"]
        .into_iter()
        .map(|name| string_claim(claims, name))
        .find(|id| !id.is_empty())
        .unwrap_or_default();
    let machine = (!client_id.is_empty() && subject == client_id)
        || string_claim(claims, "gty") == "client-credentials";
    Ok(Principal {
        kind: if machine {
            PrincipalKind::Client
        } else {
            PrincipalKind::User
        },
        name: string_claim(claims, "name"),
        email: string_claim(claims, "email"),
        preferred_username: string_claim(claims, "preferred_username"),
        groups: groups_of(claims, groups_claim),
        client_id,
        issuer: string_claim(claims, "iss")
            .trim_end_matches('/')
            .to_string(),
        expires_at: time_claim(claims, "exp")?.unwrap_or_default(),
        subject,
    })
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
    fn people_and_machines() {
        let user = principal_of(
            &claims(
                json!({"sub": "u-1", "azp": "flytectl", "email": "a@x", "exp": 5,
                           "groups": ["ml", 3, "ops"], "iss": "https://idp/"}),
            ),
            "groups",
        )
        .unwrap();
        assert_eq!(user.kind, PrincipalKind::User);
        assert_eq!(user.client_id, "flytectl");
        assert_eq!(user.groups, ["ml", "ops"]);
        assert_eq!(user.issuer, "https://idp");
        assert_eq!(user.expires_at, 5);

        let okta = principal_of(&claims(json!({"sub": "ci", "cid": "ci"})), "groups").unwrap();
        assert_eq!(okta.kind, PrincipalKind::Client);
        let auth0 = principal_of(
            &claims(json!({"sub": "ci@clients", "azp": "ci", "gty": "client-credentials"})),
            "groups",
        )
        .unwrap();
        assert_eq!(auth0.kind, PrincipalKind::Client);
        assert_eq!(auth0.client_id, "ci");

        assert!(matches!(
            principal_of(&claims(json!({"sub": ""})), "groups"),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn groups_come_from_the_configured_claim() {
        let c = claims(json!({"sub": "u", "roles": "admins",
                              "realm_access": {"roles": ["a", "b"]}}));
        assert_eq!(groups_of(&c, "roles"), ["admins"]);
        assert_eq!(groups_of(&c, "realm_access.roles"), ["a", "b"]);
        assert!(groups_of(&c, "groups").is_empty());
        assert!(groups_of(&c, "realm_access.nothing").is_empty());
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
