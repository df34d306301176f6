//! The built-in authorization server's signing keys (ES256) and the access tokens it issues.
//!
//! Keys are P-256 ECDSA pairs kept as PKCS#8 documents (what the store saves); tokens are
//! compact JWS with a fixed-size `r || s` signature, as RFC 7518 §3.4 wants for ES256, which is
//! exactly what `ring`'s `*_FIXED_SIGNING` produces.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::{Deserialize, Serialize};

use crate::secret::random_b64;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key {kid}: {reason}")]
    Invalid { kid: String, reason: String },
    #[error("cannot sign a token: {0}")]
    Sign(String),
}

/// One ES256 key pair with its key id.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    /// Unix seconds.
    pub created_at: i64,
    pkcs8: Arc<[u8]>,
    pair: Arc<EcdsaKeyPair>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the PKCS#8 document: it holds the private key.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Seconds since the Unix epoch (0 before it).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl SigningKey {
    /// A fresh key with a random key id.
    pub fn generate() -> Result<Self, KeyError> {
        let kid = random_b64(16);
        let document =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| KeyError::Invalid {
                    kid: kid.clone(),
                    reason: "the system random generator failed".into(),
                })?;
        Self::from_pkcs8(&kid, unix_now(), document.as_ref())
    }

    /// A key stored earlier (its PKCS#8 DER document).
    pub fn from_pkcs8(kid: &str, created_at: i64, der: &[u8]) -> Result<Self, KeyError> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
                .map_err(|e| KeyError::Invalid {
                kid: kid.to_string(),
                reason: format!("not a P-256 PKCS#8 key pair ({e})"),
            })?;
        Ok(Self {
            kid: kid.to_string(),
            created_at,
            pkcs8: der.into(),
            pair: Arc::new(pair),
        })
    }

    /// The PKCS#8 DER document, for storing.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public half as a JWK (`kty: EC`, `crv: P-256`, `alg: ES256`, `use: sig`, `kid`).
    pub fn public_jwk(&self) -> Jwk {
        // ring gives the uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = self.pair.public_key().as_ref();
        let (x, y) = point
            .get(1..)
            .unwrap_or_default()
            .split_at(point.len().saturating_sub(1) / 2);
        let mut params = serde_json::Map::new();
        params.insert("crv".into(), "P-256".into());
        params.insert("x".into(), URL_SAFE_NO_PAD.encode(x).into());
        params.insert("y".into(), URL_SAFE_NO_PAD.encode(y).into());
        Jwk {
            kty: "EC".into(),
            kid: Some(self.kid.clone()),
            alg: Some("ES256".into()),
            use_: Some("sig".into()),
            params,
        }
    }
}

/// A JSON Web Key as JWKS documents carry it (the fields Alula reads or writes; others kept).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(flatten)]
    pub params: serde_json::Map<String, serde_json::Value>,
}

impl Jwk {
    /// A string parameter (`crv`, `x`, `n`, ...), if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).and_then(|v| v.as_str())
    }
}

/// `{"keys": [...]}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    /// The public keys of `keys` (what `/oauth2/jwks` serves: the current key and the retired
    /// ones whose tokens may still be live).
    pub fn of<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> Self {
        Self {
            keys: keys.into_iter().map(SigningKey::public_jwk).collect(),
        }
    }
}

/// What a built-in access token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

impl TokenClaims {
    /// The claims of a client-credentials token for `client_id`, issued now, valid for
    /// `lifetime`, with a random `jti`.
    pub fn for_client(
        issuer: &str,
        audience: &str,
        client_id: &str,
        scope: &str,
        lifetime: Duration,
    ) -> Self {
        let iat = unix_now();
        let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
        Self {
            iss: issuer.trim_end_matches('/').to_string(),
            sub: client_id.to_string(),
            aud: audience.to_string(),
            iat,
            exp: iat.saturating_add(lifetime),
            jti: random_b64(16),
            client_id: client_id.to_string(),
            scope: scope.to_string(),
        }
    }
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

/// Signs `claims` with `key` (ES256, `kid` in the header): a compact JWS.
pub fn sign(key: &SigningKey, claims: &TokenClaims) -> Result<String, KeyError> {
    sign_claims(key, claims)
}

/// Signs any claims with `key`, as [`sign`] does (tests that act as an identity provider).
pub fn sign_claims(key: &SigningKey, claims: &impl Serialize) -> Result<String, KeyError> {
    let header = serde_json::to_vec(&Header {
        alg: "ES256",
        typ: "JWT",
        kid: &key.kid,
    })
    .map_err(|e| KeyError::Sign(e.to_string()))?;
    let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Sign(e.to_string()))?;
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = key
        .pair
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .map_err(|_| KeyError::Sign("the ECDSA signature failed".into()))?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    ))
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a panic is how a test reports failure"
    )]

    use super::*;

    #[test]
    fn a_key_round_trips_through_pkcs8() {
        let key = SigningKey::generate().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(&key.kid).unwrap().len(), 16);
        let again = SigningKey::from_pkcs8(&key.kid, key.created_at, key.pkcs8()).unwrap();
        assert_eq!(again.public_jwk(), key.public_jwk());
        assert_ne!(SigningKey::generate().unwrap().kid, key.kid);
    }

    #[test]
    fn garbage_is_not_a_key() {
        let err = SigningKey::from_pkcs8("k1", 0, b"not a key").unwrap_err();
        assert!(err.to_string().contains("k1"), "{err}");
    }

    #[test]
    fn the_public_jwk_is_an_es256_point() {
        let key = SigningKey::generate().unwrap();
        let jwk = key.public_jwk();
        assert_eq!(jwk.kty, "EC");
        assert_eq!(jwk.alg.as_deref(), Some("ES256"));
        assert_eq!(jwk.use_.as_deref(), Some("sig"));
        assert_eq!(jwk.kid.as_deref(), Some(key.kid.as_str()));
        assert_eq!(jwk.param("crv"), Some("P-256"));
        for coordinate in ["x", "y"] {
            let bytes = URL_SAFE_NO_PAD
                .decode(jwk.param(coordinate).unwrap())
                .unwrap();
            assert_eq!(bytes.len(), 32, "{coordinate}");
        }
        assert!(jwk.param("d").is_none(), "no private part");
        let json = serde_json::to_value(JwkSet::of([&key])).unwrap();
        assert_eq!(json["keys"][0]["use"], "sig");
    }

    #[test]
    fn tokens_have_the_es256_header_and_the_claims() {
        let key = SigningKey::generate().unwrap();
        let claims = TokenClaims::for_client(
            "http://localhost:8088/",
            "alula",
            "ci",
            "all",
            Duration::from_secs(3600),
        );
        assert_eq!(claims.iss, "http://localhost:8088");
        assert_eq!(claims.exp - claims.iat, 3600);
        let token = sign(&key, &claims).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], key.kid.as_str());
        let payload: TokenClaims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(payload, claims);
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 64);
    }

    #[test]
    fn debug_prints_no_key_material() {
        let key = SigningKey::generate().unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains(&key.kid));
        let der_b64 = URL_SAFE_NO_PAD.encode(key.pkcs8());
        assert!(!debug.contains(&der_b64[..16]));
        assert!(
            !debug.contains("pkcs8") && !debug.contains("pair"),
            "{debug}"
        );
    }
}
