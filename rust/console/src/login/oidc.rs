//! Signing in through the identity provider (OIDC mode): authorization code with PKCE.
//!
//! `GET /console/login` sends the browser to the provider's authorization endpoint with a fresh
//! `state` and S256 code challenge; the state, the verifier and where to go afterwards wait in
//! the short-lived `alula_login` cookie (HttpOnly, Path=/console). The provider sends the
//! browser back to `GET /console/oauth2/callback?code&state`: the state must be the cookie's
//! (else another site started this login, and nothing is set), the code is exchanged at the
//! token endpoint with the verifier, and the access token becomes the session once this
//! server accepts it as it would any bearer token.

use alula_admin::auth::Auth;
use alula_auth::oidc::ProviderMetadata;
use alula_auth::secret::Secret;
use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

/// The cookie holding a login in progress.
pub const LOGIN_COOKIE: &str = "alula_login";
/// How long a login may take at the provider.
pub const LOGIN_COOKIE_SECS: u64 = 600;
/// Where the provider sends the browser back, under the public HTTP URL.
pub const CALLBACK_PATH: &str = "/console/oauth2/callback";
/// What the console asks the provider for: an identity, its name and email, and its groups
/// (role bindings may name them; a provider that does not know the scope ignores it).
const SCOPES: &str = "openid profile email groups";

/// A login in progress, as its cookie keeps it.
#[derive(Debug, PartialEq, Eq)]
pub struct PendingLogin {
    pub state: String,
    pub verifier: Secret,
    pub next: String,
}

impl PendingLogin {
    /// A new login that lands on `next` (already checked to be a console page).
    pub fn start(next: String) -> Self {
        Self {
            state: random_token(),
            verifier: Secret::new(random_token()),
            next,
        }
    }

    /// The cookie's value: three base64url fields joined by dots (none of which base64url
    /// uses, and all of which cookies allow).
    pub fn cookie_value(&self) -> String {
        format!(
            "{}.{}.{}",
            self.state,
            self.verifier.expose(),
            URL_SAFE_NO_PAD.encode(&self.next)
        )
    }

    pub fn from_cookie(value: &str) -> Option<Self> {
        let mut fields = value.split('.');
        let (state, verifier, next) = (fields.next()?, fields.next()?, fields.next()?);
        if fields.next().is_some() || state.is_empty() || verifier.is_empty() {
            return None;
        }
        let next = String::from_utf8(URL_SAFE_NO_PAD.decode(next).ok()?).ok()?;
        Some(Self {
            state: state.to_string(),
            verifier: Secret::new(verifier),
            next,
        })
    }

    /// The S256 code challenge of the verifier (RFC 7636).
    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.expose().as_bytes()))
    }

    /// Whether the provider's `state` is this login's, compared in time independent of where
    /// they differ.
    pub fn matches(&self, state: &str) -> bool {
        let (a, b) = (self.state.as_bytes(), state.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// 32 random bytes, base64url: a state or a PKCE verifier (43 characters, as RFC 7636 asks).
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The console's redirect URI: the callback under the server's public URL.
pub fn redirect_uri(public_http_url: &str) -> String {
    format!("{}{CALLBACK_PATH}", public_http_url.trim_end_matches('/'))
}

/// The provider's authorization URL for `login`.
pub fn authorization_url(
    provider: &ProviderMetadata,
    client_id: &str,
    redirect_uri: &str,
    login: &PendingLogin,
) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", SCOPES)
        .append_pair("state", &login.state)
        .append_pair("code_challenge", &login.challenge())
        .append_pair("code_challenge_method", "S256")
        .finish();
    let separator = if provider.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{}{separator}{query}", provider.authorization_endpoint)
}

/// Why a sign-in through the provider failed, said to the person signing in (never a token,
/// code or secret).
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the identity provider is not available: {0}")]
    Provider(String),
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
}

impl LoginError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Provider(_) => StatusCode::BAD_GATEWAY,
            Self::Refused(_) => StatusCode::UNAUTHORIZED,
        }
    }
}

/// The token endpoint's answer (RFC 6749 §5.1); only what the console uses.
#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
}

/// The token endpoint's error (RFC 6749 §5.2).
#[derive(serde::Deserialize)]
struct TokenErrorAnswer {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// The token request's form body (RFC 6749 §4.1.3 with RFC 7636's verifier); the client
/// secret only for a confidential console client.
fn token_request(auth: &Auth, code: &str, redirect_uri: &str, login: &PendingLogin) -> String {
    let settings = auth.settings();
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("client_id", &settings.console_client_id)
        .append_pair("code_verifier", login.verifier.expose());
    if let Some(secret) = &settings.console_client_secret {
        form.append_pair("client_secret", secret.expose());
    }
    form.finish()
}

/// Exchanges `code` for an access token at the provider's token endpoint.
pub async fn exchange_code(
    auth: &Auth,
    provider: &ProviderMetadata,
    code: &str,
    redirect_uri: &str,
    login: &PendingLogin,
) -> Result<Secret, LoginError> {
    let settings = auth.settings();
    let http = alula_auth::oidc::http_client(settings.provider_ca_file.as_deref())
        .map_err(|e| LoginError::Provider(e.to_string()))?;
    let form = token_request(auth, code, redirect_uri, login);
    let response = http
        .post(&provider.token_endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(form)
        .send()
        .await
        // reqwest's errors name the URL, never the body: no code or secret in them.
        .map_err(|e| LoginError::Provider(e.without_url().to_string()))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| LoginError::Provider(e.without_url().to_string()))?;
    if !status.is_success() {
        let reason = serde_json::from_slice::<TokenErrorAnswer>(&body).map_or_else(
            |_| format!("the token endpoint answered {status}"),
            |e| match e.error_description.as_str() {
                "" => e.error,
                description => format!("{}: {description}", e.error),
            },
        );
        return Err(LoginError::Refused(reason));
    }
    let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|_| {
        LoginError::Provider("the token endpoint's answer has no access token".into())
    })?;
    Ok(Secret::new(answer.access_token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_login_survives_its_cookie() {
        let login = PendingLogin::start("/console/projects/p?domain=d".into());
        let value = login.cookie_value();
        assert!(value
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b','));
        let back = PendingLogin::from_cookie(&value).expect("parses");
        assert_eq!(back, login);
        assert!(back.matches(&login.state));
        assert!(!back.matches("other"));
        assert!(!back.matches(""));
        for bad in ["", "a.b", "a.b.c.d", ".b.Lw", "a..Lw", "a.b.!!"] {
            assert_eq!(PendingLogin::from_cookie(bad), None, "{bad:?}");
        }
        // Fresh every time.
        assert_ne!(PendingLogin::start(String::new()).state, login.state);
    }

    #[test]
    fn the_challenge_is_s256_of_the_verifier() {
        // RFC 7636 appendix B.
        let login = PendingLogin {
            state: "s".into(),
            verifier: Secret::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            next: String::new(),
        };
        assert_eq!(
            login.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let provider = ProviderMetadata {
            authorization_endpoint: "https://idp.example/authorize".into(),
            ..Default::default()
        };
        let url = authorization_url(&provider, "console", &redirect_uri("https://a.b/"), &login);
        assert_eq!(
            url,
            "https://idp.example/authorize?response_type=code&client_id=console\
             &redirect_uri=https%3A%2F%2Fa.b%2Fconsole%2Foauth2%2Fcallback\
             &scope=openid+profile+email+groups&state=s\
             &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
             &code_challenge_method=S256"
        );
    }
}
