//! Signing in and out, when authentication is on (public routes: a browser without a session
//! must reach them).
//!
//! - OIDC: `GET /console/login` goes to the identity provider ([`oidc`]), which comes back to
//!   `GET /console/oauth2/callback`.
//! - Built-in: `GET /console/login` is a form for a machine client's id and secret (`alula auth
//!   create-client` makes one); `POST /console/login` gets the client a token from this server's
//!   authorization server, as `POST /oauth2/token` would.
//! - `POST /console/logout` drops the session.
//!
//! Either way the session is the `alula_session` cookie holding the access token, which the HTTP
//! layer checks on every request like a bearer token; it lives as long as the token. A token
//! too big for a cookie (a provider's, with many groups) stays server-side and the cookie holds
//! a random handle to it instead (`alula_admin::auth::sessions`, which says why and what that
//! means with several replicas).
//! Cross-site POSTs never get here: the HTTP port refuses other origins.

pub mod oidc;

use alula_admin::auth::{Auth, AuthMode};
use alula_auth::secret::Secret;
use alula_auth::Caller;
use axum::body::Bytes;
use axum::extract::{Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;

use self::oidc::{PendingLogin, LOGIN_COOKIE, LOGIN_COOKIE_SECS};
use crate::api::Services;
use crate::error::ConsoleError;
use crate::session::{self, safe_next, see_other, SESSION_COOKIE};
use crate::shell::{self, Crumb};
use crate::{Api, State};

pub const LOGIN_PATH: &str = "/console/login";
pub const LOGOUT_PATH: &str = "/console/logout";

pub(crate) fn routes() -> Router<State> {
    Router::new()
        .route(LOGIN_PATH, get(login_page).post(builtin_login))
        .route(LOGOUT_PATH, post(logout))
        .route(oidc::CALLBACK_PATH, get(callback))
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn login_page(api: Api, Query(query): Query<NextQuery>) -> Response {
    let next = safe_next(query.next.as_deref());
    let services = api.services();
    let auth = api.gate.auth();
    if !auth.enabled() || matches!(api.caller, Caller::Authenticated(_)) {
        return see_other(&next, &[]);
    }
    match auth.settings().mode {
        AuthMode::Oidc => start_oidc_login(&services, auth, next),
        _ => builtin_form(&next, None, StatusCode::OK),
    }
}

fn start_oidc_login(services: &Services, auth: &Auth, next: String) -> Response {
    let Some(provider) = auth.provider_metadata() else {
        return ConsoleError::Request {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "the identity provider's settings are not loaded".into(),
        }
        .into_response();
    };
    let login = PendingLogin::start(next);
    let redirect_uri = oidc::redirect_uri(&services.config.public_http_url);
    let url = oidc::authorization_url(
        provider,
        &auth.settings().console_client_id,
        &redirect_uri,
        &login,
    );
    let cookie = session::cookie(
        LOGIN_COOKIE,
        &login.cookie_value(),
        "/console",
        LOGIN_COOKIE_SECS,
        session::secure(services),
    );
    see_other(&url, &[cookie])
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(
    AxumState(services): AxumState<Services>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let auth = services.gate.auth();
    if auth.settings().mode != AuthMode::Oidc {
        return see_other(session::HOME, &[]);
    }
    let pending = session::read_cookie(&headers, LOGIN_COOKIE).and_then(PendingLogin::from_cookie);
    let Some(pending) = pending.filter(|p| query.state.as_deref().is_some_and(|s| p.matches(s)))
    else {
        // Another site's link, an old tab, or a login started elsewhere: nothing is set.
        return refused(
            StatusCode::BAD_REQUEST,
            "This sign-in was not started here (its state does not match); sign in again.",
        );
    };
    let clear_login = session::clear_cookie(LOGIN_COOKIE, "/console", session::secure(&services));
    if let Some(error) = &query.error {
        let description = query.error_description.as_deref().unwrap_or_default();
        let message = format!("The identity provider refused the sign-in: {error} {description}");
        return with_cookies(
            refused(StatusCode::UNAUTHORIZED, message.trim_end()),
            &[clear_login],
        );
    }
    let (Some(code), Some(provider)) = (query.code.as_deref(), auth.provider_metadata()) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "The identity provider sent no code.",
        );
    };
    let redirect_uri = oidc::redirect_uri(&services.config.public_http_url);
    let token = match oidc::exchange_code(auth, provider, code, &redirect_uri, &pending).await {
        Ok(token) => token,
        Err(e) => {
            tracing::warn!(error = %e, "console sign-in failed at the token endpoint");
            return with_cookies(refused(e.status(), &e.to_string()), &[clear_login]);
        }
    };
    match start_session(&services, &token, &pending.next).await {
        Ok(response) => with_cookies(response, &[clear_login]),
        Err(reason) => with_cookies(
            refused(
                StatusCode::UNAUTHORIZED,
                &format!("The identity provider's token is not accepted here: {reason}"),
            ),
            &[clear_login],
        ),
    }
}

/// The session cookie holding `token` (when this server accepts it) and the way to `next`.
async fn start_session(
    services: &Services,
    token: &Secret,
    next: &str,
) -> Result<Response, String> {
    let principal = match services.gate.auth().caller_of_token(token.expose()).await {
        Caller::Authenticated(principal) => principal,
        Caller::Refused(reason) => return Err(reason),
        Caller::Anonymous | Caller::Unchecked => return Err("no identity".into()),
    };
    let now = chrono::Utc::now().timestamp();
    let lifetime = u64::try_from(principal.expires_at.saturating_sub(now)).unwrap_or(0);
    tracing::info!(principal = %principal.display_name(), "console sign-in");
    let value = services
        .gate
        .auth()
        .session_cookie_value(token.expose(), principal.expires_at);
    let cookie = session::cookie(
        SESSION_COOKIE,
        value.expose(),
        "/",
        lifetime,
        session::secure(services),
    );
    Ok(see_other(next, &[cookie]))
}

/// The built-in mode's form body.
#[derive(Default)]
struct ClientLogin {
    client_id: String,
    client_secret: Secret,
    next: Option<String>,
}

impl ClientLogin {
    fn parse(body: &[u8]) -> Self {
        let mut form = Self::default();
        for (key, value) in form_urlencoded::parse(body) {
            match key.as_ref() {
                "client_id" => form.client_id = value.trim().to_string(),
                "client_secret" => form.client_secret = Secret::new(value),
                "next" => form.next = Some(value.into_owned()),
                _ => {}
            }
        }
        form
    }
}

async fn builtin_login(AxumState(services): AxumState<Services>, body: Bytes) -> Response {
    let auth = services.gate.auth();
    let form = ClientLogin::parse(&body);
    let next = safe_next(form.next.as_deref());
    if auth.settings().mode != AuthMode::Builtin {
        return see_other(&session::login_url(&next), &[]);
    }
    let client_id = form.client_id.as_str();
    let refusal = match issue_builtin_token(auth, client_id, &form.client_secret).await {
        Ok(token) => match start_session(&services, &token, &next).await {
            Ok(response) => return response,
            Err(reason) => reason,
        },
        Err(reason) => reason,
    };
    tracing::info!(client = %client_id, reason = %refusal, "console sign-in refused");
    builtin_form(
        &next,
        Some("The client id or secret is not valid (or the client was revoked)."),
        StatusCode::UNAUTHORIZED,
    )
}

/// A token of the built-in authorization server for a machine client, as its token endpoint
/// would issue one; the reason otherwise (for the log: the page says less).
async fn issue_builtin_token(
    auth: &Auth,
    client_id: &str,
    secret: &Secret,
) -> Result<Secret, String> {
    auth.issue_client_token(client_id, secret.expose())
        .await
        .map(|issued| issued.access_token)
        .map_err(|e| e.to_string())
}

async fn logout(AxumState(services): AxumState<Services>, headers: HeaderMap) -> Response {
    if let Some(value) = session::read_cookie(&headers, SESSION_COOKIE) {
        services
            .gate
            .auth()
            .end_session(value.trim().trim_matches('"'));
    }
    let clear = session::clear_cookie(SESSION_COOKIE, "/", session::secure(&services));
    let target = if services.gate.auth().enabled() {
        LOGIN_PATH
    } else {
        session::HOME
    };
    see_other(target, &[clear])
}

fn builtin_form(next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let body: Markup = html! {
        section.login aria-labelledby="login-title" {
            h1 #login-title { "Sign in" }
            p {
                "This server issues its own tokens to machine clients. Sign in with a client's id "
                "and secret; an administrator makes one with "
                code { "alula auth create-client NAME --role viewer" }
                " (the secret is printed once)."
            }
            @if let Some(error) = error {
                p.notice.error #login-error role="alert" { (error) }
            }
            form.login-form method="post" action=(LOGIN_PATH) {
                input type="hidden" name="next" value=(next);
                label for="client-id" { "Client id" }
                input #client-id name="client_id" type="text" autocomplete="username" required;
                label for="client-secret" { "Client secret" }
                input #client-secret name="client_secret" type="password"
                    autocomplete="current-password" required;
                button.primary #login type="submit" { "Sign in" }
            }
        }
    };
    (
        status,
        shell::page("Sign in", &[Crumb::here("Sign in")], body),
    )
        .into_response()
}

/// A page saying why a sign-in did not happen.
fn refused(status: StatusCode, message: &str) -> Response {
    let body = html! {
        section.error-page role="alert" {
            h1 { "Not signed in" }
            p.error-message { (message) }
            p { a href=(LOGIN_PATH) { "Sign in again" } }
        }
    };
    (status, shell::page("Not signed in", &[], body)).into_response()
}

fn with_cookies(mut response: Response, cookies: &[String]) -> Response {
    for cookie in cookies {
        if let Ok(value) = axum::http::HeaderValue::from_str(cookie) {
            response
                .headers_mut()
                .append(axum::http::header::SET_COOKIE, value);
        }
    }
    response
}
