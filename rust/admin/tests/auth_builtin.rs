//! The built-in authorization server end to end in process: clients and keys in the store, the
//! token endpoint, checking its tokens (header, cookie, revocation, another server's key, key
//! rotation across replicas); on both backends.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod auth_support;
mod common;

use alula_admin::auth::token_endpoint;
use alula_admin::auth::{Auth, Caller, PrincipalKind};
use alula_admin::Store;
use alula_auth::keys::{sign, sign_claims, SigningKey, TokenClaims};
use alula_auth::secret::hash_secret;
use auth_support::{authenticated, bearer, builtin, token_for, ISSUER};
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::Router;
use base64::Engine;
use tower::ServiceExt;

/// Characters flytekit URL-encodes before base64 (`quote`): `:`, `/`, `+`, space, `%`, `&`.
const SPECIAL_SECRET: &str = "s3cr:t/+ %&é";

/// Python's `urllib.parse.quote(value, safe="")`.
fn quote(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn basic(id: &str, secret: &str) -> String {
    let pair = format!("{}:{}", quote(id), quote(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    json: serde_json::Value,
}

async fn post_token(router: &Router, authorization: Option<&str>, body: &str) -> Answer {
    let mut request = Request::post("/oauth2/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        json: serde_json::from_slice(&bytes).unwrap(),
    }
}

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    header["kid"].as_str().unwrap().to_string()
}

async fn clients_and_keys_are_stored(store: Store) {
    assert!(store
        .create_client("ci", &hash_secret("x"), "CI")
        .await
        .unwrap());
    assert!(!store
        .create_client("ci", &hash_secret("y"), "again")
        .await
        .unwrap());
    assert!(store
        .create_client("bot", &hash_secret("z"), "")
        .await
        .unwrap());
    let listed: Vec<String> = store
        .list_auth_clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    assert_eq!(listed, ["bot", "ci"]);
    let ci = store.auth_client("ci").await.unwrap().unwrap();
    assert_eq!(ci.description, "CI");
    assert!(!ci.is_revoked());
    assert!(!format!("{ci:?}").contains(&ci.secret_hash));
    assert!(store.revoke_auth_client("ci").await.unwrap());
    assert!(!store.revoke_auth_client("ci").await.unwrap());
    assert!(!store.revoke_auth_client("nobody").await.unwrap());
    assert!(store.auth_client("ci").await.unwrap().unwrap().is_revoked());
    // A revoked id is not given again: its old tokens must stay refused.
    assert!(!store
        .create_client("ci", &hash_secret("w"), "")
        .await
        .unwrap());

    store.insert_signing_key("k1", &[1, 2], 100).await.unwrap();
    store.insert_signing_key("k2", &[3], 200).await.unwrap();
    store.insert_signing_key("k3", &[4], 300).await.unwrap();
    let kids = |rows: Vec<alula_admin::store::KeyRow>| {
        rows.into_iter()
            .map(|k| (k.kid, k.retired_at))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kids(store.signing_keys().await.unwrap()),
        [("k3".into(), 0), ("k2".into(), 0), ("k1".into(), 0)]
    );
    assert_eq!(
        store.retire_signing_keys_except("k3", 1000).await.unwrap(),
        2
    );
    assert_eq!(
        store.retire_signing_keys_except("k3", 2000).await.unwrap(),
        0
    );
    assert_eq!(
        store.signing_key("k1").await.unwrap().unwrap().pkcs8,
        [1, 2]
    );
    assert_eq!(
        store
            .delete_signing_keys_retired_before(1000)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .delete_signing_keys_retired_before(1001)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        kids(store.signing_keys().await.unwrap()),
        [("k3".into(), 0)]
    );
}

async fn the_token_endpoint_follows_rfc_6749(store: Store) {
    let auth = builtin(&store).await;
    store
        .create_client("ci app", &hash_secret(SPECIAL_SECRET), "")
        .await
        .unwrap();
    let router = token_endpoint::router(auth.clone());
    let grant = "grant_type=client_credentials";

    // HTTP Basic as flytekit sends it, with a scope it asks for.
    let ok = post_token(
        &router,
        Some(&basic("ci app", SPECIAL_SECRET)),
        &format!("{grant}&scope=all"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.json);
    assert_eq!(ok.json["token_type"], "Bearer");
    assert_eq!(ok.json["expires_in"], 3600);
    assert_eq!(ok.json["scope"], "all");
    assert_eq!(ok.headers[header::CACHE_CONTROL], "no-store");
    let token = ok.json["access_token"].as_str().unwrap();
    let caller = auth.caller(&bearer(token)).await;
    let principal = authenticated(&caller);
    assert_eq!(principal.subject, "ci app");
    assert_eq!(principal.client_id, "ci app");
    assert_eq!(principal.kind, PrincipalKind::Client);
    assert_eq!(principal.issuer, ISSUER);

    // Form fields.
    let form = format!(
        "{grant}&client_id={}&client_secret={}",
        quote("ci app"),
        quote(SPECIAL_SECRET)
    );
    assert_eq!(
        post_token(&router, None, &form).await.status,
        StatusCode::OK
    );

    let refused = |answer: Answer, status: StatusCode, error: &str| {
        assert_eq!(answer.status, status, "{}", answer.json);
        assert_eq!(answer.json["error"], error);
        assert!(answer.json["error_description"].is_string());
        if status == StatusCode::UNAUTHORIZED {
            assert!(answer.headers[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Basic"));
        }
    };
    refused(
        post_token(&router, Some(&basic("ci app", "wrong")), grant).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    );
    refused(
        post_token(&router, Some(&basic("nobody", SPECIAL_SECRET)), grant).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    );
    refused(
        post_token(&router, None, grant).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    );
    refused(
        post_token(
            &router,
            Some(&basic("ci app", SPECIAL_SECRET)),
            "grant_type=password&username=a&password=b",
        )
        .await,
        StatusCode::BAD_REQUEST,
        "unsupported_grant_type",
    );
    refused(
        post_token(&router, Some(&basic("ci app", SPECIAL_SECRET)), "scope=all").await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    let oversized = format!("{grant}&scope={}", "a".repeat(20_000));
    assert_ne!(
        post_token(&router, Some(&basic("ci app", SPECIAL_SECRET)), &oversized)
            .await
            .status,
        StatusCode::OK
    );

    // A revoked client gets no token, and the token it had is refused at once.
    assert!(store.revoke_auth_client("ci app").await.unwrap());
    refused(
        post_token(&router, Some(&basic("ci app", SPECIAL_SECRET)), grant).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    );
    let fresh_replica = builtin(&store).await;
    assert!(matches!(
        fresh_replica.caller(&bearer(token)).await,
        Caller::Refused(reason) if reason.contains("revoked")
    ));
}

async fn tokens_travel_in_headers_and_the_session_cookie(store: Store) {
    let auth = builtin(&store).await;
    store
        .create_client("ci", &hash_secret("pw"), "")
        .await
        .unwrap();
    let token = token_for(&auth, "ci", "pw").await;

    let mut headers = HeaderMap::new();
    headers.insert(
        "flyte-authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    assert_eq!(authenticated(&auth.caller(&headers).await).subject, "ci");

    let mut cookie = HeaderMap::new();
    cookie.insert(
        header::COOKIE,
        HeaderValue::from_str(&format!("theme=dark; alula_session={token}")).unwrap(),
    );
    assert_eq!(authenticated(&auth.caller(&cookie).await).subject, "ci");

    assert_eq!(auth.caller(&HeaderMap::new()).await, Caller::Anonymous);
    let Caller::Refused(reason) = auth.caller(&bearer("not-a-jwt")).await else {
        panic!("a malformed token was not refused");
    };
    assert!(!reason.contains("not-a-jwt"), "{reason}");
    // Tampering with the claims breaks the signature.
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged_claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        serde_json::json!({"iss": ISSUER, "sub": "admin", "aud": "alula", "exp": i64::MAX})
            .to_string(),
    );
    parts[1] = &forged_claims;
    assert!(matches!(
        auth.caller(&bearer(&parts.join("."))).await,
        Caller::Refused(_)
    ));

    // Off: everyone is unchecked, whatever they send.
    let off = Auth::off(store.clone());
    assert_eq!(off.caller(&bearer(&token)).await, Caller::Unchecked);
}

async fn another_servers_tokens_are_refused(store: Store) {
    let auth = builtin(&store).await;
    // Same issuer URL and audience, but its own database and so its own key.
    let other_store = Store::connect("sqlite::memory:").await.unwrap();
    let other = builtin(&other_store).await;
    other_store
        .create_client("ci", &hash_secret("pw"), "")
        .await
        .unwrap();
    store
        .create_client("ci", &hash_secret("pw"), "")
        .await
        .unwrap();
    let foreign = token_for(&other, "ci", "pw").await;
    assert!(matches!(
        auth.caller(&bearer(&foreign)).await,
        Caller::Refused(reason) if reason.contains("key")
    ));
    let own = token_for(&auth, "ci", "pw").await;
    assert!(matches!(
        other.caller(&bearer(&own)).await,
        Caller::Refused(_)
    ));
    assert!(matches!(
        auth.caller(&bearer(&own)).await,
        Caller::Authenticated(_)
    ));
}

async fn rotation_keeps_old_tokens_and_reaches_every_replica(store: Store) {
    let auth = builtin(&store).await;
    let replica = builtin(&store).await;
    store
        .create_client("ci", &hash_secret("pw"), "")
        .await
        .unwrap();
    let before = token_for(&auth, "ci", "pw").await;
    // The replica has loaded the keys of before the rotation.
    assert!(matches!(
        replica.caller(&bearer(&before)).await,
        Caller::Authenticated(_)
    ));

    let new_kid = Auth::rotate_signing_key(&store).await.unwrap();
    assert_ne!(kid_of(&before), new_kid);
    let after = token_for(&auth, "ci", "pw").await;
    assert_eq!(kid_of(&after), new_kid);
    for server in [&auth, &replica] {
        assert!(matches!(
            server.caller(&bearer(&before)).await,
            Caller::Authenticated(_)
        ));
        assert!(matches!(
            server.caller(&bearer(&after)).await,
            Caller::Authenticated(_)
        ));
    }
    // Both keys are published until the old one's tokens expired.
    let published: Vec<String> = auth
        .jwks()
        .await
        .unwrap()
        .keys
        .into_iter()
        .filter_map(|k| k.kid)
        .collect();
    assert!(published.contains(&new_kid) && published.contains(&kid_of(&before)));
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys.iter().filter(|k| !k.is_retired()).count(), 1);
}

async fn jwks_publishes_the_live_keys(store: Store) {
    let auth = builtin(&store).await;
    let response = token_endpoint::router(auth.clone())
        .oneshot(Request::get("/oauth2/jwks").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let set: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let keys = set["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "EC");
    assert_eq!(keys[0]["alg"], "ES256");
    assert!(keys[0].get("d").is_none(), "a private key was published");
    // A key retired longer ago than a token lives (plus skew) verifies nothing any more.
    let old = alula_auth::keys::SigningKey::generate().unwrap();
    let two_hours_ago = alula_admin::store::now_micros() - 2 * 3600 * 1_000_000;
    store
        .insert_signing_key(&old.kid, old.pkcs8(), two_hours_ago - 1)
        .await
        .unwrap();
    let current = keys[0]["kid"].as_str().unwrap().to_string();
    store
        .retire_signing_keys_except(&current, two_hours_ago)
        .await
        .unwrap();
    let published: Vec<Option<String>> = auth
        .jwks()
        .await
        .unwrap()
        .keys
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(published, [Some(current)]);
    // Not served unless the built-in server is on.
    let off = token_endpoint::router(Auth::off(store.clone()))
        .oneshot(Request::get("/oauth2/jwks").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(off.status(), StatusCode::NOT_FOUND);
}

async fn secrets_stay_out_of_debug_output(store: Store) {
    let auth = builtin(&store).await;
    store
        .create_client("ci", &hash_secret("pw-123"), "")
        .await
        .unwrap();
    let issued = auth.issue_client_token("ci", "pw-123").await.unwrap();
    let printed = format!(
        "{auth:?} {:?} {issued:?} {:?}",
        auth.settings(),
        store.signing_keys().await.unwrap()
    );
    assert!(!printed.contains("console-secret-value"), "{printed}");
    assert!(!printed.contains(issued.access_token.expose()), "{printed}");
    assert!(
        printed.contains(ISSUER),
        "the Debug output says nothing: {printed}"
    );
}

/// A token under this server's own key that lives longer than `token_lifetime_seconds` (a
/// leaked key, a bug) is not one it issued, and one without `iat` cannot be told apart.
async fn tokens_longer_lived_than_configured_are_refused(store: Store) {
    let auth = builtin(&store).await;
    store
        .create_client("ci", &hash_secret("pw"), "")
        .await
        .unwrap();
    let issued = token_for(&auth, "ci", "pw").await;
    assert!(matches!(
        auth.caller(&bearer(&issued)).await,
        Caller::Authenticated(_)
    ));
    let row = store.signing_key(&kid_of(&issued)).await.unwrap().unwrap();
    let key = SigningKey::from_pkcs8(&row.kid, row.created_at, &row.pkcs8).unwrap();
    let lifetime = auth.settings().token_lifetime;
    let claims = TokenClaims::for_client(ISSUER, "alula", "ci", "all", lifetime);
    let mut forged = claims.clone();
    forged.exp = forged.iat + 10 * 365 * 24 * 3600;
    assert!(matches!(
        auth.caller(&bearer(&sign(&key, &forged).unwrap())).await,
        Caller::Refused(reason) if reason.contains("longer")
    ));
    let mut no_iat = serde_json::to_value(&claims).unwrap();
    no_iat.as_object_mut().unwrap().remove("iat");
    assert!(matches!(
        auth.caller(&bearer(&sign_claims(&key, &no_iat).unwrap())).await,
        Caller::Refused(reason) if reason.contains("iat")
    ));
    // Made the same way within the lifetime: accepted (the refusals above are the lifetime's).
    assert!(matches!(
        auth.caller(&bearer(&sign(&key, &claims).unwrap())).await,
        Caller::Authenticated(_)
    ));
}

on_both_backends!(
    clients_and_keys_are_stored,
    tokens_longer_lived_than_configured_are_refused,
    the_token_endpoint_follows_rfc_6749,
    tokens_travel_in_headers_and_the_session_cookie,
    another_servers_tokens_are_refused,
    rotation_keeps_old_tokens_and_reaches_every_replica,
    jwks_publishes_the_live_keys,
    secrets_stay_out_of_debug_output,
);
