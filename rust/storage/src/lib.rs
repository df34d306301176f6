//! Alula's object storage: one handle over a local folder, an S3-compatible bucket or memory.
//!
//! Everything Alula keeps outside the database — registered code bundles, execution inputs and
//! outputs, offloaded literals — lives under *keys* (`metadata/p/d/name/n0/inputs.pb`), and a
//! [`Storage`] maps a key to the object and to the URI a task or client sees:
//!
//! | storage URL | a key's URI |
//! |---|---|
//! | `/srv/alula` or `file:///srv/alula` | `/srv/alula/<key>` (a plain path: flytekit and Alula's SDK read it directly) |
//! | `s3://bucket/prefix` | `s3://bucket/prefix/<key>` |
//! | `memory://` (tests) | `memory:///<key>` |
//!
//! S3 settings come from the standard environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP=true` for a plain-http endpoint such as
//! MinIO), the same variables flytekit's fsspec reads, so one set of settings serves the server
//! and its task pods.

pub mod layout;
pub mod stream;
pub mod uri;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::signer::{SignedUrlOptions, Signer};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

/// What a presigned URL lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedMethod {
    Get,
    Put,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid storage URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("invalid storage key {key:?}: {reason}")]
    InvalidKey { key: String, reason: String },
    #[error("storage {op} of {uri}: {source}")]
    Backend {
        op: &'static str,
        uri: String,
        #[source]
        source: object_store::Error,
    },
}

/// An object's bytes, chunk by chunk ([`Storage::get_stream`]).
pub type ByteStream = futures::stream::BoxStream<'static, Result<Bytes, StorageError>>;

/// The name of an object stored by its content: the SHA-256 of its bytes, in hex.
pub fn content_name(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Debug)]
enum Kind {
    Local {
        root: PathBuf,
    },
    S3 {
        bucket: String,
        signer: Arc<AmazonS3>,
    },
    Memory,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn ObjectStore>,
    kind: Kind,
    /// The folder every key lives under: the local root, or the folder in the bucket.
    prefix: String,
}

/// A handle on the storage; cheap to clone.
#[derive(Debug, Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

impl Storage {
    /// Opens the storage a URL names (see the module docs for the forms).
    pub fn from_url(url: &str) -> Result<Self, StorageError> {
        Self::from_url_with(url, std::iter::empty::<(String, String)>())
    }

    /// [`Storage::from_url`] with S3 settings (`aws_endpoint`, `aws_allow_http`, ... — the
    /// environment variables' names in lower case) that take precedence over the environment.
    pub fn from_url_with<K: AsRef<str>, V: Into<String>>(
        url: &str,
        options: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, StorageError> {
        let invalid = |reason: &str| StorageError::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        if url == "memory://" || url == "memory:///" {
            return Ok(Self::memory());
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(invalid("no bucket after s3://"));
            }
            return Self::s3(bucket, prefix, options).map_err(|e| invalid(&e.to_string()));
        }
        let path = match url.strip_prefix("file://") {
            Some(path) => path,
            None if url.contains("://") => {
                return Err(invalid(
                    "unsupported scheme (use a path, file://, s3:// or memory://)",
                ))
            }
            None => url,
        };
        if !Path::new(path).is_absolute() {
            return Err(invalid("a local storage root must be an absolute path"));
        }
        Ok(Self::local(path))
    }

    /// A local folder (made on the first write). A relative `root` is taken from the current
    /// directory.
    pub fn local(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let root = if root.is_absolute() {
            root
        } else {
            std::env::current_dir()
                .map(|dir| dir.join(&root))
                .unwrap_or(root)
        };
        // The file system's root as the store and the folder as the key prefix: opening cannot
        // fail, and keys map to files by plain concatenation.
        let prefix = root.to_string_lossy().trim_matches('/').to_string();
        Self::with(
            Arc::new(LocalFileSystem::new()),
            Kind::Local { root },
            prefix,
        )
    }

