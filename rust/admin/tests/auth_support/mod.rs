//! What the auth test suites share: a built-in server's settings and tokens.
#![allow(dead_code)] // each test binary uses a different subset of the helpers

use alula_admin::auth::{Auth, AuthMode, AuthSettings, Caller, Principal};
use alula_admin::Store;
use alula_auth::secret::Secret;
use axum::http::{header, HeaderMap, HeaderValue};

pub const ISSUER: &str = "http://alula.test:8088";

pub fn builtin_settings() -> AuthSettings {
    AuthSettings {
        mode: AuthMode::Builtin,
        // The server passes its public URL, maybe with a trailing slash.
        issuer: format!("{ISSUER}/"),
        authorization_metadata_key: "flyte-authorization".into(),
        console_client_secret: Some(Secret::new("console-secret-value")),
        ..AuthSettings::default()
    }
}

pub async fn builtin(store: &Store) -> Auth {
    Auth::new(builtin_settings(), store.clone())
        .await
        .expect("built-in auth")
}

pub async fn token_for(auth: &Auth, id: &str, secret: &str) -> String {
    auth.issue_client_token(id, secret)
        .await
        .expect("a token")
        .access_token
        .expose()
        .to_string()
}

pub fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).expect("a header value"),
    );
    headers
}

pub fn authenticated(caller: &Caller) -> &Principal {
    match caller {
        Caller::Authenticated(principal) => principal,
        other => panic!("not authenticated: {other:?}"),
    }
}
