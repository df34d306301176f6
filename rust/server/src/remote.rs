//! Role `propeller` with a `[control_plane]`: the propeller reaches admin over gRPC
//! (`alula.plane.v1.ControlPlaneService`, through `alula_plane::client::GrpcPlane`) with client
//! credentials from admin's authorization server, and opens no database: it needs admin's
//! address and an OAuth2 client, not the database's credentials.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alula_admin::app::{self, Instrumentation};
use alula_admin::config::HttpAccess;
use alula_idl::flyteidl::service::auth_metadata_service_client::AuthMetadataServiceClient;
use alula_idl::flyteidl::service::OAuth2MetadataRequest;
use alula_plane::client::{GrpcPlane, TokenSource};
use alula_plane::{PlaneError, PlaneResult};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use tokio::net::TcpListener;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::{propeller, stopped, Endpoints, FileConfig, DEFAULT_HOST};

/// `[control_plane]`: the admin a propeller-only server works for.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlPlaneConfig {
    /// Admin's gRPC endpoint: `https://admin.example:8089`, or `http://` on a trusted network
    /// (`ALULA_CONTROL_PLANE_ENDPOINT`).
    pub endpoint: String,
    /// The OAuth2 client the propeller authenticates as (client credentials); it needs the
    /// admin role on every project (`alula auth grant client:ID admin`). Unset: no token (an
    /// admin without authentication, on this machine).
    pub client_id: Option<String>,
    /// Its secret; better given as `ALULA_CONTROL_PLANE_CLIENT_SECRET` than in the file.
    pub client_secret: Option<String>,
    /// The token endpoint; by default the one admin's OAuth2 metadata names.
    pub token_url: Option<String>,
    /// PEM certificates to trust, besides the system's roots, for `https` endpoints.
    pub ca_file: Option<PathBuf>,
    /// Sends client credentials to a non-loopback `http://` endpoint. Off: such a setting is
    /// refused at start, since anyone on the path would read the secret's tokens.
    #[serde(default)]
    pub insecure_plaintext: bool,
}

/// Never prints the secret.
impl std::fmt::Debug for ControlPlaneConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlaneConfig")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .field("token_url", &self.token_url)
            .field("ca_file", &self.ca_file)
            .field("insecure_plaintext", &self.insecure_plaintext)
            .finish()
    }
}

