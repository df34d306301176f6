//! Authentication: who a request comes from.
//!
//! - Off (`alula start` on loopback): every caller is [`Caller::Unchecked`] and may do anything.
//! - Built-in: this server is the OAuth2 authorization server of its machine clients
//!   (`alula auth create-client`): `POST /oauth2/token` (client credentials) issues short-lived
//!   ES256 JWTs, `GET /oauth2/jwks` publishes the keys ([`token_endpoint`]).
//! - OIDC: an external identity provider issues the tokens; they are checked against its JWKS.
//!
//! [`layer::AuthLayer`] reads the bearer token (or the console's session cookie) of every gRPC
//! and HTTP request and puts the [`Caller`] in its extensions; [`crate::authz`] decides.
//!
//! Which claims name a caller (`sub`; `email` only when verified; `preferred_username` only with
//! `trust_username_claim`), and how machine clients are told from people, is
//! [`alula_auth::identity`]'s business.

mod builtin;
pub mod credentials;
pub mod discovery;
pub mod layer;
pub mod sessions;
pub mod settings;
pub mod token_endpoint;

use std::sync::Arc;

use alula_auth::keys::JwkSet;
use alula_auth::oidc::ProviderMetadata;
use alula_auth::secret::Secret;
use alula_auth::verify::{RemoteJwks, Verifier, VerifierConfig};
pub use alula_auth::{Caller, Principal, PrincipalKind};
pub use builtin::{IssuedToken, TokenRefusal, MAX_TOKEN_LIFETIME, TOKEN_SCOPE};
pub use layer::{caller_of, AuthLayer};
pub use settings::{AuthMode, AuthSettings};

use crate::store::Store;

/// The subject every caller is when no one authenticates.
pub const ANONYMOUS_SUBJECT: &str = "anonymous";

