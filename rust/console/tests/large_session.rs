//! A sign-in through the identity provider whose access token is far bigger than a cookie may
//! be (an Entra ID or Keycloak user in hundreds of groups): the browser must stay signed in,
//! with a cookie it keeps, and be signed out at logout. Browsers silently drop cookies over
//! 4 KB, which is how such logins used to fail.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod fixture;

use alula_admin::auth::{AuthMode, AuthSettings};
use alula_auth::keys::{sign_claims, JwkSet, SigningKey};
use alula_auth::{Binding, Role, Subject};
use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use fixture::Console;

/// What browsers keep of one cookie: name, value and attributes.
const BROWSER_COOKIE_LIMIT: usize = 4096;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A provider whose token endpoint answers any code with `token`, signed by `key`.
async fn provider(key: SigningKey, groups: usize) -> (String, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let groups: Vec<String> = (0..groups)
        .map(|i| format!("/org/department-{i:04}/team"))
        .collect();
    let claims = serde_json::json!({
        "iss": issuer, "sub": "u-1234", "aud": "alula", "azp": "alula-console",
        "iat": now(), "exp": now() + 3600, "name": "Alice Example",
        "email": "alice@example.com", "email_verified": true, "groups": groups,
    });
    let token = sign_claims(&key, &claims).unwrap();
    let document = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
    })
    .to_string();
    let jwks = serde_json::to_string(&JwkSet::of([&key])).unwrap();
    let answer = serde_json::json!({"access_token": token, "token_type": "Bearer",
                                    "expires_in": 3600})
    .to_string();
    let json = |body: String| {
        move || {
            let body = body.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        }
    };
    let router = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(json(document)),
        )
        .route("/jwks", axum::routing::get(json(jwks)))
        .route("/token", axum::routing::post(json(answer)));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (issuer, token)
}

fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

async fn get(console: &Console, uri: &str, cookie: &str) -> (StatusCode, HeaderMap, String) {
    let request = Request::get(uri)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap();
    console.exchange(request).await
}

/// Signs in through the provider: the `name=value` of the session cookie it sets, whole.
async fn sign_in(console: &Console) -> String {
    let (status, headers, _) = get(console, "/console/login?next=%2Fconsole", "").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let to = headers.get(header::LOCATION).unwrap().to_str().unwrap();
    let state = url_param(to, "state");
    let login = set_cookies(&headers)
        .into_iter()
        .find(|c| c.starts_with("alula_login="))
        .unwrap();
    let login = login.split(';').next().unwrap().to_string();
    let (status, headers, body) = get(
        console,
        &format!("/console/oauth2/callback?code=the-code&state={state}"),
        &login,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let session = set_cookies(&headers)
        .into_iter()
        .find(|c| c.starts_with("alula_session="))
        .expect("a session cookie");
    assert!(
        session.len() < BROWSER_COOKIE_LIMIT,
        "a browser would drop this {} byte cookie",
        session.len()
    );
    session.split(';').next().unwrap().to_string()
}

fn url_param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

async fn console_for(issuer: &str) -> Console {
    Console::with_auth(AuthSettings {
        mode: AuthMode::Oidc,
        issuer: issuer.into(),
        console_client_id: "alula-console".into(),
        bindings: vec![Binding {
            subject: Subject::parse("group:/org/department-0007/team").unwrap(),
            project: "*".into(),
            domain: "*".into(),
            role: Role::Viewer,
        }],
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn a_ten_kilobyte_token_keeps_the_browser_signed_in() {
    let (issuer, token) = provider(SigningKey::generate().unwrap(), 330).await;
    assert!(token.len() > 10_000, "{}", token.len());
    let console = console_for(&issuer).await;

    let cookie = sign_in(&console).await;
    let (status, headers, body) = get(&console, "/console", &cookie).await;
    assert_eq!(status, StatusCode::OK, "{headers:?} {body}");
    assert!(body.contains("Alice Example"), "the header names the user");

    // Logout ends the session server-side too: the old cookie no longer signs anyone in.
    let request = Request::post("/console/logout")
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    let (status, _, _) = console.exchange(request).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, headers, _) = get(&console, "/console", &cookie).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let to = headers.get(header::LOCATION).unwrap().to_str().unwrap();
    assert!(to.starts_with("/console/login"), "{to}");
}

#[tokio::test]
async fn a_small_token_stays_in_the_cookie() {
    let (issuer, token) = provider(SigningKey::generate().unwrap(), 3).await;
    let console = console_for(&issuer).await;
    let cookie = sign_in(&console).await;
    // Stateless: any replica serves it.
    assert_eq!(cookie, format!("alula_session={token}"));
    let (status, _, _) = get(&console, "/console", &cookie).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_handle_is_good_only_as_the_session_cookie() {
    let (issuer, _) = provider(SigningKey::generate().unwrap(), 330).await;
    let console = console_for(&issuer).await;
    let cookie = sign_in(&console).await;
    let handle = cookie.trim_start_matches("alula_session=");
    let request = Request::get("/console")
        .header(header::AUTHORIZATION, format!("Bearer {handle}"))
        .body(Body::empty())
        .unwrap();
    let (status, _, _) = console.exchange(request).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "a handle is not a bearer token"
    );
}
