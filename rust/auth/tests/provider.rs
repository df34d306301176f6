//! Discovery and remote key sets against a small HTTP provider, and the provider client's CA
//! handling.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use alula_auth::keys::{JwkSet, SigningKey};
use alula_auth::oidc::{discover, http_client, DiscoveryError};
use alula_auth::verify::{KeySource, RemoteJwks, TokenError, Verifier};
use axum::http::{header, StatusCode};
use axum::routing::get;
use axum::Router;
use common::*;
use serde_json::json;

fn json_body(body: String) -> ([(header::HeaderName, &'static str); 1], String) {
    ([(header::CONTENT_TYPE, "application/json")], body)
}

struct Provider {
    base: String,
    jwks_hits: Arc<AtomicUsize>,
}

/// Serves a discovery document naming `issuer` (the server's own address when `None`), the
/// JWKS of `keys`, and a few broken documents.
async fn provider(keys: JwkSet, issuer: Option<&str>) -> Provider {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer = issuer.unwrap_or(&base).to_string();
    let discovery = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "device_authorization_endpoint": format!("{base}/device"),
        "scopes_supported": ["openid", "offline_access"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "email"],
    })
    .to_string();
    let jwks = serde_json::to_string(&keys).unwrap();
    let jwks_hits = Arc::new(AtomicUsize::new(0));
    let hits = Arc::clone(&jwks_hits);
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { json_body(discovery) }),
        )
        .route(
            "/jwks",
            get(move || async move {
                hits.fetch_add(1, Ordering::SeqCst);
                json_body(jwks)
            }),
        )
        .route(
            "/broken/.well-known/openid-configuration",
            get(|| async { json_body("<html>login</html>".into()) }),
        )
        .route(
            "/huge/.well-known/openid-configuration",
            get(|| async { json_body(" ".repeat(2 * 1024 * 1024)) }),
        )
        .route("/down/jwks", get(|| async { StatusCode::BAD_GATEWAY }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Provider { base, jwks_hits }
}

#[tokio::test]
async fn discovery_reads_the_providers_endpoints() {
    let provider = provider(JwkSet::default(), None).await;
    let http = http_client(None).unwrap();
    // A trailing slash on the configured issuer does not matter.
    let metadata = discover(&http, &format!("{}/", provider.base))
        .await
        .unwrap();
    assert_eq!(metadata.issuer, provider.base);
    assert_eq!(metadata.jwks_uri, format!("{}/jwks", provider.base));
    assert_eq!(metadata.token_endpoint, format!("{}/token", provider.base));
    assert_eq!(
        metadata.device_authorization_endpoint,
        format!("{}/device", provider.base)
    );
    assert_eq!(metadata.code_challenge_methods_supported, ["S256"]);
}

#[tokio::test]
async fn discovery_refuses_another_issuer_and_garbage() {
    let http = http_client(None).unwrap();
    let impostor = provider(JwkSet::default(), Some("https://accounts.example")).await;
    let err = discover(&http, &impostor.base).await.unwrap_err();
    assert!(
        matches!(&err, DiscoveryError::Invalid { reason, .. } if reason.contains("accounts.example")),
        "{err}"
    );
    let err = discover(&http, &format!("{}/broken", impostor.base))
        .await
        .unwrap_err();
    assert!(matches!(err, DiscoveryError::Invalid { .. }), "{err}");
    let err = discover(&http, &format!("{}/huge", impostor.base))
        .await
        .unwrap_err();
    assert!(matches!(err, DiscoveryError::Fetch { .. }), "{err}");
    let err = discover(&http, &format!("{}/missing", impostor.base))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DiscoveryError::Fetch { reason, .. } if reason.contains("404")),
        "{err}"
    );
    // Nothing listening.
    let err = discover(&http, "http://127.0.0.1:9").await.unwrap_err();
    assert!(matches!(err, DiscoveryError::Fetch { .. }), "{err}");
}

#[tokio::test]
async fn remote_jwks_feed_the_verifier() {
    let key = SigningKey::generate().unwrap();
    let provider = provider(JwkSet::of([&key]), None).await;
    let http = http_client(None).unwrap();
    let metadata = discover(&http, &provider.base).await.unwrap();
    let remote = RemoteJwks {
        http: http.clone(),
        jwks_uri: metadata.jwks_uri.clone(),
    };
    assert_eq!(remote.load().await.unwrap(), JwkSet::of([&key]));

    let mut config = config();
    config.issuer = metadata.issuer.clone();
    let verifier = Verifier::new(config, Arc::new(remote));
    let mut claims = user_claims();
    claims["iss"] = provider.base.clone().into();
    for _ in 0..3 {
        let principal = verifier
            .verify(&es256(&key, Some(&key.kid), &claims))
            .await
            .unwrap();
        assert_eq!(principal.issuer, provider.base);
    }
    // Fetched once for the first token (twice counting the direct load above).
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), 2);

    let down = Verifier::new(
        common::config(),
        Arc::new(RemoteJwks {
            http,
            jwks_uri: format!("{}/down/jwks", provider.base),
        }),
    );
    let result = down
        .verify(&es256(&key, Some(&key.kid), &user_claims()))
        .await;
    assert!(
        matches!(&result, Err(TokenError::Keys(reason)) if reason.contains("502")),
        "{result:?}"
    );
}

/// An HTTPS server (certificate by the test CA) answering every request with a discovery
/// document naming itself.
async fn https_provider(fixtures: &Path) -> String {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let certs = CertificateDer::pem_file_iter(fixtures.join("test-server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixtures.join("test-server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    let body = json!({"issuer": base, "jwks_uri": format!("{base}/jwks")}).to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, body) = (acceptor.clone(), body.clone());
            tokio::spawn(async move {
                // A client that distrusts the certificate ends the handshake: nothing to serve.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    base
}

#[tokio::test]
async fn https_providers_are_trusted_through_the_ca_file() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let base = https_provider(&fixtures).await;
    let trusting = http_client(Some(&fixtures.join("test-ca.pem"))).unwrap();
    let metadata = discover(&trusting, &base).await.unwrap();
    assert_eq!(metadata.jwks_uri, format!("{base}/jwks"));
    // Without the CA the web PKI roots do not vouch for the test certificate.
    let err = discover(&http_client(None).unwrap(), &base)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DiscoveryError::Fetch { reason, .. } if reason.contains("UnknownIssuer")),
        "{err}"
    );
}

#[test]
fn the_provider_client_trusts_an_extra_ca_file() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    http_client(Some(&fixtures.join("test-ca.pem"))).unwrap();

    let missing = http_client(Some(&fixtures.join("no-such-ca.pem"))).unwrap_err();
    assert!(matches!(missing, DiscoveryError::Ca { .. }), "{missing}");
    // A PEM file without certificates (the RSA key fixture is not even PEM).
    let empty = http_client(Some(&fixtures.join("rsa-2048-test-key.pkcs1.b64"))).unwrap_err();
    assert!(
        matches!(&empty, DiscoveryError::Ca { reason, .. } if reason.contains("no PEM certificate")),
        "{empty}"
    );
}
