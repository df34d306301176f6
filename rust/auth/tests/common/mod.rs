//! Making tokens the way issuers do (any algorithm, any claims), for the verifier's tests.

#![allow(
    clippy::unwrap_used,
    dead_code,
    reason = "test code: a panic is how a test reports failure; not every test uses every helper"
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alula_auth::keys::{Jwk, JwkSet, SigningKey};
use alula_auth::verify::{KeySource, Verifier, VerifierConfig};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{json, Value};

pub const ISSUER: &str = "https://idp.example/realms/alula";
pub const AUDIENCE: &str = "alula";

pub fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

pub fn config() -> VerifierConfig {
    VerifierConfig {
        issuer: ISSUER.into(),
        audiences: vec!["other".into(), AUDIENCE.into()],
        leeway: Duration::from_secs(60),
        groups_claim: "groups".into(),
    }
}

/// Claims a user token from the provider would carry, valid for the next hour.
pub fn user_claims() -> Value {
    json!({
        "iss": ISSUER,
        "sub": "248289761001",
        "aud": AUDIENCE,
        "iat": now(),
        "exp": now() + 3600,
        "azp": "flytectl",
        "email": "alice@example.com",
        "email_verified": true,
        "preferred_username": "alice",
        "name": "Alice",
        "groups": ["ml", "ops"],
    })
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS of `header` and `claims`, signed by `sign` over the signing input.
pub fn jws(header: &Value, claims: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64(&serde_json::to_vec(header).unwrap()),
        b64(&serde_json::to_vec(claims).unwrap())
    );
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

/// An ES256 token by `key` with the header `kid` (which may lie).
pub fn es256(key: &SigningKey, kid: Option<&str>, claims: &Value) -> String {
    let pair = EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        key.pkcs8(),
        &SystemRandom::new(),
    )
    .unwrap();
    let mut header = json!({"alg": "ES256", "typ": "JWT"});
    if let Some(kid) = kid {
        header["kid"] = kid.into();
    }
    jws(&header, claims, |input| {
        pair.sign(&SystemRandom::new(), input)
            .unwrap()
            .as_ref()
            .to_vec()
    })
}

/// A fixed 2048-bit RSA key for tests only (generating one per run is slow in debug builds).
pub fn rsa_key() -> RsaKeyPair {
    let text: String = include_str!("../fixtures/rsa-2048-test-key.pkcs1.b64")
        .split_whitespace()
        .collect();
    RsaKeyPair::from_der(&STANDARD.decode(text).unwrap()).unwrap()
}

pub fn rsa_jwk(key: &RsaKeyPair, kid: &str, alg: Option<&str>) -> Jwk {
    let public = signature::RsaPublicKeyComponents::<Vec<u8>>::from(key.public());
    serde_json::from_value(json!({
        "kty": "RSA", "kid": kid, "alg": alg, "use": "sig",
        "n": b64(&public.n), "e": b64(&public.e),
    }))
    .unwrap()
}

/// An RSA token (`alg` one of RS256/384/512, PS256/384/512).
pub fn rsa_token(key: &RsaKeyPair, alg: &str, kid: &str, claims: &Value) -> String {
    let padding: &'static dyn signature::RsaEncoding = match alg {
        "RS256" => &signature::RSA_PKCS1_SHA256,
        "RS384" => &signature::RSA_PKCS1_SHA384,
        "RS512" => &signature::RSA_PKCS1_SHA512,
        "PS256" => &signature::RSA_PSS_SHA256,
        "PS384" => &signature::RSA_PSS_SHA384,
        "PS512" => &signature::RSA_PSS_SHA512,
        other => panic!("not an RSA algorithm: {other}"),
    };
    jws(&json!({"alg": alg, "kid": kid}), claims, |input| {
        let mut out = vec![0; key.public().modulus_len()];
        key.sign(padding, &SystemRandom::new(), input, &mut out)
            .unwrap();
        out
    })
}

/// A fresh Ed25519 key: its JWK and a signer.
pub fn ed25519(kid: &str) -> (Jwk, Ed25519KeyPair) {
    let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(document.as_ref()).unwrap();
    let jwk = serde_json::from_value(json!({
        "kty": "OKP", "crv": "Ed25519", "kid": kid,
        "x": b64(pair.public_key().as_ref()),
    }))
    .unwrap();
    (jwk, pair)
}

/// A key source that counts its loads and whose keys a test can change.
#[derive(Default)]
pub struct CountingKeys {
    pub keys: Mutex<JwkSet>,
    pub loads: AtomicUsize,
    pub fail: Mutex<Option<String>>,
}

impl CountingKeys {
    pub fn with(keys: Vec<Jwk>) -> Arc<Self> {
        let source = Self::default();
        *source.keys.lock().unwrap() = JwkSet { keys };
        Arc::new(source)
    }
    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl KeySource for CountingKeys {
    async fn load(&self) -> Result<JwkSet, String> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        if let Some(reason) = self.fail.lock().unwrap().clone() {
            return Err(reason);
        }
        Ok(self.keys.lock().unwrap().clone())
    }
}

pub fn verifier(source: &Arc<CountingKeys>) -> Verifier {
    Verifier::new(config(), Arc::clone(source) as Arc<dyn KeySource>)
}

/// `signing_input` (already `header.payload`) signed with `key`: a complete compact JWS.
pub fn jws_raw(key: &SigningKey, signing_input: &str) -> String {
    let pair = EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        key.pkcs8(),
        &SystemRandom::new(),
    )
    .unwrap();
    let signature = pair
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .unwrap();
    format!("{signing_input}.{}", b64(signature.as_ref()))
}
