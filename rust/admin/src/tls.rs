//! TLS for both ports (rustls with the ring provider). The certificate and key are re-read when
//! their files change, so a renewed certificate (cert-manager, certbot) is served without a
//! restart; a broken renewal keeps the last good pair. The accepting side (handshakes off the
//! accept loop, the gRPC incoming stream, the axum listener) is in [`listen`].

mod listen;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

pub use listen::{GrpcIncoming, HandshakeLimits, HttpListener, MaybeTlsStream};

/// How often the watcher looks at the files' modification time and size.
const RELOAD_POLL: Duration = Duration::from_secs(2);
/// ALPN of the gRPC port: HTTP/2 (grpc-core clients, flytekit, require it), then HTTP/1.1 for
/// browsers sent on to the console from this port.
pub const GRPC_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];
/// ALPN of the HTTP port (axum here serves HTTP/1.1 only).
pub const HTTP_ALPN: &[&[u8]] = &[b"http/1.1"];

/// The server's certificate chain and private key, PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why a certificate and key cannot be served. Messages name the files, never their content.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read TLS file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS certificate file {path}: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error("TLS key file {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("TLS key {key} does not belong to the certificate {cert}: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks the pair: a chain of at least one certificate and the private key of its
/// first one.
pub fn load_certified_key(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read(&files.cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certificate {
            path: files.cert.clone(),
            reason: format!("not PEM: {e}"),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Certificate {
            path: files.cert.clone(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    let key_pem = read(&files.key)?;
    // The pem error's text never quotes the key's base64 (only marker lines).
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Key {
        path: files.key.clone(),
        reason: format!("no private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
    })?;
    let provider = provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Key {
            path: files.key.clone(),
            reason: format!("unusable private key: {e}"),
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(e) => Err(TlsError::Mismatch {
            cert: files.cert.clone(),
            key: files.key.clone(),
            reason: e.to_string(),
        }),
    }
}

/// What identifies a version of the two files without reading them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileStamp(Option<(SystemTime, u64)>, Option<(SystemTime, u64)>);

impl FileStamp {
    fn of(files: &TlsFiles) -> Self {
        let stamp = |path: &Path| {
            std::fs::metadata(path)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        };
        FileStamp(stamp(&files.cert), stamp(&files.key))
    }
}

/// The certificate served now, replaced when the files change (see [`Self::reload_if_changed`]).
/// It is the rustls certificate resolver of every acceptor made from it.
pub struct ReloadingCertificate {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' stamp when last read, good or broken: a broken pair is reported once.
    seen: std::sync::Mutex<FileStamp>,
}

impl std::fmt::Debug for ReloadingCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("ReloadingCertificate")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ReloadingCertificate {
    /// Loads the pair (failing with a message naming the bad file) and, inside a tokio runtime,
    /// starts the watcher that reloads it; the watcher ends when the last `Arc` is dropped.
    pub fn load(files: &TlsFiles) -> Result<Arc<Self>, TlsError> {
        let seen = FileStamp::of(files);
        let key = load_certified_key(files)?;
        let certificate = Arc::new(ReloadingCertificate {
            files: files.clone(),
            current: RwLock::new(Arc::new(key)),
            seen: std::sync::Mutex::new(seen),
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(watch(Arc::downgrade(&certificate)));
        }
        Ok(certificate)
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The pair served to new handshakes.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Re-reads the files if their modification time or size changed since last read. Returns
    /// whether a new pair is now served; a broken pair keeps the old one and logs a warning
    /// naming the files (never their content).
    pub fn reload_if_changed(&self) -> bool {
        let stamp = FileStamp::of(&self.files);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if *seen == stamp {
                return false;
            }
            *seen = stamp;
        }
        match load_certified_key(&self.files) {
            Ok(key) => {
                *self
                    .current
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(key);
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(e) => {
                tracing::warn!("TLS certificate not reloaded, still serving the previous one: {e}");
                false
            }
        }
    }

    /// A rustls server configuration presenting this certificate, offering `alpn` in order.
    pub fn server_config(self: &Arc<Self>, alpn: &[&[u8]]) -> Result<ServerConfig, TlsError> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

async fn watch(certificate: Weak<ReloadingCertificate>) {
    let mut tick = tokio::time::interval(RELOAD_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(certificate) = certificate.upgrade() else {
            return;
        };
        // Reading two small files: cheap, but still blocking IO.
        let _ = tokio::task::spawn_blocking(move || certificate.reload_if_changed()).await;
    }
}

/// Accepts TLS connections presenting a [`ReloadingCertificate`].
#[derive(Clone)]
pub struct TlsAcceptor {
    inner: tokio_rustls::TlsAcceptor,
    certificate: Arc<ReloadingCertificate>,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("certificate", &self.certificate)
            .finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// Loads `files` (failing at start on unreadable or mismatched files) and watches them.
    pub fn new(files: &TlsFiles, alpn: &[&[u8]]) -> Result<Self, TlsError> {
        Self::with_certificate(ReloadingCertificate::load(files)?, alpn)
    }

    /// An acceptor sharing `certificate` (one watcher for both ports).
    pub fn with_certificate(
        certificate: Arc<ReloadingCertificate>,
        alpn: &[&[u8]],
    ) -> Result<Self, TlsError> {
        let config = certificate.server_config(alpn)?;
        Ok(TlsAcceptor {
            inner: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            certificate,
        })
    }

    pub fn certificate(&self) -> &Arc<ReloadingCertificate> {
        &self.certificate
    }
}

/// The two listeners of [`crate::app::serve_api`]: through TLS when `tls` is set (one watched
/// certificate for both), else plain TCP as before.
pub fn listeners(
    grpc: tokio::net::TcpListener,
    http: tokio::net::TcpListener,
    tls: Option<&TlsFiles>,
) -> Result<(GrpcIncoming, HttpListener), TlsError> {
    match tls {
        None => Ok((GrpcIncoming::plain(grpc), HttpListener::plain(http))),
        Some(files) => {
            let certificate = ReloadingCertificate::load(files)?;
            let grpc_tls = TlsAcceptor::with_certificate(certificate.clone(), GRPC_ALPN)?;
            let http_tls = TlsAcceptor::with_certificate(certificate, HTTP_ALPN)?;
            Ok((
                GrpcIncoming::tls(grpc, grpc_tls),
                HttpListener::tls(http, http_tls),
            ))
        }
    }
}
