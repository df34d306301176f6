//! What the admin service needs to know about its deployment.

use std::path::PathBuf;
use std::time::Duration;

/// The flyteidl messages of the execution settings below, for configuration files to name.
pub use alula_idl::flyteidl::admin::{TaskResourceAttributes, WorkflowExecutionConfig};

#[derive(Clone, Debug)]
pub struct AdminConfig {
    /// Every project has these domains (flyteadmin's `domains` setting).
    pub domains: Vec<String>,
    /// Projects created at startup when missing.
    pub default_projects: Vec<String>,
    /// Root folder of the server's local state; the default object storage (`storage`).
    pub storage_root: PathBuf,
    /// Where code bundles, offloaded literals and execution data live: `storage_root` by
    /// default, an S3-compatible bucket when the server's `storage_url` names one.
    pub storage: alula_storage::Storage,
    /// Base of the signed upload URLs handed to clients, e.g. `http://127.0.0.1:8088`.
    pub public_http_url: String,
    /// HMAC key signing upload URLs; URLs signed with another key are refused.
    pub signing_key: Vec<u8>,
    /// Earlier signing keys whose URLs are still accepted (a rotation without downtime: the new
    /// key signs, URLs handed out before it still work until they expire).
    pub previous_signing_keys: Vec<Vec<u8>>,
    /// Who callers are (off, the built-in authorization server, or an OIDC provider).
    pub auth: crate::auth::AuthSettings,
    /// TLS on both ports, when set.
    pub tls: Option<crate::tls::TlsFiles>,
    /// Which `Host` and `Origin` headers the HTTP port answers (see [`crate::guard`]).
    pub http_access: HttpAccess,
    /// The longest validity a client may ask of an upload URL (flyteadmin: 1 hour).
    pub max_upload_expiry: Duration,
    /// Largest upload body accepted by the HTTP endpoint.
    pub max_upload_bytes: usize,
    /// A literal map (execution inputs, node and task inputs and outputs) larger than this,
    /// encoded, is written to `storage` and its row keeps only the URI.
    pub max_inline_literal_bytes: usize,
    /// The largest stored literal map that GetExecutionData and the node and task variants read
    /// back and return in full (flyteadmin's `maxDownloadMBs`); larger ones come as a URL only.
    pub max_download_bytes: u64,
    /// The server's execution settings, the last level of Flyte's precedence (flyteadmin's
    /// top-level config): used where the request, launch plan and matchable attributes are empty.
    pub execution_defaults: WorkflowExecutionConfig,
    /// The server's task resource defaults and limits, under `TASK_RESOURCE` attributes.
    pub task_resources: TaskResourceAttributes,
    /// Email, Slack and PagerDuty notifications on execution phases (see [`crate::notify`]).
    pub notifications: crate::notify::NotificationsConfig,
    /// The task agents `AgentMetadataService` lists (see [`crate::agents`]); none by default.
    pub agents: crate::agents::AgentDirectory,
}

impl AdminConfig {
    /// Flyte's defaults: project `flytesnacks` with domains development, staging and production.
    pub fn new(storage_root: PathBuf, public_http_url: String, signing_key: Vec<u8>) -> Self {
        Self {
            domains: ["development", "staging", "production"]
                .map(String::from)
                .to_vec(),
            default_projects: vec!["flytesnacks".to_string()],
            storage: alula_storage::Storage::local(&storage_root),
            storage_root,
            http_access: HttpAccess::for_public_url(&public_http_url),
            public_http_url,
            signing_key,
            previous_signing_keys: Vec::new(),
            auth: Default::default(),
            tls: None,
            max_upload_expiry: Duration::from_secs(3600),
            max_upload_bytes: 1 << 30,
            max_inline_literal_bytes: 1 << 20,
            max_download_bytes: 10 << 20,
            execution_defaults: Default::default(),
            task_resources: Default::default(),
            notifications: Default::default(),
            agents: Default::default(),
        }
    }
}

/// The names and origins the HTTP port serves. A web page can send requests to any address, and
/// a DNS-rebinding page does so under its own host name, so the port answers only names it was
/// configured for and refuses cross-origin callers (see [`crate::guard`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpAccess {
    /// Host names the `Host` header may carry, with any port, compared without case; `*` allows
    /// any. Loopback names and IP addresses are always allowed (see [`crate::guard`]).
    pub allowed_hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`) whose pages may call the API besides the server's own
    /// (a request whose `Origin` is its own `Host`); `*` allows any.
    pub allowed_origins: Vec<String>,
}

impl HttpAccess {
    /// The host and the origin of the public URL (signed URLs point there, so it must answer).
    pub fn for_public_url(public_http_url: &str) -> Self {
        let mut access = Self {
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
        };
        access.allow_url(public_http_url);
        access
    }

    /// Adds the host and origin of `url` (`scheme://host[:port][/...]`); ignores anything else.
    pub fn allow_url(&mut self, url: &str) {
        let Ok(uri) = url.parse::<axum::http::Uri>() else {
            return;
        };
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return;
        };
        let host = authority.host().to_ascii_lowercase();
        if !self.allowed_hosts.contains(&host) {
            self.allowed_hosts.push(host);
        }
        let origin = format!("{scheme}://{}", authority.as_str().to_ascii_lowercase());
        if !self.allowed_origins.contains(&origin) {
            self.allowed_origins.push(origin);
        }
    }
}
