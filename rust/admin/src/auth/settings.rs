//! What a deployment says about authentication (the server's `[auth]` table).

use std::path::PathBuf;
use std::time::Duration;

use alula_auth::secret::Secret;
use alula_auth::Binding;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// No authentication: only for one person on loopback (`alula start`).
    #[default]
    Off,
    /// This server issues tokens to its machine clients (`alula auth create-client`).
    Builtin,
    /// An external OpenID Connect provider issues them.
    Oidc,
}

#[derive(Clone, Debug)]
pub struct AuthSettings {
    pub mode: AuthMode,
    /// The tokens' issuer: the provider's URL (OIDC); this server's public HTTP URL (built-in,
    /// filled in by the server when empty).
    pub issuer: String,
    /// The `aud` tokens must carry (and built-in tokens get).
    pub audience: String,
    /// The public client flytekit and flytectl use for `Pkce` and `DeviceFlow` (OIDC): what
    /// `GetPublicClientConfig` advertises.
    pub cli_client_id: String,
    /// Where those clients listen for the authorization code (flytekit's default).
    pub redirect_uri: String,
    /// Scopes clients ask for.
    pub scopes: Vec<String>,
    /// The console's client at the provider (OIDC): authorization code with PKCE, confidential
    /// when a secret is set.
    pub console_client_id: String,
    pub console_client_secret: Option<Secret>,
    /// The claim with the user's groups.
    pub groups_claim: String,
    /// Whether the provider's `preferred_username` may name people in `user:` bindings: only
    /// when people cannot choose or change their username there (default no: `user:` then
    /// matches the `sub`, or the email when the provider verified it).
    pub trust_username_claim: bool,
    /// Lifetime of built-in tokens.
    pub token_lifetime: Duration,
    /// Clock skew allowed when checking tokens (at most `alula_auth::verify::MAX_LEEWAY`).
    pub leeway: Duration,
    /// A CA (PEM) to trust when talking to the provider, besides the web PKI.
    pub provider_ca_file: Option<PathBuf>,
    /// Roles from the settings (the database may hold more: `alula auth grant`).
    pub bindings: Vec<Binding>,
    /// The metadata key clients put the bearer token under (flytekit reads it from the public
    /// client config). `authorization` is always accepted too.
    pub authorization_metadata_key: String,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            mode: AuthMode::Off,
            issuer: String::new(),
            audience: "alula".into(),
            cli_client_id: "flytectl".into(),
            redirect_uri: "http://localhost:53593/callback".into(),
            scopes: vec![
                "openid".into(),
                "profile".into(),
                "email".into(),
                "offline_access".into(),
            ],
            console_client_id: "alula-console".into(),
            console_client_secret: None,
            groups_claim: "groups".into(),
            trust_username_claim: false,
            token_lifetime: Duration::from_secs(3600),
            leeway: Duration::from_secs(30),
            provider_ca_file: None,
            bindings: Vec::new(),
            authorization_metadata_key: "authorization".into(),
        }
    }
}