    /// Process memory, for tests.
    pub fn memory() -> Self {
        Self::with(Arc::new(InMemory::new()), Kind::Memory, String::new())
    }

    fn s3<K: AsRef<str>, V: Into<String>>(
        bucket: &str,
        prefix: &str,
        options: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, object_store::Error> {
        install_crypto_provider();
        let mut builder = AmazonS3Builder::from_env();
        for (key, value) in options {
            builder = builder.with_config(key.as_ref().to_ascii_lowercase().parse()?, value);
        }
        let s3 = Arc::new(builder.with_bucket_name(bucket).build()?);
        let prefix = prefix.trim_matches('/').to_string();
        Ok(Self::with(
            s3.clone(),
            Kind::S3 {
                bucket: bucket.to_string(),
                signer: s3,
            },
            prefix,
        ))
    }

    fn with(store: Arc<dyn ObjectStore>, kind: Kind, prefix: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                kind,
                prefix,
            }),
        }
    }

    /// The local folder behind this storage, if it is one.
    pub fn local_root(&self) -> Option<&Path> {
        match &self.inner.kind {
            Kind::Local { root } => Some(root),
            _ => None,
        }
    }

    /// The URI of `key` as tasks and clients see it.
    pub fn uri(&self, key: &str) -> String {
        let key = key.trim_start_matches('/');
        match &self.inner.kind {
            Kind::Local { root } => root.join(key).display().to_string(),
            Kind::S3 { bucket, .. } if self.inner.prefix.is_empty() => {
                format!("s3://{bucket}/{key}")
            }
            Kind::S3 { bucket, .. } => format!("s3://{bucket}/{}/{key}", self.inner.prefix),
            Kind::Memory => format!("memory:///{key}"),
        }
    }

    /// The URI of the storage's root (no trailing slash).
    pub fn root_uri(&self) -> String {
        self.uri("").trim_end_matches('/').to_string()
    }

    /// The key of a URI under this storage (`None` for anything else). Local storage also
    /// takes `file://` URIs.
    pub fn key_of(&self, uri: &str) -> Option<String> {
        let rest = match &self.inner.kind {
            Kind::Local { root } => {
                let path = uri.strip_prefix("file://").unwrap_or(uri);
                let rel = Path::new(path).strip_prefix(root).ok()?;
                return rel.to_str().map(str::to_string);
            }
            Kind::S3 { bucket, .. } => {
                let in_bucket = uri.strip_prefix("s3://")?.strip_prefix(bucket.as_str())?;
                let in_bucket = in_bucket.strip_prefix('/').unwrap_or(in_bucket);
                if self.inner.prefix.is_empty() {
                    in_bucket
                } else {
                    let rest = in_bucket.strip_prefix(self.inner.prefix.as_str())?;
                    match rest.strip_prefix('/') {
                        Some(rest) => rest,
                        None if rest.is_empty() => rest,
                        None => return None,
                    }
                }
            }
            Kind::Memory => uri.strip_prefix("memory:///")?,
        };
        Some(rest.to_string())
    }

    fn location(&self, key: &str) -> Result<ObjectPath, StorageError> {
        let invalid = |reason: String| StorageError::InvalidKey {
            key: key.to_string(),
            reason,
        };
        if key.split('/').any(|part| part == ".." || part == ".") {
            return Err(invalid("`.` and `..` segments are not allowed".into()));
        }
        let full = if self.inner.prefix.is_empty() {
            key.trim_start_matches('/').to_string()
        } else {
            format!("{}/{}", self.inner.prefix, key.trim_start_matches('/'))
        };
        ObjectPath::parse(&full).map_err(|e| invalid(e.to_string()))
    }

    fn backend(
        &self,
        op: &'static str,
        key: &str,
    ) -> impl FnOnce(object_store::Error) -> StorageError {
        let uri = self.uri(key);
        move |source| StorageError::Backend { op, uri, source }
    }

    /// Writes `bytes` under `key`; readers see the old object or the new one, never a part.
    /// Writes `bytes` under `key` unless an object of that size is there already: for keys named
    /// by their content ([`content_name`]), where the same key always holds the same bytes, so a
    /// value written again and again (a large input every event repeats) is stored once.
    pub async fn put_once(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        if self.head(key).await? == Some(bytes.len() as u64) {
            return Ok(());
        }
        self.put(key, bytes).await
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        let location = self.location(key)?;
        self.inner
            .store
            .put(&location, PutPayload::from_bytes(bytes))
            .await
            .map_err(self.backend("write", key))?;
        Ok(())
    }

    /// The object under `key`, `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        let location = self.location(key)?;
        let result = match self.inner.store.get(&location).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.backend("read", key)(e)),
        };
        match result.bytes().await {
            Ok(bytes) => Ok(Some(bytes)),
            // Deleted between the request and the body (local files).
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.backend("read", key)(e)),
        }
    }

    /// The object under `key` as a stream of chunks (for objects too large to hold in memory,
    /// such as task logs), `None` when there is none.
    pub async fn get_stream(&self, key: &str) -> Result<Option<ByteStream>, StorageError> {
        self.stream(key, object_store::GetOptions::default()).await
    }

    /// The object under `key` from byte `offset` on, streamed, with the object's size when
    /// asked; `None` when there is none. An offset at or past the end gives nothing to read: a
    /// reader following a growing log asks for the bytes it has not seen yet, most often none.
    pub async fn get_stream_from(
        &self,
        key: &str,
        offset: u64,
    ) -> Result<Option<(u64, ByteStream)>, StorageError> {
        use futures::StreamExt;
        // The size first: stores refuse a range starting past the end rather than answer
        // nothing, and a reader that is up to date needs no read at all.
        let Some(size) = self.head(key).await? else {
            return Ok(None);
        };
        if offset >= size {
            return Ok(Some((size, futures::stream::empty().boxed())));
        }
        let options = object_store::GetOptions {
            range: (offset > 0).then_some(object_store::GetRange::Offset(offset)),
            ..Default::default()
        };
        Ok(self.stream(key, options).await?.map(|body| (size, body)))
    }

    /// A read of `key` with `options`, streamed; `None` when there is no object.
    async fn stream(
        &self,
        key: &str,
        options: object_store::GetOptions,
    ) -> Result<Option<ByteStream>, StorageError> {
        use futures::StreamExt;
        let location = self.location(key)?;
        let result = match self.inner.store.get_opts(&location, options).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.backend("read", key)(e)),
        };
        let uri = self.uri(key);
        Ok(Some(
            result
                .into_stream()
                .map(move |chunk| {
                    chunk.map_err(|source| StorageError::Backend {
                        op: "read",
                        uri: uri.clone(),
                        source,
                    })
                })
                .boxed(),
        ))
    }

    /// The object a URI names, which must be under this storage.
    pub async fn get_uri(&self, uri: &str) -> Result<Option<Bytes>, StorageError> {
        let key = self.key_of(uri).ok_or_else(|| StorageError::InvalidKey {
            key: uri.to_string(),
            reason: format!("not under this storage ({})", self.root_uri()),
        })?;
        self.get(&key).await
    }

    /// The size of the object under `key`, `None` when there is none.
    pub async fn head(&self, key: &str) -> Result<Option<u64>, StorageError> {
        let location = self.location(key)?;
        match self.inner.store.head(&location).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.backend("stat", key)(e)),
        }
    }

    /// Fails with [`StorageError::InvalidKey`] when a folder or file on the way to `key` (below
    /// the root) is a symbolic link. Object stores have no links; a local folder may (a task or
    /// a user with access to it can make them), and the file system would follow one out of
    /// the root. Callers that hand objects to clients check this before reading or writing.
    /// A link made between the check and the access is not caught: that takes write access
    /// to the storage root, which is the server's own.
    pub fn refuse_links(&self, key: &str) -> Result<(), StorageError> {
        let Kind::Local { root } = &self.inner.kind else {
            return Ok(());
        };
        let mut path = root.clone();
        for part in key.split('/').filter(|p| !p.is_empty()) {
            path.push(part);
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(StorageError::InvalidKey {
                        key: key.to_string(),
                        reason: format!(
                            "{} is a symbolic link, and links are not followed",
                            path.strip_prefix(root).unwrap_or(&path).display()
                        ),
                    })
                }
                Ok(_) => {}
                // Nothing further exists, so nothing further can be a link.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => {
                    return Err(StorageError::Backend {
                        op: "stat",
                        uri: path.display().to_string(),
                        source: object_store::Error::Generic {
                            store: "LocalFileSystem",
                            source: Box::new(e),
                        },
                    })
                }
            }
        }
        Ok(())
    }

    /// Removes the object under `key`; a missing one is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let location = self.location(key)?;
        match self.inner.store.delete(&location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.backend("delete", key)(e)),
        }
    }

    /// A presigned URL that lets its holder `method` the object under `key` until `expires`
    /// passes. `None` for storages that cannot sign (local folders: admin serves and signs
    /// those URLs itself).
    pub async fn signed_url(
        &self,
        method: SignedMethod,
        key: &str,
        expires: Duration,
    ) -> Result<Option<url::Url>, StorageError> {
        let Kind::S3 { signer, .. } = &self.inner.kind else {
            return Ok(None);
        };
        let location = self.location(key)?;
        let method = match method {
            SignedMethod::Get => http::Method::GET,
            SignedMethod::Put => http::Method::PUT,
        };
        let url = signer
            .signed_url(method, &location, expires)
            .await
            .map_err(self.backend("sign", key))?;
        Ok(Some(url))
    }

    /// A presigned PUT of `key` that the store accepts only with the header
    /// `Content-MD5: <base64 of content_md5>` (the header is part of the signature, and S3
    /// checks the body against it), so the URL uploads that content and nothing else. `None`
    /// for storages that cannot sign.
    pub async fn signed_put_url_with_md5(
        &self,
        key: &str,
        content_md5: &[u8],
        expires: Duration,
    ) -> Result<Option<url::Url>, StorageError> {
        use base64::Engine;
        let Kind::S3 { signer, .. } = &self.inner.kind else {
            return Ok(None);
        };
        let location = self.location(key)?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(content_md5);
        // Base64 text is always a valid header value; the error cannot happen.
        let header =
            http::HeaderValue::from_str(&encoded).map_err(|e| StorageError::InvalidKey {
                key: key.to_string(),
                reason: format!("Content-MD5 {encoded:?}: {e}"),
            })?;
        let options = SignedUrlOptions::default()
            .with_signed_header(http::HeaderName::from_static("content-md5"), header);
        let url = signer
            .signed_url_opts(http::Method::PUT, &location, expires, &options)
            .await
            .map_err(self.backend("sign", key))?;
        Ok(Some(url))
    }

    /// Starts writing `key` piece by piece, for objects too large to hold in memory. Readers
    /// see the object only once [`StreamedPut::finish`] succeeded; an upload that is aborted or
    /// dropped leaves nothing behind (local files are staged next to the target).
    pub async fn put_streamed(&self, key: &str) -> Result<StreamedPut, StorageError> {
        let location = self.location(key)?;
        let upload = self
            .inner
            .store
            .put_multipart(&location)
            .await
            .map_err(self.backend("write", key))?;
        Ok(StreamedPut {
            writer: WriteMultipart::new(upload),
            uri: self.uri(key),
        })
    }
}