/// The control plane at `config.endpoint`, connected lazily (admin may come up later).
pub async fn connect(config: &ControlPlaneConfig) -> Result<GrpcPlane> {
    let uri: http::Uri = config
        .endpoint
        .parse()
        .with_context(|| format!("[control_plane] endpoint {:?}", config.endpoint))?;
    let host = uri.host().unwrap_or_default().to_string();
    let mut endpoint = Endpoint::from_shared(config.endpoint.clone())
        .with_context(|| format!("[control_plane] endpoint {:?}", config.endpoint))?
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(60))
        .keep_alive_timeout(Duration::from_secs(20));
    let credentials = match (&config.client_id, &config.client_secret) {
        (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
        (None, None) => None,
        _ => bail!("[control_plane] needs both client_id and client_secret, or neither"),
    };
    match uri.scheme_str() {
        Some("https") => {
            let mut tls = ClientTlsConfig::new()
                .with_native_roots()
                .domain_name(host.clone());
            if let Some(path) = &config.ca_file {
                let pem = std::fs::read(path)
                    .with_context(|| format!("[control_plane] ca_file {}", path.display()))?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint
                .tls_config(tls)
                .context("[control_plane] TLS settings")?;
        }
        Some("http") => {
            if credentials.is_some()
                && !crate::security::is_loopback(&host)
                && !config.insecure_plaintext
            {
                bail!(
                    "[control_plane] endpoint {:?} is plain http to another machine: the \
                     propeller's tokens would cross the network readable. Use https (admin's \
                     tls_cert), or set insecure_plaintext = true on a network you trust",
                    config.endpoint
                );
            }
        }
        _ => bail!(
            "[control_plane] endpoint {:?} is neither http:// nor https://",
            config.endpoint
        ),
    }
    let channel = endpoint.connect_lazy();
    let token = match credentials {
        Some((client_id, client_secret)) => {
            let http =
                alula_auth::oidc::https_client(config.ca_file.as_deref(), Duration::from_secs(20))
                    .context("[control_plane] HTTP client for the token endpoint")?;
            Some(Arc::new(ClientCredentials {
                client_id,
                client_secret,
                token_url: config.token_url.clone(),
                channel: channel.clone(),
                http,
                cached: tokio::sync::Mutex::new(None),
            }) as Arc<dyn TokenSource>)
        }
        None => None,
    };
    Ok(GrpcPlane::new(channel, token))
}

/// OAuth2 client credentials (RFC 6749 §4.4), the token kept until a minute before it expires.
struct ClientCredentials {
    client_id: String,
    client_secret: String,
    token_url: Option<String>,
    /// Admin's channel, to read its OAuth2 metadata when no token URL is set.
    channel: Channel,
    http: reqwest::Client,
    cached: tokio::sync::Mutex<Option<(String, Instant)>>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

impl ClientCredentials {
    async fn token_url(&self) -> PlaneResult<String> {
        if let Some(url) = &self.token_url {
            return Ok(url.clone());
        }
        let metadata = AuthMetadataServiceClient::new(self.channel.clone())
            .get_o_auth2_metadata(OAuth2MetadataRequest {})
            .await
            .map_err(alula_plane::wire::status_to_error)?
            .into_inner();
        if metadata.token_endpoint.is_empty() {
            return Err(PlaneError::Refused {
                code: tonic::Code::FailedPrecondition,
                message: "admin's OAuth2 metadata names no token endpoint (is its \
                          authentication on?)"
                    .into(),
            });
        }
        Ok(metadata.token_endpoint)
    }
}

#[async_trait::async_trait]
impl TokenSource for ClientCredentials {
    async fn token(&self) -> PlaneResult<String> {
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = cached.as_ref() {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let url = self.token_url().await?;
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", &self.client_secret)
            .finish();
        let unavailable = |e: reqwest::Error| {
            PlaneError::Unavailable(format!("token endpoint {url}: {}", e.without_url()))
        };
        let response = self
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status();
        let text = response.text().await.map_err(unavailable)?;
        if status.is_server_error() {
            return Err(PlaneError::Unavailable(format!(
                "token endpoint {url} answered {status}"
            )));
        }
        if !status.is_success() {
            // The RFC 6749 error (invalid_client, ...), never the secret.
            return Err(PlaneError::Refused {
                code: tonic::Code::Unauthenticated,
                message: format!(
                    "token endpoint {url} refused client {:?} ({status}): {}",
                    self.client_id,
                    text.chars().take(300).collect::<String>()
                ),
            });
        }
        let answer: TokenAnswer = serde_json::from_str(&text).map_err(|e| {
            PlaneError::Unavailable(format!("token endpoint {url} answered no token: {e}"))
        })?;
        let lifetime = answer.expires_in.unwrap_or(300).saturating_sub(60).max(10);
        let until = Instant::now() + Duration::from_secs(lifetime);
        *cached = Some((answer.access_token.clone(), until));
        Ok(answer.access_token)
    }
}

/// A propeller-only server working for the admin at `control_plane`: no database, no API; the
/// HTTP port serves `/healthz`, `/readyz` and `/metrics`.
pub(crate) async fn run_propeller(
    file: FileConfig,
    settings: propeller::Settings,
    control_plane: ControlPlaneConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(&Endpoints),
) -> Result<()> {
    if file.database_url.is_some() {
        bail!(
            "database_url and [control_plane] both set: a propeller with a control plane reaches \
             admin at {} and opens no database; drop one",
            control_plane.endpoint
        );
    }
    let (storage_root, _) = crate::storage_and_database(&file)?;
    let host = file
        .host
        .clone()
        .unwrap_or_else(|| DEFAULT_HOST.to_string());
    let http_addr: SocketAddr = format!("{host}:{}", file.http_port.unwrap_or(8088)).parse()?;
    let storage = match &file.storage_url {
        Some(url) => alula_storage::Storage::from_url(url)?,
        None => alula_storage::Storage::local(&storage_root),
    };
    let plane = Arc::new(connect(&control_plane).await?);
    let instance_id = match file.instance_id.clone() {
        Some(id) => id,
        None => crate::role::default_instance_id(crate::Role::Propeller)?,
    };
    let mut instrumentation = Instrumentation::default();
    let parts = propeller::Parts {
        instance_id,
        storage_root: storage_root.clone(),
        storage,
        // Admin's public URL, where task events link attempts' logs.
        log_base_url: file.public_http_url.clone(),
    };
    let (propeller, _registry) =
        propeller::build(settings, parts, plane, &mut instrumentation).await?;
    let http = TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("binding HTTP to {http_addr}"))?;
    let http_bound = http.local_addr()?;
    let public_http_url = file
        .public_http_url
        .clone()
        .unwrap_or_else(|| crate::default_public_http_url(http_bound, false));
    let mut access = HttpAccess::for_public_url(&public_http_url);
    access
        .allowed_hosts
        .extend(file.allowed_hosts.clone().unwrap_or_default());
    let endpoints = Endpoints {
        grpc: None,
        http: http_bound,
        storage_root,
        database: format!("none: admin at {}", control_plane.endpoint),
        public_http_url,
        auth_mode: alula_admin::auth::AuthMode::Off,
        tls_cert: None,
    };
    tracing::info!(
        http = %endpoints.http,
        control_plane = %control_plane.endpoint,
        "alula-server (propeller) listening"
    );
    ready(&endpoints);

    let stop = crate::stop_switch(shutdown);
    let handle = propeller::spawn(propeller, stopped(&stop), stop.clone());
    let served = app::serve_probes(None, http, access, instrumentation, stopped(&stop)).await;
    stop.send_replace(true);
    propeller::join(handle).await;
    served?;
    Ok(())
}
