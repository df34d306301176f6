//! TLS on both ports: a test CA's certificate is served over the HTTP listener and the gRPC
//! incoming stream, replaced when its files change, kept when the new files are broken; a
//! client that never handshakes holds up nobody, is closed after the handshake timeout, and
//! handshakes beyond the cap wait (in the kernel's backlog) instead of failing or piling up.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alula_admin::tls::{
    GrpcIncoming, HandshakeLimits, HttpListener, ReloadingCertificate, TlsAcceptor, TlsError,
    TlsFiles, GRPC_ALPN, HTTP_ALPN,
};
use anyhow::Context as _;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;

/// A CA and a certificate it issued for 127.0.0.1 and localhost.
struct Pki {
    ca_pem: String,
    leaf_pem: String,
    leaf_key_pem: String,
    leaf_der: Vec<u8>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test CA"));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        Pki {
            ca_pem: ca.pem(),
            leaf_pem: leaf.pem(),
            leaf_key_pem: leaf_key.serialize_pem(),
            leaf_der: leaf.der().to_vec(),
        }
    }

    /// Writes the served pair (as a renewal would: the key first, then the certificate).
    fn install(&self, files: &TlsFiles) {
        std::fs::write(&files.key, &self.leaf_key_pem).unwrap();
        std::fs::write(&files.cert, &self.leaf_pem).unwrap();
    }

    fn client_config(&self, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![alpn.to_vec()];
        Arc::new(config)
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("alula-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn files(&self) -> TlsFiles {
        TlsFiles {
            cert: self.0.join("server.crt"),
            key: self.0.join("server.key"),
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn handshake(port: u16, pki: &Pki, alpn: &[u8]) -> anyhow::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let connector = tokio_rustls::TlsConnector::from(pki.client_config(alpn));
    let name = ServerName::try_from("127.0.0.1")?;
    let tls = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
        .await
        .context("handshake timed out")??;
    Ok(tls)
}

fn presented(tls: &TlsStream<TcpStream>) -> Vec<u8> {
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// One HTTP/1.1 request on a kept-alive connection; returns the response's body.
async fn get(tls: &mut TlsStream<TcpStream>) -> String {
    tls.write_all(b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&response).ends_with("hello") {
        let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(
            n > 0,
            "connection closed: {:?}",
            String::from_utf8_lossy(&response)
        );
        response.extend_from_slice(&buf[..n]);
    }
    let response = String::from_utf8(response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

async fn serve_http(files: &TlsFiles) -> (u16, tokio::task::JoinHandle<()>) {
    serve_http_with(files, HandshakeLimits::default()).await
}

async fn serve_http_with(
    files: &TlsFiles,
    limits: HandshakeLimits,
) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = TlsAcceptor::new(files, HTTP_ALPN).unwrap();
    let router = axum::Router::new().route("/hello", axum::routing::get(|| async { "hello" }));
    let server = tokio::spawn(async move {
        axum::serve(
            HttpListener::tls_with_limits(listener, acceptor, limits),
            router,
        )
        .await
        .unwrap();
    });
    (port, server)
}

#[tokio::test]
async fn http_is_served_to_clients_trusting_the_ca_only() {
    let dir = TempDir::new("http");
    let files = dir.files();
    let pki = Pki::new("first");
    pki.install(&files);
    let (port, server) = serve_http(&files).await;

    let mut tls = handshake(port, &pki, b"http/1.1").await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(presented(&tls), pki.leaf_der);
    get(&mut tls).await;

    let stranger = Pki::new("stranger");
    let refused = handshake(port, &stranger, b"http/1.1").await.unwrap_err();
    assert!(
        refused.to_string().contains("certificate"),
        "unexpected error: {refused:#}"
    );
    server.abort();
}

#[tokio::test]
async fn grpc_health_answers_a_tonic_client_over_tls() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    let dir = TempDir::new("grpc");
    let files = dir.files();
    let pki = Pki::new("grpc");
    pki.install(&files);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let incoming = GrpcIncoming::tls(listener, TlsAcceptor::new(&files, GRPC_ALPN).unwrap());
    let (_reporter, health) = tonic_health::server::health_reporter();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .accept_http1(true)
            .add_service(health)
            .serve_with_incoming(incoming),
    );

    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&pki.ca_pem));
    let channel = tonic::transport::Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // Browsers (HTTP/1.1 only) still get a TLS connection on this port.
    let browser = handshake(port, &pki, b"http/1.1").await.unwrap();
    assert_eq!(browser.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));

    // A client trusting another CA is refused.
    let stranger = Pki::new("grpc-stranger");
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&stranger.ca_pem));
    let refused = tonic::transport::Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await;
    assert!(refused.is_err());
    server.abort();
}

