//! The built-in authorization server's HTTP endpoints: `POST /oauth2/token` (client
//! credentials, RFC 6749 §4.4: HTTP Basic as flytekit sends it — the id and secret URL-encoded
//! before base64 — or `client_id`/`client_secret` form fields) and `GET /oauth2/jwks`.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;

use super::{Auth, AuthMode, TokenRefusal};

/// A token request is a few short form fields.
const MAX_REQUEST_BYTES: usize = 16 << 10;

pub const TOKEN_PATH: &str = "/oauth2/token";
pub const JWKS_PATH: &str = "/oauth2/jwks";

/// The routes (none when the built-in server is not on).
pub fn router(auth: Auth) -> Router {
    if auth.mode() != AuthMode::Builtin {
        return Router::new();
    }
    Router::new()
        .route(TOKEN_PATH, post(token))
        .route(JWKS_PATH, get(jwks))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(auth)
}

/// An RFC 6749 §5.2 error answer.
#[derive(Debug)]
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn invalid_request(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description: description.into(),
        }
    }

    fn invalid_client(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: description.into(),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.error,
            "error_description": self.description,
        });
        let mut response = (self.status, no_store(), json(&body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"alula\""),
            );
        }
        response
    }
}

/// A JSON body (this crate's axum has no `Json`).
fn json(value: &impl serde::Serialize) -> impl IntoResponse {
    // Serializing these plain structures cannot fail; an empty object would be the fallback.
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
}

/// Token answers are never cached (RFC 6749 §5.1).
fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

async fn token(
    State(auth): State<Auth>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, OAuthError> {
    let body = body.map_err(|e| OAuthError::invalid_request(e.body_text()))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if content_type.as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let form = Form::parse(&body)?;
    match form.get("grant_type") {
        Some("client_credentials") => {}
        Some(_) => {
            return Err(OAuthError {
                status: StatusCode::BAD_REQUEST,
                error: "unsupported_grant_type",
                description: "this server grants client_credentials only".into(),
            })
        }
        None => return Err(OAuthError::invalid_request("grant_type is missing")),
    }
    let (client_id, secret) = client_credentials(&headers, &form)?;
    let issued =
        auth.issue_client_token(&client_id, &secret)
            .await
            .map_err(|refusal| match refusal {
                TokenRefusal::InvalidClient => OAuthError::invalid_client(refusal.to_string()),
                TokenRefusal::NotIssuing | TokenRefusal::Server(_) => {
                    tracing::error!(error = %refusal, "the token endpoint failed");
                    OAuthError {
                        status: StatusCode::INTERNAL_SERVER_ERROR,
                        error: "server_error",
                        // The cause (a database error, say) is in the log above, not for callers.
                        description: "the token cannot be issued now".into(),
                    }
                }
            })?;
    tracing::info!(client_id, "issued an access token");
    let body = serde_json::json!({
        "access_token": issued.access_token.expose(),
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    });
    Ok((StatusCode::OK, no_store(), json(&body)).into_response())
}

async fn jwks(State(auth): State<Auth>) -> Response {
    match auth.jwks().await {
        Ok(set) => (
            // Verifiers fetch again on a key id they do not know, so a short cache is enough.
            [(
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=60"),
            )],
            json(&set),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the signing keys");
            crate::rest::error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                tonic::Code::Unavailable,
                "the signing keys cannot be read now".into(),
            )
        }
    }
}

/// The client id and secret: HTTP Basic (RFC 6749 §2.3.1: each form-urlencoded, then
/// `id:secret` in base64) or the form's `client_id` and `client_secret`; never both.
fn client_credentials(headers: &HeaderMap, form: &Form) -> Result<(String, String), OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .map(|value| basic_credentials(value.to_str().unwrap_or_default()))
        .transpose()?;
    let form_id = form.get("client_id");
    let form_secret = form.get("client_secret");
    match (basic, form_id, form_secret) {
        (Some(_), _, Some(_)) => Err(OAuthError::invalid_request(
            "use one client authentication method: HTTP Basic or client_secret in the body",
        )),
        (Some((id, _)), Some(form_id), None) if form_id != id => Err(OAuthError::invalid_request(
            "client_id differs from the HTTP Basic client",
        )),
        (Some(pair), _, None) => Ok(pair),
        (None, Some(id), Some(secret)) => Ok((id.to_string(), secret.to_string())),
        (None, _, _) => Err(OAuthError::invalid_client(
            "client authentication is missing (HTTP Basic, or client_id and client_secret)",
        )),
    }
}

fn basic_credentials(value: &str) -> Result<(String, String), OAuthError> {
    let undecodable = || OAuthError::invalid_client("the HTTP Basic credentials cannot be decoded");
    let (scheme, encoded) = value.trim().split_once(' ').ok_or_else(undecodable)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            "client authentication must be HTTP Basic",
        ));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| undecodable())?;
    let decoded = String::from_utf8(decoded).map_err(|_| undecodable())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(undecodable)?;
    Ok((
        form_decode(id).ok_or_else(undecodable)?,
        form_decode(secret).ok_or_else(undecodable)?,
    ))
}

/// An `application/x-www-form-urlencoded` body, each name at most once (RFC 6749 §3.2).
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let body = std::str::from_utf8(body)
            .map_err(|_| OAuthError::invalid_request("the body is not UTF-8"))?;
        let mut pairs: Vec<(String, String)> = Vec::new();
        for pair in body.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (Some(name), Some(value)) = (form_decode(name), form_decode(value)) else {
                return Err(OAuthError::invalid_request(
                    "the body is not form-urlencoded",
                ));
            };
            if pairs.iter().any(|(seen, _)| *seen == name) {
                return Err(OAuthError::invalid_request(format!(
                    "the parameter {name} is given more than once"
                )));
            }
            pairs.push((name, value));
        }
        Ok(Self(pairs))
    }

    /// A parameter's value; an empty one counts as absent (RFC 6749 §3.1).
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// Form decoding: `+` is a space, `%XX` a byte; `None` for a broken escape or non-UTF-8 result.
fn form_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        match byte {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = tail.get(..2)?;
                let hex = std::str::from_utf8(hex).ok()?;
                bytes.push(u8::from_str_radix(hex, 16).ok()?);
                rest = &tail[2..];
                continue;
            }
            other => bytes.push(other),
        }
        rest = tail;
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a panic is how a test reports failure"
    )]

    use super::*;

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a%2Bb+c%3A%25").as_deref(), Some("a+b c:%"));
        assert_eq!(form_decode("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(form_decode("bad%2"), None);
        assert_eq!(form_decode("bad%zz"), None);
        assert_eq!(form_decode("%FF"), None);
    }

    #[test]
    fn basic_credentials_are_url_decoded() {
        // flytekit: base64(quote(id) + ":" + quote(secret)).
        let encoded = base64::engine::general_purpose::STANDARD.encode("my%20app:s%3Ae%2Fc");
        let (id, secret) = basic_credentials(&format!("Basic {encoded}")).unwrap();
        assert_eq!((id.as_str(), secret.as_str()), ("my app", "s:e/c"));
        assert!(basic_credentials("Bearer abc").is_err());
        assert!(basic_credentials("Basic !!!").is_err());
        let no_colon = base64::engine::general_purpose::STANDARD.encode("nocolon");
        assert!(basic_credentials(&format!("Basic {no_colon}")).is_err());
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(Form::parse(b"grant_type=a&grant_type=b").is_err());
        let form = Form::parse(b"grant_type=client_credentials&scope=").unwrap();
        assert_eq!(form.get("grant_type"), Some("client_credentials"));
        assert_eq!(form.get("scope"), None);
    }
}