/// The cookie the console's session travels in (an access token, or a handle to one kept
/// server-side when it is too big for a cookie: [`sessions`]; HttpOnly).
pub const SESSION_COOKIE: &str = "alula_session";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("authentication settings: {0}")]
    Settings(String),
    #[error("identity provider: {0}")]
    Provider(#[from] alula_auth::oidc::DiscoveryError),
    #[error("signing keys: {0}")]
    Keys(#[from] alula_auth::keys::KeyError),
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Authentication as configured: cheap to clone into every layer and service.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    settings: AuthSettings,
    store: Store,
    mode: Mode,
    sessions: sessions::Sessions,
}

enum Mode {
    Off,
    Builtin(builtin::Builtin),
    Oidc(Oidc),
}

struct Oidc {
    metadata: ProviderMetadata,
    verifier: Verifier,
}

// By hand: only what identifies the deployment (settings' own Debug redacts the console's
// secret; the keys and verifiers have nothing to show).
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("mode", &self.inner.settings.mode)
            .field("issuer", &self.issuer())
            .field("audience", &self.inner.settings.audience)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Authentication off: every caller [`Caller::Unchecked`].
    pub fn off(store: Store) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings: AuthSettings::default(),
                store,
                mode: Mode::Off,
                sessions: sessions::Sessions::default(),
            }),
        }
    }

    /// Authentication as `settings` say: for OIDC, fetches the provider's discovery document;
    /// for the built-in server, loads its signing keys (creating the first one).
    pub async fn new(settings: AuthSettings, store: Store) -> Result<Self, AuthError> {
        let mode = match settings.mode {
            AuthMode::Off => Mode::Off,
            AuthMode::Builtin => {
                Mode::Builtin(builtin::Builtin::start(&settings, store.clone()).await?)
            }
            AuthMode::Oidc => Mode::Oidc(discover_provider(&settings).await?),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                store,
                mode,
                sessions: sessions::Sessions::default(),
            }),
        })
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.inner.settings
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn enabled(&self) -> bool {
        !matches!(self.inner.mode, Mode::Off)
    }

    pub fn mode(&self) -> AuthMode {
        match self.inner.mode {
            Mode::Off => AuthMode::Off,
            Mode::Builtin(_) => AuthMode::Builtin,
            Mode::Oidc(_) => AuthMode::Oidc,
        }
    }

    /// Whose tokens are accepted: this server (built-in, its public URL without a trailing
    /// slash) or the provider; empty when authentication is off.
    pub fn issuer(&self) -> &str {
        match &self.inner.mode {
            Mode::Off => "",
            Mode::Builtin(builtin) => builtin.issuer(),
            Mode::Oidc(oidc) => &oidc.metadata.issuer,
        }
    }

    /// The identity provider's discovery document (OIDC mode), for the console's login.
    pub fn provider_metadata(&self) -> Option<&ProviderMetadata> {
        match &self.inner.mode {
            Mode::Oidc(oidc) => Some(&oidc.metadata),
            _ => None,
        }
    }

    /// A token for a machine client of the built-in server (client credentials).
    pub async fn issue_client_token(
        &self,
        client_id: &str,
        secret: &str,
    ) -> Result<IssuedToken, TokenRefusal> {
        match &self.inner.mode {
            Mode::Builtin(builtin) => builtin.issue(client_id, secret).await,
            _ => Err(TokenRefusal::NotIssuing),
        }
    }

    /// The public keys built-in tokens verify with (empty in the other modes).
    pub async fn jwks(&self) -> Result<JwkSet, AuthError> {
        match &self.inner.mode {
            Mode::Builtin(builtin) => builtin.jwks().await,
            _ => Ok(JwkSet::default()),
        }
    }

    /// A new signing key for the built-in server's tokens from now on (see
    /// `alula auth rotate-key`); returns its key id. Tokens signed before stay valid until they
    /// expire; every replica picks the new key up from the database.
    pub async fn rotate_signing_key(store: &Store) -> Result<String, AuthError> {
        builtin::rotate_signing_key(store).await
    }

    /// The caller a bearer token proves (its reason for refusal otherwise).
    pub async fn caller_of_token(&self, token: &str) -> Caller {
        let verified = match &self.inner.mode {
            Mode::Off => return Caller::Unchecked,
            Mode::Builtin(builtin) => builtin.verify(token).await,
            Mode::Oidc(oidc) => oidc.verifier.verify(token).await.map_err(|e| e.to_string()),
        };
        match verified {
            Ok(principal) => Caller::Authenticated(Arc::new(principal)),
            Err(reason) => Caller::Refused(reason),
        }
    }

    /// The caller of an HTTP or gRPC request: its `authorization` (or the advertised metadata
    /// key, e.g. `flyte-authorization`) bearer token, else the console's session cookie.
    /// [`Caller::Unchecked`] when authentication is off, [`Caller::Anonymous`] with neither.
    pub async fn caller(&self, headers: &axum::http::HeaderMap) -> Caller {
        if !self.enabled() {
            return Caller::Unchecked;
        }
        match credentials::presented(headers, &self.inner.settings.authorization_metadata_key) {
            credentials::Presented::Nothing => Caller::Anonymous,
            credentials::Presented::NotBearer => Caller::Refused(
                "the credentials are not a bearer token (send `authorization: Bearer <token>`)"
                    .into(),
            ),
            credentials::Presented::Bearer(token) => match self.session_token(headers, token) {
                Some(Ok(token)) => self.caller_of_token(token.expose()).await,
                Some(Err(reason)) => Caller::Refused(reason),
                None => self.caller_of_token(token).await,
            },
        }
    }

    /// The token behind a console session handle, when `presented` is the session cookie's
    /// handle (a handle in an `authorization` header is nothing: only the cookie carries one).
    fn session_token(
        &self,
        headers: &axum::http::HeaderMap,
        presented: &str,
    ) -> Option<Result<Secret, String>> {
        if !sessions::is_handle(presented) {
            return None;
        }
        let cookie = credentials::read_cookie(headers, SESSION_COOKIE)?;
        if cookie.trim().trim_matches('"') != presented {
            return None;
        }
        let now = alula_auth::keys::unix_now();
        Some(self.inner.sessions.token_of(presented, now).ok_or_else(|| {
            "the console session ended (or was started on another replica, or before a restart)"
                .to_string()
        }))
    }

    /// The console's session cookie value for `token` (valid until `expires_at`, unix
    /// seconds): the token, or a handle to it when it is too big for a cookie ([`sessions`]).
    pub fn session_cookie_value(&self, token: &str, expires_at: i64) -> Secret {
        let now = alula_auth::keys::unix_now();
        self.inner.sessions.cookie_value(token, expires_at, now)
    }

    /// Ends the console session whose cookie value is `value` (logout). A token in the cookie
    /// has nothing to end here: the browser drops the cookie.
    pub fn end_session(&self, value: &str) {
        if sessions::is_handle(value) {
            self.inner.sessions.end(value);
        }
    }
}

/// The provider's discovery document and a verifier of its tokens (keys from its `jwks_uri`).
async fn discover_provider(settings: &AuthSettings) -> Result<Oidc, AuthError> {
    if settings.issuer.trim().is_empty() {
        return Err(AuthError::Settings(
            "OIDC needs the identity provider's issuer URL".into(),
        ));
    }
    let http = alula_auth::oidc::http_client(settings.provider_ca_file.as_deref())?;
    let metadata = alula_auth::oidc::discover(&http, &settings.issuer).await?;
    if metadata.jwks_uri.is_empty() {
        return Err(AuthError::Settings(format!(
            "the identity provider {} publishes no jwks_uri",
            metadata.issuer
        )));
    }
    let config = VerifierConfig {
        issuer: metadata.issuer.clone(),
        audiences: vec![settings.audience.clone()],
        leeway: settings.leeway,
        groups_claim: settings.groups_claim.clone(),
    };
    let keys = RemoteJwks {
        http,
        jwks_uri: metadata.jwks_uri.clone(),
    };
    Ok(Oidc {
        metadata,
        verifier: Verifier::new(config, Arc::new(keys))
            .trusting_username_claim(settings.trust_username_claim),
    })
}
