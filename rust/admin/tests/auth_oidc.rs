//! OIDC mode against a minimal identity provider served in the test (a discovery document and
//! a JWKS on a loopback port): discovery at start, the metadata and public client config the
//! discovery services pass on, and the provider's tokens checked against its keys.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::time::Duration;

use alula_admin::auth::discovery::Discovery;
use alula_admin::auth::{Auth, AuthMode, AuthSettings, Caller, PrincipalKind, TokenRefusal};
use alula_admin::authz::Gate;
use alula_admin::Store;
use alula_auth::keys::{sign, sign_claims, JwkSet, SigningKey, TokenClaims};
use alula_auth::{Binding, Role, Subject};
use alula_idl::flyteidl::service::auth_metadata_service_server::AuthMetadataService;
use alula_idl::flyteidl::service::{OAuth2MetadataRequest, PublicClientAuthConfigRequest};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::routing::get;
use axum::Router;
use serde_json::json;

/// Serves the provider on a loopback port; returns its issuer URL.
async fn start_provider(key: &SigningKey) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let discovery = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "device_authorization_endpoint": format!("{issuer}/device"),
        "jwks_uri": format!("{issuer}/jwks"),
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code"],
        "code_challenge_methods_supported": ["S256"],
    })
    .to_string();
    let jwks = serde_json::to_string(&JwkSet::of([key])).unwrap();
    let json = |body: String| {
        move || {
            let body = body.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        }
    };
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(json(discovery)))
        .route("/jwks", get(json(jwks)));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    headers
}