/// A write in progress, from [`Storage::put_streamed`].
pub struct StreamedPut {
    writer: WriteMultipart,
    uri: String,
}

/// Parts uploaded at once before [`StreamedPut::write`] waits (S3 multipart parts are 5 MiB).
const STREAMED_PARTS_IN_FLIGHT: usize = 4;

impl StreamedPut {
    fn backend(&self, op: &'static str) -> impl FnOnce(object_store::Error) -> StorageError {
        let uri = self.uri.clone();
        move |source| StorageError::Backend { op, uri, source }
    }

    /// Appends `bytes`; waits while too many parts are still on their way.
    pub async fn write(&mut self, bytes: Bytes) -> Result<(), StorageError> {
        let on_error = self.backend("write");
        self.writer
            .wait_for_capacity(STREAMED_PARTS_IN_FLIGHT)
            .await
            .map_err(on_error)?;
        self.writer.put(bytes);
        Ok(())
    }

    /// Makes the object visible, whole.
    pub async fn finish(self) -> Result<(), StorageError> {
        let on_error = self.backend("write");
        self.writer.finish().await.map_err(on_error)?;
        Ok(())
    }

    /// Gives the write up, removing what was written so far.
    pub async fn abort(self) -> Result<(), StorageError> {
        let on_error = self.backend("abort");
        self.writer.abort().await.map_err(on_error)
    }
}

