//! An identity provider's discovery document (`/.well-known/openid-configuration`), and the
//! HTTP client that fetches it and its JWKS (trusting an extra CA when configured).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("fetching {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("{url} is not a discovery document: {reason}")]
    Invalid { url: String, reason: String },
    #[error("the CA file {path}: {reason}")]
    Ca { path: String, reason: String },
}

/// The fields of RFC 8414 / OpenID Connect Discovery that Alula uses or passes on to clients.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    #[serde(default)]
    pub authorization_endpoint: String,
    #[serde(default)]
    pub token_endpoint: String,
    #[serde(default)]
    pub jwks_uri: String,
    #[serde(default)]
    pub device_authorization_endpoint: String,
    #[serde(default)]
    pub userinfo_endpoint: String,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    #[serde(default)]
    pub response_types_supported: Vec<String>,
    #[serde(default)]
    pub grant_types_supported: Vec<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
}

/// How long one request to the provider may take, connecting included.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Discovery documents and key sets are a few kilobytes; more is not a provider talking.
const MAX_BODY: usize = 1024 * 1024;

/// The certificates of a PEM file (at least one).
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, DiscoveryError> {
    let ca_error = |reason: String| DiscoveryError::Ca {
        path: path.display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| ca_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ca_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(ca_error("holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// An HTTP client for the provider: rustls with the web PKI roots plus `ca_file` (PEM), if any.
pub fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client, DiscoveryError> {
    https_client(ca_file, TIMEOUT)
}

/// An HTTPS client with `timeout` (for connecting and for each request): rustls with ring and
/// the web PKI roots plus `ca_file` (PEM), if any. The provider's client and admin's
/// notification webhooks are both this.
pub fn https_client(
    ca_file: Option<&Path>,
    timeout: std::time::Duration,
) -> Result<reqwest::Client, DiscoveryError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        for cert in read_ca_file(path)? {
            roots.add(cert).map_err(|e| DiscoveryError::Ca {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        }
    }
    let build_error = |reason: String| DiscoveryError::Fetch {
        url: "(client setup)".into(),
        reason,
    };
    // The ring provider explicitly: reqwest's own default would be aws-lc, which this
    // workspace does not build.
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| build_error(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(|e| build_error(e.to_string()))
}

/// An HTTP error with its causes (reqwest's own message is only "error sending request"); the
/// URL is left out as the caller names it already.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The body of a successful GET of `url`, at most [`MAX_BODY`] bytes.
pub(crate) async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, DiscoveryError> {
    let fetch_error = |reason: String| DiscoveryError::Fetch {
        url: url.to_string(),
        reason,
    };
    let mut response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| fetch_error(describe(e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(fetch_error(format!("HTTP {status}")));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| fetch_error(describe(e)))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(fetch_error(format!(
                "the response is over {MAX_BODY} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Fetches `{issuer}/.well-known/openid-configuration` and checks that its `issuer` is `issuer`.
pub async fn discover(
    http: &reqwest::Client,
    issuer: &str,
) -> Result<ProviderMetadata, DiscoveryError> {
    let issuer = issuer.trim_end_matches('/');
    let url = format!("{issuer}/.well-known/openid-configuration");
    let body = fetch(http, &url).await?;
    let invalid = |reason: String| DiscoveryError::Invalid {
        url: url.clone(),
        reason,
    };
    let metadata: ProviderMetadata =
        serde_json::from_slice(&body).map_err(|e| invalid(e.to_string()))?;
    // OpenID Connect Discovery §4.3: the document must name the issuer it was fetched for, or
    // tokens from some other issuer could pass as this one's.
    if metadata.issuer.trim_end_matches('/') != issuer {
        return Err(invalid(format!(
            "it names the issuer {:?}, not {issuer:?}",
            metadata.issuer
        )));
    }
    if metadata.jwks_uri.is_empty() {
        return Err(invalid("it has no jwks_uri".into()));
    }
    Ok(metadata)
}
