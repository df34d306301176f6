//! The verifier against tokens good and bad: key rotation, forged and confused algorithms,
//! times, issuer, audience, malformed input, and how often it reloads the issuer's keys.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use alula_auth::keys::{sign, JwkSet, SigningKey, TokenClaims};
use alula_auth::verify::{KeySource, StaticKeys, TokenError, Verifier, MAX_LEEWAY};
use alula_auth::PrincipalKind;
use common::*;
use ring::hmac;
use serde_json::json;

#[tokio::test]
async fn tokens_of_either_key_of_a_rotation_verify() {
    let (old, new) = (
        SigningKey::generate().unwrap(),
        SigningKey::generate().unwrap(),
    );
    let source = CountingKeys::with(vec![old.public_jwk(), new.public_jwk()]);
    let verifier = verifier(&source);
    for key in [&old, &new] {
        let principal = verifier
            .verify(&es256(key, Some(&key.kid), &user_claims()))
            .await
            .unwrap();
        assert_eq!(principal.subject, "248289761001");
        assert_eq!(principal.kind, PrincipalKind::User);
        assert_eq!(principal.email, "alice@example.com");
        // Usernames are not identities unless the deployment says so.
        assert_eq!(principal.preferred_username, "");
        assert_eq!(principal.name, "Alice");
        assert_eq!(principal.groups, ["ml", "ops"]);
        assert_eq!(principal.client_id, "flytectl");
        assert_eq!(principal.issuer, ISSUER);
    }
    assert_eq!(source.loads(), 1, "the key set is loaded once and cached");
}

#[tokio::test]
async fn built_in_client_tokens_are_clients() {
    let key = SigningKey::generate().unwrap();
    let claims =
        TokenClaims::for_client(ISSUER, AUDIENCE, "ci-bot", "all", Duration::from_secs(60));
    let verifier = Verifier::new(config(), Arc::new(StaticKeys(JwkSet::of([&key]))));
    let principal = verifier
        .verify(&sign(&key, &claims).unwrap())
        .await
        .unwrap();
    assert_eq!(principal.kind, PrincipalKind::Client);
    assert_eq!(principal.subject, "ci-bot");
    assert_eq!(principal.client_id, "ci-bot");
    assert_eq!(principal.expires_at, claims.exp);
}

#[tokio::test]
async fn another_keys_signature_is_refused() {
    let (real, forger) = (
        SigningKey::generate().unwrap(),
        SigningKey::generate().unwrap(),
    );
    let verifier = verifier(&CountingKeys::with(vec![real.public_jwk()]));
    let forged = es256(&forger, Some(&real.kid), &user_claims());
    assert_eq!(verifier.verify(&forged).await, Err(TokenError::Signature));
    // A valid token with its claims swapped for others is refused too.
    let good = es256(&real, Some(&real.kid), &user_claims());
    let mut claims = user_claims();
    claims["sub"] = "admin".into();
    let other_payload = es256(&real, Some(&real.kid), &claims);
    let spliced = {
        let g: Vec<&str> = good.split('.').collect();
        let o: Vec<&str> = other_payload.split('.').collect();
        format!("{}.{}.{}", g[0], o[1], g[2])
    };
    assert_eq!(verifier.verify(&spliced).await, Err(TokenError::Signature));
}