#[tokio::test]
async fn oidc_mode_passes_the_provider_on_and_checks_its_tokens() {
    let key = SigningKey::generate().unwrap();
    let issuer = start_provider(&key).await;
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let settings = AuthSettings {
        mode: AuthMode::Oidc,
        issuer: issuer.clone(),
        cli_client_id: "flytectl".into(),
        authorization_metadata_key: "flyte-authorization".into(),
        ..AuthSettings::default()
    };
    let auth = Auth::new(settings, store).await.unwrap();
    assert_eq!(auth.issuer(), issuer);
    assert_eq!(
        auth.provider_metadata().unwrap().authorization_endpoint,
        format!("{issuer}/authorize")
    );
    // The built-in server is off: no tokens from here.
    assert_eq!(
        auth.issue_client_token("x", "y").await.unwrap_err(),
        TokenRefusal::NotIssuing
    );

    let discovery = Discovery { auth: auth.clone() };
    let metadata = discovery
        .get_o_auth2_metadata(tonic::Request::new(OAuth2MetadataRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metadata.issuer, issuer);
    assert_eq!(metadata.token_endpoint, format!("{issuer}/token"));
    assert_eq!(
        metadata.device_authorization_endpoint,
        format!("{issuer}/device")
    );
    assert_eq!(metadata.code_challenge_methods_supported, ["S256"]);
    let config = discovery
        .get_public_client_config(tonic::Request::new(PublicClientAuthConfigRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(config.client_id, "flytectl");
    assert_eq!(config.redirect_uri, "http://localhost:53593/callback");
    assert_eq!(config.audience, "alula");
    assert_eq!(config.authorization_metadata_key, "flyte-authorization");
    assert!(config.scopes.iter().any(|s| s == "openid"));

    // A user's token (issued to the public client) and a machine's (sub == client_id).
    let user = TokenClaims::for_client(&issuer, "alula", "flytectl", "", Duration::from_secs(60));
    let user = TokenClaims {
        sub: "u-1".into(),
        ..user
    };
    let caller = auth.caller(&bearer(&sign(&key, &user).unwrap())).await;
    let Caller::Authenticated(principal) = caller else {
        panic!("the provider's token was refused: {caller:?}");
    };
    assert_eq!(
        (principal.subject.as_str(), principal.kind),
        ("u-1", PrincipalKind::User)
    );
    let machine = TokenClaims::for_client(&issuer, "alula", "ci", "", Duration::from_secs(60));
    let caller = auth.caller(&bearer(&sign(&key, &machine).unwrap())).await;
    assert_eq!(
        caller.principal().map(|p| p.kind),
        Some(PrincipalKind::Client)
    );

    // Another audience, another key: refused.
    let other_audience =
        TokenClaims::for_client(&issuer, "someone-else", "ci", "", Duration::from_secs(60));
    assert!(matches!(
        auth.caller(&bearer(&sign(&key, &other_audience).unwrap()))
            .await,
        Caller::Refused(_)
    ));
    let stranger = SigningKey::generate().unwrap();
    assert!(matches!(
        auth.caller(&bearer(&sign(&stranger, &machine).unwrap()))
            .await,
        Caller::Refused(_)
    ));
}

async fn gate_for(issuer: &str, trust_username_claim: bool) -> (Auth, Gate) {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let admin = |subject: &str| Binding {
        subject: Subject::parse(subject).unwrap(),
        project: "*".into(),
        domain: "*".into(),
        role: Role::Admin,
    };
    let settings = AuthSettings {
        mode: AuthMode::Oidc,
        issuer: issuer.into(),
        trust_username_claim,
        bindings: vec![
            admin("user:boss@corp"),
            admin("user:boss"),
            admin("user:service-account-ci"),
            admin("client:ci"),
        ],
        ..AuthSettings::default()
    };
    let auth = Auth::new(settings, store.clone()).await.unwrap();
    (auth.clone(), Gate::new(auth, store))
}

fn claims_for(issuer: &str, extra: serde_json::Value) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    let mut claims = serde_json::json!({
        "iss": issuer, "aud": "alula", "iat": now, "exp": now + 600, "azp": "flytectl",
    });
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

/// `user:` bindings name people by what the provider vouches for: the `sub`, a verified email,
/// a username only when the deployment trusts usernames; and machine clients, whatever names
/// they carry, are `client:<id>`.
#[tokio::test]
async fn bindings_match_only_claims_the_provider_vouches_for() {
    let key = SigningKey::generate().unwrap();
    let issuer = start_provider(&key).await;
    let (auth, gate) = gate_for(&issuer, false).await;
    let role_of = |claims: serde_json::Value| {
        let (auth, gate) = (auth.clone(), gate.clone());
        let token = sign_claims(&key, &claims).unwrap();
        async move {
            let caller = auth.caller(&bearer(&token)).await;
            assert!(matches!(caller, Caller::Authenticated(_)), "{caller:?}");
            (
                gate.role(&caller, Some("p"), Some("d")).await,
                alula_admin::authz::who(&caller),
            )
        }
    };
    // Someone who set their own email, or named themselves, after the boss.
    let mallory = json!({"sub": "m-1", "email": "boss@corp", "email_verified": false,
                         "preferred_username": "boss", "name": "Boss"});
    let (role, who) = role_of(claims_for(&issuer, mallory)).await;
    assert_eq!(role, None);
    assert_eq!(who, "user:m-1", "records name the subject");
    // The boss, whose provider verified the email.
    let boss = json!({"sub": "b-1", "email": "boss@corp", "email_verified": true});
    assert_eq!(
        role_of(claims_for(&issuer, boss)).await,
        (Some(Role::Admin), "user:b-1".to_string())
    );
    // A Keycloak service account: a client, never the user its username spells.
    let keycloak = json!({"sub": "5f0c-sa", "azp": "ci", "client_id": "ci",
                          "preferred_username": "service-account-ci"});
    assert_eq!(
        role_of(claims_for(&issuer, keycloak)).await,
        (Some(Role::Admin), "client:ci".to_string())
    );
    let entra = json!({"sub": "sp-1", "oid": "sp-1", "tid": "t", "idtyp": "app",
                       "azp": "other-app", "preferred_username": "boss"});
    assert_eq!(
        role_of(claims_for(&issuer, entra)).await,
        (None, "client:other-app".to_string())
    );

    // A deployment whose provider manages usernames may bind them.
    let (trusting, trusting_gate) = gate_for(&issuer, true).await;
    let token = sign_claims(
        &key,
        &claims_for(&issuer, json!({"sub": "b-1", "preferred_username": "boss"})),
    )
    .unwrap();
    let caller = trusting.caller(&bearer(&token)).await;
    assert_eq!(
        trusting_gate.role(&caller, Some("p"), Some("d")).await,
        Some(Role::Admin)
    );
}

#[tokio::test]
async fn oidc_tokens_without_exp_are_refused() {
    let key = SigningKey::generate().unwrap();
    let issuer = start_provider(&key).await;
    let (auth, _) = gate_for(&issuer, false).await;
    let mut claims = claims_for(&issuer, json!({"sub": "u-1"}));
    claims.as_object_mut().unwrap().remove("exp");
    assert!(matches!(
        auth.caller(&bearer(&sign_claims(&key, &claims).unwrap())).await,
        Caller::Refused(reason) if reason.contains("exp")
    ));
}

#[tokio::test]
async fn an_unreachable_provider_fails_the_start() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    // A port nothing listens on: bind one, then let it go.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let settings = AuthSettings {
        mode: AuthMode::Oidc,
        issuer: format!("http://127.0.0.1:{port}"),
        ..AuthSettings::default()
    };
    assert!(Auth::new(settings, store).await.is_err());
}
