//! The server's security settings: the `[auth]` table, TLS files, and the rules checked before
//! anything binds (a server reachable from other machines must authenticate its callers unless
//! the settings say, in so many words, that it need not).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use alula_admin::auth::AuthMode;
use alula_admin::auth::AuthSettings;
use alula_admin::tls::TlsFiles;
use alula_auth::secret::Secret;
use alula_auth::{Binding, Role, Subject};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Deserializer};

use crate::FileConfig;

/// The longest clock skew `leeway_seconds` may allow: more would keep expired tokens alive.
pub const MAX_LEEWAY_SECONDS: u64 = 300;

/// The `[auth]` table (every key optional; see the crate's settings table).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthTable {
    pub mode: Option<AuthMode>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub cli_client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub console_client_id: Option<String>,
    /// Redacted in `Debug`: the settings are logged on errors.
    #[serde(default, deserialize_with = "secret")]
    pub console_client_secret: Option<Secret>,
    pub groups_claim: Option<String>,
    pub trust_username_claim: Option<bool>,
    pub authorization_metadata_key: Option<String>,
    pub token_lifetime_seconds: Option<u64>,
    pub leeway_seconds: Option<u64>,
    pub provider_ca_file: Option<PathBuf>,
    pub bindings: Option<Vec<BindingEntry>>,
}

/// One `[[auth.bindings]]` entry, as written; [`BindingEntry::to_binding`] checks it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingEntry {
    /// `user:NAME`, `group:NAME` or `client:ID`.
    pub subject: String,
    /// Default `*` (every project).
    #[serde(default = "any")]
    pub project: String,
    /// Default `*` (every domain).
    #[serde(default = "any")]
    pub domain: String,
    /// `viewer`, `runner`, `developer` or `admin`.
    pub role: String,
}

fn any() -> String {
    alula_auth::roles::ANY.to_string()
}

fn secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Secret>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.map(Secret::new))
}

impl BindingEntry {
    pub fn to_binding(&self) -> Result<Binding> {
        let subject = Subject::parse(&self.subject).with_context(|| {
            format!(
                "auth binding subject {:?} is none of user:NAME, group:NAME, client:ID",
                self.subject
            )
        })?;
        let role = Role::parse(&self.role).with_context(|| {
            format!(
                "auth binding role {:?} (subject {}) is none of viewer, runner, developer, admin",
                self.role, self.subject
            )
        })?;
        for (what, value) in [("project", &self.project), ("domain", &self.domain)] {
            if value.trim().is_empty() {
                bail!(
                    "auth binding of {}: empty {what} (use \"*\" for all)",
                    self.subject
                );
            }
        }
        Ok(Binding {
            subject,
            project: self.project.clone(),
            domain: self.domain.clone(),
            role,
        })
    }
}

/// `auth = off|builtin|oidc` as the environment writes it.
pub fn parse_mode(value: &str) -> Result<AuthMode> {
    match value.trim().to_ascii_lowercase().as_str() {
        "off" | "none" | "" => Ok(AuthMode::Off),
        "builtin" => Ok(AuthMode::Builtin),
        "oidc" => Ok(AuthMode::Oidc),
        other => bail!("ALULA_AUTH={other:?} is none of off, builtin, oidc"),
    }
}

/// How the settings and the CLI write a mode.
pub fn mode_name(mode: AuthMode) -> &'static str {
    match mode {
        AuthMode::Off => "off",
        AuthMode::Builtin => "builtin",
        AuthMode::Oidc => "oidc",
    }
}

/// A boolean variable: `1`, `true`, `yes`, `on` (any case) are true; `0`, `false`, `no`,
/// `off` false; anything else is an error rather than a silent guess.
pub fn parse_flag(name: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => bail!("{name}={value:?} is neither true nor false"),
    }
}

/// Whether `host` (the bind address setting) is reachable only from this machine. A wildcard
/// bind (`0.0.0.0`, `::`) listens on every interface: not loopback.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The authentication mode the settings ask for.
pub fn mode(file: &FileConfig) -> AuthMode {
    file.auth.as_ref().and_then(|a| a.mode).unwrap_or_default()
}

/// The TLS files, when both are set (one without the other is an error).
pub fn tls_files(file: &FileConfig) -> Result<Option<TlsFiles>> {
    match (&file.tls_cert, &file.tls_key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        })),
        (Some(_), None) => bail!("tls_cert is set without tls_key (ALULA_TLS_KEY): set both"),
        (None, Some(_)) => bail!("tls_key is set without tls_cert (ALULA_TLS_CERT): set both"),
    }
}

