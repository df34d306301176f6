//! Where a request carries its token: `Authorization: Bearer <jwt>` (or the metadata key the
//! public client config advertises, e.g. flytekit's `flyte-authorization`), else the console's
//! session cookie.

use axum::http::{header, HeaderMap};

use super::SESSION_COOKIE;

/// What credentials a request presents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Presented<'a> {
    /// Neither an authorization header nor a session cookie.
    Nothing,
    /// An authorization header of another scheme (or unreadable): nothing this server accepts.
    NotBearer,
    Bearer(&'a str),
}

/// The bearer token of `headers`: from `metadata_key` or `authorization` (a header of either
/// with the `Bearer` scheme wins over one of another scheme, which a proxy in between may have
/// set), else from the session cookie.
pub(crate) fn presented<'a>(headers: &'a HeaderMap, metadata_key: &str) -> Presented<'a> {
    let mut keys = vec![header::AUTHORIZATION.as_str()];
    // Header names are case-insensitive (and gRPC metadata keys lowercase).
    let metadata_key = metadata_key.trim();
    if !metadata_key.is_empty() && !metadata_key.eq_ignore_ascii_case(keys[0]) {
        keys.insert(0, metadata_key);
    }
    let mut other_scheme = false;
    for key in keys {
        for value in headers.get_all(key) {
            match value.to_str().ok().and_then(bearer_token) {
                Some(token) => return Presented::Bearer(token),
                None => other_scheme = true,
            }
        }
    }
    if other_scheme {
        return Presented::NotBearer;
    }
    match session_cookie(headers) {
        Some(token) => Presented::Bearer(token),
        None => Presented::Nothing,
    }
}

/// `Bearer <token>`, the scheme case-insensitive (RFC 7235).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// The value of the session cookie, from any `Cookie` header.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    read_cookie(headers, SESSION_COOKIE)
        .map(|value| value.trim().trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// The value of cookie `name` in the request's `Cookie` headers (the console reads its login
/// cookie with this too).
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a panic is how a test reports failure"
    )]

    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn bearer_from_either_header_any_case() {
        let key = "flyte-authorization";
        assert_eq!(
            presented(&headers(&[("authorization", "Bearer abc")]), key),
            Presented::Bearer("abc")
        );
        assert_eq!(
            presented(&headers(&[("flyte-authorization", "bearer  xyz ")]), key),
            Presented::Bearer("xyz")
        );
        // A proxy's Basic credentials do not hide the client's bearer token.
        assert_eq!(
            presented(
                &headers(&[
                    ("authorization", "Basic Zm9vOmJhcg=="),
                    ("flyte-authorization", "BEARER t")
                ]),
                key
            ),
            Presented::Bearer("t")
        );
        assert_eq!(
            presented(&headers(&[("authorization", "Basic Zm9vOmJhcg==")]), key),
            Presented::NotBearer
        );
        assert_eq!(
            presented(&headers(&[("authorization", "Bearer ")]), key),
            Presented::NotBearer
        );
        // Only the advertised key and `authorization` count.
        assert_eq!(
            presented(&headers(&[("x-token", "Bearer abc")]), key),
            Presented::Nothing
        );
    }

    #[test]
    fn session_cookie_when_no_header() {
        let key = "authorization";
        assert_eq!(
            presented(
                &headers(&[("cookie", "theme=dark; alula_session=tok.en.sig; other=1")]),
                key
            ),
            Presented::Bearer("tok.en.sig")
        );
        assert_eq!(
            presented(
                &headers(&[("cookie", "alula_sessionx=1; alula_session=")]),
                key
            ),
            Presented::Nothing
        );
        // The header wins over the cookie.
        assert_eq!(
            presented(
                &headers(&[("cookie", "alula_session=c"), ("authorization", "Bearer h")]),
                key
            ),
            Presented::Bearer("h")
        );
    }
}