impl std::fmt::Debug for StreamedPut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamedPut")
            .field("uri", &self.uri)
            .finish()
    }
}

/// reqwest is built without a default TLS provider (so that building needs no C toolchain);
/// the process-wide one is ring, installed once before the first S3 client is made. Other
/// reqwest clients in the process need it too, and may call this first.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another part of the process installed one first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris_and_keys_round_trip() {
        let storage = Storage::from_url("s3://bucket/some/prefix/").expect("s3 storage");
        assert_eq!(
            storage.uri("metadata/a/inputs.pb"),
            "s3://bucket/some/prefix/metadata/a/inputs.pb"
        );
        assert_eq!(
            storage.key_of("s3://bucket/some/prefix/metadata/a/inputs.pb"),
            Some("metadata/a/inputs.pb".to_string())
        );
        assert_eq!(storage.key_of("s3://bucket/some/prefixed/x"), None);
        assert_eq!(storage.key_of("s3://other/some/prefix/x"), None);
        assert_eq!(storage.root_uri(), "s3://bucket/some/prefix");

        let bare = Storage::from_url("s3://bucket").expect("s3 storage");
        assert_eq!(bare.uri("k"), "s3://bucket/k");
        assert_eq!(bare.key_of("s3://bucket/k"), Some("k".to_string()));
    }

    #[test]
    fn bad_urls_are_named() {
        for url in ["s3://", "gs2://x/y", "relative/path"] {
            let err = Storage::from_url(url).expect_err(url).to_string();
            assert!(err.contains(url), "{err}");
        }
    }

    #[test]
    fn links_under_a_local_root_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("metadata/a")).expect("folders");
        std::fs::write(root.join("metadata/a/file"), b"x").expect("file");
        std::os::unix::fs::symlink(dir.path(), root.join("metadata/out")).expect("link");
        std::os::unix::fs::symlink(root.join("metadata/a/file"), root.join("metadata/f"))
            .expect("link");
        let storage = Storage::local(&root);
        assert!(storage.refuse_links("metadata/a/file").is_ok());
        assert!(storage.refuse_links("metadata/a/missing/deeper").is_ok());
        for key in [
            "metadata/out",
            "metadata/out/root/metadata/a/file",
            "metadata/f",
        ] {
            let err = storage.refuse_links(key).expect_err(key).to_string();
            assert!(err.contains("symbolic link"), "{err}");
        }
        assert!(Storage::memory().refuse_links("metadata/out").is_ok());
    }

    #[tokio::test]
    async fn keys_may_not_climb_out() {
        let storage = Storage::memory();
        for key in ["../x", "a/../../x", "a/./b"] {
            let err = storage.put(key, Bytes::from_static(b"x")).await;
            assert!(
                matches!(err, Err(StorageError::InvalidKey { .. })),
                "{key}: {err:?}"
            );
        }
    }
}
