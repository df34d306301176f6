//! The browser's session: the `alula_session` cookie (an access token, which the HTTP
//! `AuthLayer` reads like a bearer token, or a handle to one kept server-side when the token is
//! too big for a cookie: `alula_admin::auth::sessions`), and the rule in front of every page and action when
//! authentication is on: a caller who has not proved who they are is sent to the login page
//! (pages) or answered 401 (the JSON actions), and a refused session cookie (expired, say) is
//! cleared on the way.

pub use alula_admin::auth::credentials::read_cookie;
use alula_auth::Caller;
use axum::extract::{Request, State as AxumState};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tonic::Code;

use crate::api::Services;

/// The session cookie (the design's contract; the HTTP layer reads the same name).
pub const SESSION_COOKIE: &str = alula_admin::auth::SESSION_COOKIE;

/// Where a login without (an acceptable) `next` lands.
pub const HOME: &str = "/console";

tokio::task_local! {
    /// The display name of the signed-in caller while a page renders, for the header
    /// ([`crate::shell::page`] is called from many handlers and from error responses, none of
    /// which hold the caller; the login rule below scopes every page's rendering).
    static SIGNED_IN: Option<String>;
}

/// The signed-in user's name, when the page being rendered has one.
pub fn signed_in() -> Option<String> {
    SIGNED_IN.try_with(Clone::clone).ok().flatten()
}

/// Whether cookies must carry `Secure`: the console is served over https.
pub fn secure(services: &Services) -> bool {
    services.config.public_http_url.starts_with("https://")
}

/// `Set-Cookie` of a cookie holding `value` for `max_age_secs`, HttpOnly and SameSite=Lax.
pub fn cookie(name: &str, value: &str, path: &str, max_age_secs: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}")
}

/// `Set-Cookie` that removes cookie `name` (set on `path`).
pub fn clear_cookie(name: &str, path: &str, secure: bool) -> String {
    cookie(name, "", path, 0, secure)
}

/// `next` when it is a page of the console (a path under `/console` on this origin), else the
/// projects page: a login link must not send the browser to another site once signed in.
pub fn safe_next(next: Option<&str>) -> String {
    let Some(next) = next else {
        return HOME.to_string();
    };
    let under_console = next == HOME
        || next.starts_with("/console/")
        || next.starts_with("/console?")
        || next.starts_with("/console#");
    // `//host` and `/\host` are other origins to browsers; control characters and non-ASCII
    // could not go into a `Location` header anyway.
    let plain = next.bytes().all(|b| b.is_ascii_graphic()) && !next.contains('\\');
    if under_console && plain && !next.starts_with("//") {
        next.to_string()
    } else {
        HOME.to_string()
    }
}

/// The login page's URL that comes back to `next` afterwards.
pub fn login_url(next: &str) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("next", next)
        .finish();
    format!("/console/login?{query}")
}

/// A `303 See Other` to `location`, with `Set-Cookie` headers.
pub fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, location);
    }
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The rule in front of the console's pages and actions (not its assets and login routes).
pub async fn require_login(
    AxumState(services): AxumState<Services>,
    request: Request,
    next: Next,
) -> Response {
    let caller = services.caller_of(request.extensions());
    let reason = match &caller {
        Caller::Unchecked => return next.run(request).await,
        Caller::Authenticated(principal) => {
            // The readable name, for the header only; records use the subject.
            let name = principal.label().to_string();
            return SIGNED_IN.scope(Some(name), next.run(request)).await;
        }
        Caller::Anonymous => "sign in to use the console".to_string(),
        Caller::Refused(reason) => format!("the session was refused ({reason}); sign in again"),
    };
    let secure = secure(&services);
    let mut cookies = Vec::new();
    if matches!(caller, Caller::Refused(_)) {
        cookies.push(clear_cookie(SESSION_COOKIE, "/", secure));
    }
    let is_page =
        matches!(*request.method(), Method::GET | Method::HEAD) && !is_action(request.uri().path());
    if is_page {
        let here = request.uri().path_and_query().map_or(HOME, |p| p.as_str());
        return see_other(&login_url(&safe_next(Some(here))), &cookies);
    }
    let body = serde_json::json!({ "code": Code::Unauthenticated as i32, "message": reason });
    let mut response = (
        StatusCode::UNAUTHORIZED,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::WWW_AUTHENTICATE, "Bearer"),
        ],
        body.to_string(),
    )
        .into_response();
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

fn is_action(path: &str) -> bool {
    path.starts_with("/console/actions/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_in_the_console() {
        for good in [
            "/console",
            "/console/projects/p/domains/d/executions?phase=FAILED&x=%2F",
            "/console?x=1",
        ] {
            assert_eq!(safe_next(Some(good)), good);
        }
        for bad in [
            "//evil.example",
            "https://evil",
            "/\\evil.example",
            "/consolex",
            "/console/\u{1}x",
            "/console/é",
            "javascript:alert(1)",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), HOME, "{bad:?}");
        }
        assert_eq!(safe_next(None), HOME);
    }

    #[test]
    fn cookies_are_read_and_written() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; alula_session=tok.en; b=2"),
        );
        assert_eq!(read_cookie(&headers, SESSION_COOKIE), Some("tok.en"));
        assert_eq!(read_cookie(&headers, "c"), None);
        assert_eq!(
            cookie(SESSION_COOKIE, "v", "/", 60, true),
            "alula_session=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(clear_cookie(SESSION_COOKIE, "/", false).contains("Max-Age=0"));
        assert_eq!(
            login_url("/console/a?b=c"),
            "/console/login?next=%2Fconsole%2Fa%3Fb%3Dc"
        );
    }
}