/// Handshakes until one presents `expected` or `within` passed.
async fn wait_for_certificate(port: u16, pki: &Pki, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(tls) = handshake(port, pki, b"http/1.1").await {
            if presented(&tls) == pki.leaf_der {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test]
async fn renewed_files_are_served_and_broken_ones_are_not() {
    let dir = TempDir::new("reload");
    let files = dir.files();
    let first = Pki::new("first");
    first.install(&files);
    let (port, server) = serve_http(&files).await;
    let mut old_connection = handshake(port, &first, b"http/1.1").await.unwrap();
    get(&mut old_connection).await;

    let second = Pki::new("second");
    second.install(&files);
    assert!(
        wait_for_certificate(port, &second, Duration::from_secs(10)).await,
        "the renewed certificate was not served"
    );
    // The connection made before keeps working.
    get(&mut old_connection).await;

    // A broken renewal: garbage for a key, then a certificate of a third CA without its key.
    std::fs::write(&files.key, "-----BEGIN PRIVATE KEY-----\nnot base64\n").unwrap();
    std::fs::write(&files.cert, Pki::new("third").leaf_pem).unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let tls = handshake(port, &second, b"http/1.1").await.unwrap();
    assert_eq!(presented(&tls), second.leaf_der);
    server.abort();
}

#[tokio::test]
async fn a_silent_client_does_not_block_other_handshakes() {
    let dir = TempDir::new("silent");
    let files = dir.files();
    let pki = Pki::new("silent");
    pki.install(&files);
    let (port, server) = serve_http(&files).await;

    // Connects and sends nothing; another sends garbage and stays.
    let _silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut garbage = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    garbage
        .write_all(b"\x16\x03\x01\x00\x05hello")
        .await
        .unwrap();

    let started = Instant::now();
    let mut tls = handshake(port, &pki, b"http/1.1").await.unwrap();
    get(&mut tls).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    server.abort();
}

/// Waits (at most `within`) for the server to close `tcp`; how long that took.
async fn closed_within(tcp: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 64];
    match tokio::time::timeout(within, tcp.read(&mut buf)).await {
        // End of stream or a reset: closed by the server.
        Ok(Ok(0) | Err(_)) => Some(started.elapsed()),
        Ok(Ok(n)) => panic!("the server sent {n} bytes to a client that said nothing"),
        Err(_) => None,
    }
}

#[tokio::test]
async fn silent_connections_are_closed_after_the_handshake_timeout() {
    let dir = TempDir::new("timeout");
    let files = dir.files();
    let pki = Pki::new("timeout");
    pki.install(&files);
    let limits = HandshakeLimits {
        timeout: Duration::from_millis(200),
        ..HandshakeLimits::default()
    };
    let (port, server) = serve_http_with(&files, limits).await;

    let mut silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let took = closed_within(&mut silent, Duration::from_secs(3))
        .await
        .expect("a silent connection was kept past the handshake timeout");
    assert!(took >= Duration::from_millis(150), "closed after {took:?}");

    // A handshake in time is not cut: the connection outlives the timeout.
    let mut tls = handshake(port, &pki, b"http/1.1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    get(&mut tls).await;

    // The gRPC port has the same bound.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_port = listener.local_addr().unwrap().port();
    let acceptor = TlsAcceptor::new(&files, GRPC_ALPN).unwrap();
    let incoming = GrpcIncoming::tls_with_limits(listener, acceptor, limits);
    let (_reporter, health) = tonic_health::server::health_reporter();
    let grpc = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(incoming),
    );
    let mut silent = TcpStream::connect(("127.0.0.1", grpc_port)).await.unwrap();
    closed_within(&mut silent, Duration::from_secs(3))
        .await
        .expect("a silent gRPC connection was kept past the handshake timeout");
    grpc.abort();
    server.abort();
}

#[tokio::test]
async fn handshakes_beyond_the_cap_wait_in_the_backlog_and_then_succeed() {
    let dir = TempDir::new("cap");
    let files = dir.files();
    let pki = Pki::new("cap");
    pki.install(&files);
    let limits = HandshakeLimits {
        timeout: Duration::from_millis(2000),
        max_concurrent: 8,
    };
    let (port, server) = serve_http_with(&files, limits).await;

    // Below the cap, silent connections hold up nobody.
    let mut silent = Vec::new();
    for _ in 0..limits.max_concurrent - 1 {
        silent.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let mut tls = handshake(port, &pki, b"http/1.1").await.unwrap();
    get(&mut tls).await;
    assert!(started.elapsed() < Duration::from_millis(1000));

    // The cap's worth of silent connections: the next client is not accepted until their
    // handshakes time out, then it is served.
    silent.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let mut tls = handshake(port, &pki, b"http/1.1").await.unwrap();
    let waited = started.elapsed();
    get(&mut tls).await;
    assert!(
        waited >= Duration::from_millis(700),
        "handshaken after {waited:?}: more than the cap ran at once"
    );
    for tcp in &mut silent {
        assert!(closed_within(tcp, Duration::from_secs(5)).await.is_some());
    }
    server.abort();
}

fn message(result: Result<TlsAcceptor, TlsError>) -> String {
    result.unwrap_err().to_string()
}

#[tokio::test]
async fn bad_files_fail_at_start_naming_the_file_not_the_key() {
    let dir = TempDir::new("bad");
    let files = dir.files();
    let pki = Pki::new("bad");
    let other = Pki::new("other");

    let missing = message(TlsAcceptor::new(&files, HTTP_ALPN));
    assert!(
        missing.contains(&files.cert.display().to_string()),
        "{missing}"
    );

    std::fs::write(&files.cert, &pki.leaf_pem).unwrap();
    std::fs::write(&files.key, &other.leaf_key_pem).unwrap();
    let mismatch = message(TlsAcceptor::new(&files, HTTP_ALPN));
    assert!(mismatch.contains("does not belong"), "{mismatch}");
    assert!(
        !mismatch.contains(key_body(&other.leaf_key_pem)),
        "{mismatch}"
    );

    std::fs::write(&files.key, "nothing here").unwrap();
    let no_key = message(TlsAcceptor::new(&files, HTTP_ALPN));
    assert!(
        no_key.contains(&files.key.display().to_string()),
        "{no_key}"
    );

    std::fs::write(&files.key, &pki.leaf_key_pem).unwrap();
    std::fs::write(&files.cert, "no certificate").unwrap();
    let no_cert = message(TlsAcceptor::new(&files, HTTP_ALPN));
    assert!(no_cert.contains("certificate"), "{no_cert}");

    // A good pair loads; Debug output names the files only.
    pki.install(&files);
    let certificate = ReloadingCertificate::load(&files).unwrap();
    let debug = format!("{certificate:?}");
    assert!(!debug.contains(key_body(&pki.leaf_key_pem)), "{debug}");
    assert!(!certificate.reload_if_changed());
}

/// A line of the key's base64, to look for in messages.
fn key_body(pem: &str) -> &str {
    pem.lines().nth(1).unwrap()
}