#[tokio::test(start_paused = true)]
async fn a_withdrawn_key_stops_verifying_within_the_maximum_key_age() {
    let (old, new) = (
        SigningKey::generate().unwrap(),
        SigningKey::generate().unwrap(),
    );
    let source = CountingKeys::with(vec![old.public_jwk(), new.public_jwk()]);
    let verifier = verifier(&source);
    let by_old = es256(&old, Some(&old.kid), &user_claims());
    verifier.verify(&by_old).await.unwrap();
    assert_eq!(source.loads(), 1);
    // The issuer withdraws the old key; every token keeps naming a known kid.
    source
        .keys
        .lock()
        .unwrap()
        .keys
        .retain(|k| k.kid.as_deref() != Some(old.kid.as_str()));
    tokio::time::advance(Verifier::MAX_KEY_AGE - Duration::from_secs(1)).await;
    verifier.verify(&by_old).await.unwrap();
    assert_eq!(source.loads(), 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(
        verifier.verify(&by_old).await,
        Err(TokenError::UnknownKey(old.kid.clone()))
    );
    assert_eq!(source.loads(), 2);
    verifier
        .verify(&es256(&new, Some(&new.kid), &user_claims()))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn unknown_keys_reload_the_set_at_most_once_per_interval() {
    let (known, later) = (
        SigningKey::generate().unwrap(),
        SigningKey::generate().unwrap(),
    );
    let source = CountingKeys::with(vec![known.public_jwk()]);
    let verifier = verifier(&source);
    let by_later = es256(&later, Some(&later.kid), &user_claims());

    // The first verification loads the set (the key is not in it yet).
    assert_eq!(
        verifier.verify(&by_later).await,
        Err(TokenError::UnknownKey(later.kid.clone()))
    );
    assert_eq!(source.loads(), 1);
    // Now the issuer rotates; within the interval the verifier does not ask again.
    source.keys.lock().unwrap().keys.push(later.public_jwk());
    for _ in 0..5 {
        assert_eq!(
            verifier.verify(&by_later).await,
            Err(TokenError::UnknownKey(later.kid.clone()))
        );
    }
    assert_eq!(source.loads(), 1);
    // Known keys keep working without loads.
    verifier
        .verify(&es256(&known, Some(&known.kid), &user_claims()))
        .await
        .unwrap();
    tokio::time::advance(Verifier::REFRESH_INTERVAL + Duration::from_secs(1)).await;
    verifier.verify(&by_later).await.unwrap();
    assert_eq!(source.loads(), 2);
    // A kid nobody has: one more load after the interval, then refused.
    tokio::time::advance(Verifier::REFRESH_INTERVAL + Duration::from_secs(1)).await;
    let ghost = SigningKey::generate().unwrap();
    assert_eq!(
        verifier
            .verify(&es256(&ghost, Some(&ghost.kid), &user_claims()))
            .await,
        Err(TokenError::UnknownKey(ghost.kid.clone()))
    );
    assert_eq!(source.loads(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_failing_key_source_is_reported_and_retried() {
    let key = SigningKey::generate().unwrap();
    let source = CountingKeys::with(vec![key.public_jwk()]);
    *source.fail.lock().unwrap() = Some("connection refused".into());
    let verifier = verifier(&source);
    let token = es256(&key, Some(&key.kid), &user_claims());
    assert_eq!(
        verifier.verify(&token).await,
        Err(TokenError::Keys("connection refused".into()))
    );
    // Right away: not retried (no load storm while the provider is down).
    assert!(verifier.verify(&token).await.is_err());
    assert_eq!(source.loads(), 1);
    *source.fail.lock().unwrap() = None;
    tokio::time::advance(Duration::from_secs(3)).await;
    verifier.verify(&token).await.unwrap();
    assert_eq!(source.loads(), 2);
    // `refresh` loads whatever the interval says.
    assert_eq!(verifier.refresh().await, Ok(1));
    assert_eq!(source.loads(), 3);
}

#[tokio::test]
async fn built_in_tokens_live_no_longer_than_the_configured_lifetime() {
    let key = SigningKey::generate().unwrap();
    let lifetime = Duration::from_secs(3600);
    let verifier = Verifier::new(config(), Arc::new(StaticKeys(JwkSet::of([&key]))))
        .with_max_lifetime(lifetime);
    let issued = TokenClaims::for_client(ISSUER, AUDIENCE, "ci", "all", lifetime);
    verifier
        .verify(&sign(&key, &issued).unwrap())
        .await
        .unwrap();

    // Signed with the very key, but living a year: not a token this issuer gives out.
    let mut forged = issued.clone();
    forged.exp = forged.iat + 365 * 24 * 3600;
    assert_eq!(
        verifier.verify(&sign(&key, &forged).unwrap()).await,
        Err(TokenError::Lifetime)
    );
    // The leeway (60 s here) is all the slack there is.
    let mut long = issued.clone();
    long.exp = long.iat + 3600 + 60;
    verifier.verify(&sign(&key, &long).unwrap()).await.unwrap();
    long.exp += 1;
    assert_eq!(
        verifier.verify(&sign(&key, &long).unwrap()).await,
        Err(TokenError::Lifetime)
    );
    // Without `iat` the lifetime cannot be known: refused.
    let mut claims = serde_json::to_value(&issued).unwrap();
    claims.as_object_mut().unwrap().remove("iat");
    let token = es256(&key, Some(&key.kid), &claims);
    assert!(matches!(
        verifier.verify(&token).await,
        Err(TokenError::Malformed(m)) if m.contains("iat")
    ));
}

#[tokio::test]
async fn expiry_allows_the_leeway_and_no_more() {
    let key = SigningKey::generate().unwrap();
    let verifier = verifier(&CountingKeys::with(vec![key.public_jwk()]));
    let token = |claims: serde_json::Value| es256(&key, Some(&key.kid), &claims);

    let mut claims = user_claims();
    claims["exp"] = (now() - 120).into();
    assert_eq!(
        verifier.verify(&token(claims)).await,
        Err(TokenError::Expired)
    );

    let mut claims = user_claims();
    claims["exp"] = (now() - 10).into();
    verifier.verify(&token(claims)).await.unwrap();

    let mut claims = user_claims();
    claims.as_object_mut().unwrap().remove("exp");
    assert!(matches!(
        verifier.verify(&token(claims)).await,
        Err(TokenError::Malformed(_))
    ));

    // A configured leeway beyond the cap is capped.
    let mut lax = config();
    lax.leeway = Duration::from_secs(3600);
    let lax = Verifier::new(lax, Arc::new(StaticKeys(JwkSet::of([&key]))));
    let mut claims = user_claims();
    claims["exp"] = (now() - 200).into();
    lax.verify(&token(claims)).await.unwrap();
    let mut claims = user_claims();
    claims["exp"] = (now() - i64::try_from(MAX_LEEWAY.as_secs()).unwrap() - 30).into();
    assert_eq!(lax.verify(&token(claims)).await, Err(TokenError::Expired));
}

#[tokio::test]
async fn tokens_from_the_future_are_not_valid_yet() {
    let key = SigningKey::generate().unwrap();
    let verifier = verifier(&CountingKeys::with(vec![key.public_jwk()]));
    for claim in ["nbf", "iat"] {
        let mut claims = user_claims();
        claims[claim] = (now() + 600).into();
        assert_eq!(
            verifier.verify(&es256(&key, Some(&key.kid), &claims)).await,
            Err(TokenError::NotYetValid),
            "{claim}"
        );
        claims[claim] = (now() + 30).into();
        verifier
            .verify(&es256(&key, Some(&key.kid), &claims))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn the_issuer_and_audience_must_be_ours() {
    let key = SigningKey::generate().unwrap();
    let verifier = verifier(&CountingKeys::with(vec![key.public_jwk()]));

    let mut claims = user_claims();
    claims["iss"] = "https://evil.example".into();
    assert_eq!(
        verifier.verify(&es256(&key, Some(&key.kid), &claims)).await,
        Err(TokenError::Issuer("https://evil.example".into()))
    );
    claims.as_object_mut().unwrap().remove("iss");
    assert_eq!(
        verifier.verify(&es256(&key, Some(&key.kid), &claims)).await,
        Err(TokenError::Issuer(String::new()))
    );
    let mut claims = user_claims();
    claims["iss"] = format!("{ISSUER}/").into();
    verifier
        .verify(&es256(&key, Some(&key.kid), &claims))
        .await
        .unwrap();

    for (aud, ok) in [
        (json!("someone-else"), false),
        (json!(["a", "b"]), false),
        (json!(null), false),
        (json!(7), false),
        (json!(["a", AUDIENCE]), true),
        (json!("other"), true),
    ] {
        let mut claims = user_claims();
        claims["aud"] = aud.clone();
        let result = verifier.verify(&es256(&key, Some(&key.kid), &claims)).await;
        if ok {
            result.unwrap();
        } else {
            assert_eq!(result, Err(TokenError::Audience), "{aud}");
        }
    }
}

#[tokio::test]
async fn none_and_hmac_are_refused_before_any_key_lookup() {
    let key = SigningKey::generate().unwrap();
    let jwk = key.public_jwk();
    let source = CountingKeys::with(vec![jwk.clone()]);
    let verifier = verifier(&source);

    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "kid": key.kid})
            .to_string()
            .as_bytes()),
        b64(user_claims().to_string().as_bytes())
    );
    assert_eq!(
        verifier.verify(&unsigned).await,
        Err(TokenError::Algorithm("none".into()))
    );

    // The classic confusion: HS256 "signed" with the public key as the HMAC secret, in each
    // form a confused verifier might use as the secret.
    let jwk_json = serde_json::to_vec(&jwk).unwrap();
    let x = jwk.param("x").unwrap().as_bytes().to_vec();
    for secret in [jwk_json, x] {
        for alg in ["HS256", "HS384", "HS512"] {
            let digest = match alg {
                "HS256" => hmac::HMAC_SHA256,
                "HS384" => hmac::HMAC_SHA384,
                _ => hmac::HMAC_SHA512,
            };
            let token = jws(
                &json!({"alg": alg, "kid": key.kid}),
                &user_claims(),
                |input| {
                    hmac::sign(&hmac::Key::new(digest, &secret), input)
                        .as_ref()
                        .to_vec()
                },
            );
            assert_eq!(
                verifier.verify(&token).await,
                Err(TokenError::Algorithm(alg.into()))
            );
        }
    }
    assert_eq!(source.loads(), 0, "refused before looking at any key");
}

#[tokio::test]
async fn rsa_tokens_verify_with_an_rsa_jwk() {
    let rsa = rsa_key();
    let ec = SigningKey::generate().unwrap();
    let source = CountingKeys::with(vec![rsa_jwk(&rsa, "rsa-1", None), ec.public_jwk()]);
    let verifier = verifier(&source);
    for alg in ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"] {
        let principal = verifier
            .verify(&rsa_token(&rsa, alg, "rsa-1", &user_claims()))
            .await
            .unwrap();
        assert_eq!(principal.subject, "248289761001", "{alg}");
    }
    // An RSA signature presented under the EC key's kid: the key does not fit the algorithm.
    assert_eq!(
        verifier
            .verify(&rsa_token(&rsa, "RS256", &ec.kid, &user_claims()))
            .await,
        Err(TokenError::Algorithm("RS256".into()))
    );
    // A JWK pinned to RS256 refuses PS256 tokens.
    let pinned = verifier_with(vec![rsa_jwk(&rsa, "rsa-1", Some("RS256"))]);
    pinned
        .verify(&rsa_token(&rsa, "RS256", "rsa-1", &user_claims()))
        .await
        .unwrap();
    assert_eq!(
        pinned
            .verify(&rsa_token(&rsa, "PS256", "rsa-1", &user_claims()))
            .await,
        Err(TokenError::Algorithm("PS256".into()))
    );
}

fn verifier_with(keys: Vec<alula_auth::keys::Jwk>) -> Verifier {
    Verifier::new(
        config(),
        Arc::new(StaticKeys(JwkSet { keys })) as Arc<dyn KeySource>,
    )
}

#[tokio::test]
async fn eddsa_tokens_verify() {
    let (jwk, pair) = ed25519("ed-1");
    let verifier = verifier_with(vec![jwk]);
    let token = jws(
        &json!({"alg": "EdDSA", "kid": "ed-1"}),
        &user_claims(),
        |input| pair.sign(input).as_ref().to_vec(),
    );
    verifier.verify(&token).await.unwrap();
}

#[tokio::test]
async fn a_token_without_kid_needs_exactly_one_fitting_key() {
    let (a, b) = (
        SigningKey::generate().unwrap(),
        SigningKey::generate().unwrap(),
    );
    let rsa = rsa_key();
    let one_ec = verifier_with(vec![a.public_jwk(), rsa_jwk(&rsa, "r", None)]);
    one_ec
        .verify(&es256(&a, None, &user_claims()))
        .await
        .unwrap();
    assert_eq!(
        one_ec.verify(&es256(&b, None, &user_claims())).await,
        Err(TokenError::Signature)
    );
    let two_ec = verifier_with(vec![a.public_jwk(), b.public_jwk()]);
    assert!(matches!(
        two_ec.verify(&es256(&a, None, &user_claims())).await,
        Err(TokenError::Malformed(_))
    ));
    let no_ec = verifier_with(vec![rsa_jwk(&rsa, "r", None)]);
    assert_eq!(
        no_ec.verify(&es256(&a, None, &user_claims())).await,
        Err(TokenError::UnknownKey(String::new()))
    );
}

#[tokio::test]
async fn malformed_tokens_are_named_so() {
    let key = SigningKey::generate().unwrap();
    let verifier = verifier_with(vec![key.public_jwk()]);
    let good = es256(&key, Some(&key.kid), &user_claims());
    let parts: Vec<&str> = good.split('.').collect();
    let header = b64(json!({"alg": "ES256", "kid": key.kid})
        .to_string()
        .as_bytes());
    for bad in [
        String::new(),
        "abc".into(),
        "a.b".into(),
        format!("{good}.extra"),
        format!("!!.{}.{}", parts[1], parts[2]),
        format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
        format!("{}.not base64.{}", parts[0], parts[2]),
        format!("{}.{}.{}", b64(b"not json"), parts[1], parts[2]),
        format!("{}.{}.{}", b64(b"{\"kid\":\"x\"}"), parts[1], parts[2]),
        format!(
            "{}.{}.{}",
            b64(json!({"alg": "ES256", "crit": ["exp"]})
                .to_string()
                .as_bytes()),
            parts[1],
            parts[2]
        ),
        "a".repeat(70_000),
    ] {
        let result = verifier.verify(&bad).await;
        assert!(
            matches!(result, Err(TokenError::Malformed(_))),
            "{:.80}: {result:?}",
            bad
        );
    }
    // A payload that is signed but is not a claims object.
    for payload in [b"[1,2]".as_slice(), b"null", b"\"sub\"", b"{"] {
        let token = jws_raw(&key, &format!("{header}.{}", b64(payload)));
        assert!(matches!(
            verifier.verify(&token).await,
            Err(TokenError::Malformed(_))
        ));
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_strings_are_malformed(token in "\\PC{0,300}") {
            let key = SigningKey::generate().unwrap();
            let verifier = verifier_with(vec![key.public_jwk()]);
            let result = runtime().block_on(verifier.verify(&token));
            prop_assert!(matches!(result, Err(TokenError::Malformed(_))), "{result:?}");
        }

        #[test]
        fn arbitrary_base64_parts_never_verify(
            parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..5),
            alg in prop_oneof![Just("ES256"), Just("RS256"), Just("none"), Just("HS256"), Just("EdDSA")],
            with_header in any::<bool>(),
        ) {
            let key = SigningKey::generate().unwrap();
            let verifier = verifier_with(vec![key.public_jwk()]);
            let mut encoded: Vec<String> = parts.iter().map(|p| b64(p)).collect();
            if with_header && !encoded.is_empty() {
                encoded[0] = b64(json!({"alg": alg, "kid": key.kid}).to_string().as_bytes());
            }
            let result = runtime().block_on(verifier.verify(&encoded.join(".")));
            prop_assert!(result.is_err());
        }
    }
}

/// A key source whose loads after the first hang until released.
struct SlowKeys {
    keys: JwkSet,
    loads: std::sync::atomic::AtomicUsize,
    release: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl KeySource for SlowKeys {
    async fn load(&self) -> Result<JwkSet, String> {
        if self.loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
            self.release.notified().await;
        }
        Ok(self.keys.clone())
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_key_fetch_does_not_hold_up_known_keys() {
    let (known, unknown) = (
        SigningKey::generate().unwrap(),
        SigningKey::generate().unwrap(),
    );
    let source = Arc::new(SlowKeys {
        keys: JwkSet::of([&known]),
        loads: Default::default(),
        release: tokio::sync::Notify::new(),
    });
    let verifier = Arc::new(Verifier::new(
        config(),
        Arc::clone(&source) as Arc<dyn KeySource>,
    ));
    let by_known = es256(&known, Some(&known.kid), &user_claims());
    verifier.verify(&by_known).await.unwrap();
    tokio::time::advance(Verifier::REFRESH_INTERVAL + Duration::from_secs(1)).await;

    let stuck = tokio::spawn({
        let verifier = Arc::clone(&verifier);
        let token = es256(&unknown, Some(&unknown.kid), &user_claims());
        async move { verifier.verify(&token).await }
    });
    while source.loads.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        tokio::task::yield_now().await;
    }
    // The fetch is in flight; a known key's token is checked regardless.
    let quick = tokio::time::timeout(Duration::from_millis(100), verifier.verify(&by_known)).await;
    assert!(matches!(quick, Ok(Ok(_))), "{quick:?}");
    assert!(!stuck.is_finished());
    source.release.notify_one();
    assert_eq!(
        stuck.await.unwrap(),
        Err(TokenError::UnknownKey(unknown.kid.clone()))
    );
}