/// The rules checked before the server binds anything. `serves_api`: whether this process
/// answers the API (a propeller-only replica serves probes and metrics only).
pub fn check(file: &FileConfig, host: &str, serves_api: bool) -> Result<()> {
    tls_files(file)?;
    let mode = mode(file);
    if serves_api
        && mode == AuthMode::Off
        && !is_loopback(host)
        && !file.insecure_no_auth.unwrap_or(false)
    {
        bail!(
            "refusing to serve the API on {host} without authentication: anyone who reaches it \
             could run any code. Turn authentication on ([auth] mode = \"builtin\" or \"oidc\", \
             ALULA_AUTH, `alula start --auth`), listen on 127.0.0.1, or accept the risk \
             explicitly with insecure_no_auth = true (ALULA_INSECURE_NO_AUTH=1, \
             `alula start --insecure-no-auth`)"
        );
    }
    let Some(auth) = &file.auth else {
        return Ok(());
    };
    if mode == AuthMode::Oidc && auth.issuer.as_deref().is_none_or(|i| i.trim().is_empty()) {
        bail!("[auth] mode = \"oidc\" needs the provider's issuer URL: set issuer (ALULA_OIDC_ISSUER)");
    }
    if let Some(leeway) = auth.leeway_seconds {
        if leeway > MAX_LEEWAY_SECONDS {
            bail!("[auth] leeway_seconds = {leeway} is more than {MAX_LEEWAY_SECONDS}");
        }
    }
    if auth.token_lifetime_seconds == Some(0) {
        bail!("[auth] token_lifetime_seconds must be more than 0");
    }
    for entry in auth.bindings.iter().flatten() {
        entry.to_binding()?;
    }
    Ok(())
}

/// [`AuthSettings`] from the settings. The built-in issuer, when none is set, is the server's
/// public HTTP URL, known once the port is bound: [`builtin_issuer`] fills it in.
pub fn auth_settings(file: &FileConfig) -> Result<AuthSettings> {
    let mut settings = AuthSettings::default();
    let Some(auth) = &file.auth else {
        return Ok(settings);
    };
    settings.mode = auth.mode.unwrap_or_default();
    let set = |target: &mut String, value: &Option<String>| {
        if let Some(v) = value {
            *target = v.clone();
        }
    };
    set(&mut settings.issuer, &auth.issuer);
    set(&mut settings.audience, &auth.audience);
    set(&mut settings.cli_client_id, &auth.cli_client_id);
    set(&mut settings.redirect_uri, &auth.redirect_uri);
    set(&mut settings.console_client_id, &auth.console_client_id);
    set(&mut settings.groups_claim, &auth.groups_claim);
    settings.trust_username_claim = auth.trust_username_claim.unwrap_or(false);
    set(
        &mut settings.authorization_metadata_key,
        &auth.authorization_metadata_key,
    );
    if let Some(scopes) = &auth.scopes {
        settings.scopes = scopes.clone();
    }
    settings.console_client_secret = auth.console_client_secret.clone();
    if let Some(s) = auth.token_lifetime_seconds {
        settings.token_lifetime = Duration::from_secs(s);
    }
    if let Some(s) = auth.leeway_seconds {
        settings.leeway = Duration::from_secs(s);
    }
    settings.provider_ca_file = auth.provider_ca_file.clone();
    settings.bindings = auth
        .bindings
        .iter()
        .flatten()
        .map(BindingEntry::to_binding)
        .collect::<Result<_>>()?;
    settings.issuer = settings.issuer.trim_end_matches('/').to_string();
    Ok(settings)
}

/// The built-in server's issuer is the public HTTP URL (no trailing slash) unless one is set:
/// tokens name the server that issued them, and clients find `/oauth2/token` under it.
pub fn builtin_issuer(settings: &mut AuthSettings, public_http_url: &str) {
    if settings.mode == AuthMode::Builtin && settings.issuer.trim().is_empty() {
        settings.issuer = public_http_url.trim_end_matches('/').to_string();
    }
}

/// The `[auth]` variables over the file's table.
pub(crate) fn apply_env(file: &mut FileConfig) -> Result<()> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    type Field = fn(&mut AuthTable) -> &mut Option<String>;
    let strings: [(&str, Field); 4] = [
        ("ALULA_OIDC_ISSUER", |a| &mut a.issuer),
        ("ALULA_OIDC_AUDIENCE", |a| &mut a.audience),
        ("ALULA_OIDC_CLIENT_ID", |a| &mut a.cli_client_id),
        ("ALULA_CONSOLE_CLIENT_ID", |a| &mut a.console_client_id),
    ];
    for (name, field) in strings {
        if let Some(v) = var(name) {
            *field(file.auth.get_or_insert_with(Default::default)) = Some(v);
        }
    }
    if let Some(v) = var("ALULA_AUTH") {
        file.auth.get_or_insert_with(Default::default).mode = Some(parse_mode(&v)?);
    }
    if let Some(v) = var("ALULA_CONSOLE_CLIENT_SECRET") {
        file.auth
            .get_or_insert_with(Default::default)
            .console_client_secret = Some(Secret::new(v));
    }
    if let Some(v) = var("ALULA_INSECURE_NO_AUTH") {
        file.insecure_no_auth = Some(parse_flag("ALULA_INSECURE_NO_AUTH", &v)?);
    }
    if let Some(v) = var("ALULA_TLS_CERT") {
        file.tls_cert = Some(v.into());
    }
    if let Some(v) = var("ALULA_TLS_KEY") {
        file.tls_key = Some(v.into());
    }
    if let Some(v) = var("ALULA_PREVIOUS_SIGNING_KEYS") {
        file.previous_signing_keys = Some(crate::comma_list(&v));
    }
    if let Some(v) = var("ALULA_TASK_USER") {
        file.task_user = Some(v);
    }
    Ok(())
}
