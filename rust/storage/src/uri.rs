//! Objects addressed by URI, as tasks and the SDK see them: `s3://bucket/key`, `gs://bucket/key`,
//! `az://container/key` or `abfs://container@account.dfs.core.windows.net/key`, `memory:///key`,
//! and local files (`file:///path` or a plain path).
//!
//! Where [`crate::Storage`] is one configured root that keys live under, this is the other side:
//! any URI a literal carries, opened with settings from the environment (`AWS_*`, `GOOGLE_*`,
//! `AZURE_*`). flytekit's `FLYTE_AWS_ENDPOINT`, `FLYTE_AWS_ACCESS_KEY_ID` and
//! `FLYTE_AWS_SECRET_ACCESS_KEY` are read too and win over the `AWS_*` ones (flytekit gives them
//! precedence as well), so one set of settings serves flytekit's and Alula's tasks.
//!
//! One client is kept per bucket (container, account) for the life of the process: each holds a
//! connection pool, and a task touching hundreds of objects should not redo TLS handshakes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreScheme};

/// What can go wrong reaching an object by URI.
#[derive(Debug, thiserror::Error)]
pub enum UriError {
    #[error("invalid storage URI {uri:?}: {reason}")]
    Invalid { uri: String, reason: String },
    #[error("{uri}: no such object")]
    NotFound { uri: String },
    #[error("storage {op} of {uri}: {source}")]
    Store {
        op: &'static str,
        uri: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl UriError {
    pub(crate) fn store(op: &'static str, uri: &str) -> impl FnOnce(object_store::Error) -> Self {
        let uri = uri.to_string();
        move |source| match source {
            object_store::Error::NotFound { .. } => UriError::NotFound { uri },
            source => UriError::Store { op, uri, source },
        }
    }

    pub(crate) fn io(
        op: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.display().to_string();
        move |source| UriError::Io { op, path, source }
    }
}

/// An object (or a folder's prefix) opened from its URI.
#[derive(Debug, Clone)]
pub struct Located {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) path: ObjectPath,
    /// What comes before the path in this store's URIs (`s3://bucket`; empty for local files).
    base: String,
}

impl Located {
    /// Opens the object `uri` names, reusing the bucket's client when one is open already.
    pub fn open(uri: &str) -> Result<Self, UriError> {
        let invalid = |reason: String| UriError::Invalid {
            uri: uri.to_string(),
            reason,
        };
        if !uri.contains("://") || uri.starts_with("file://") {
            return Self::local(uri);
        }
        let url = url::Url::parse(uri).map_err(|e| invalid(e.to_string()))?;
        let (scheme, _) = ObjectStoreScheme::parse(&url).map_err(|e| invalid(e.to_string()))?;
        let base = url[..url::Position::BeforePath].to_string();
        let raw_path = match scheme {
            ObjectStoreScheme::Memory => url.path(),
            // `abfs://container@account.../key` and `s3://bucket/key`: the path is the key.
            ObjectStoreScheme::AmazonS3
            | ObjectStoreScheme::GoogleCloudStorage
            | ObjectStoreScheme::MicrosoftAzure
                if !url.scheme().starts_with("http") =>
            {
                url.path()
            }
            _ => {
                return Err(invalid(
                    "use s3://, gs://, az://, abfs://, memory://, file:// or a path".into(),
                ))
            }
        };
        let path = ObjectPath::from_url_path(raw_path).map_err(|e| invalid(e.to_string()))?;
        let store = cached(&base, || build(&scheme, &url)).map_err(|e| invalid(e.to_string()))?;
        Ok(Self { store, path, base })
    }

    fn local(uri: &str) -> Result<Self, UriError> {
        let raw = uri.strip_prefix("file://").unwrap_or(uri);
        let mut file = PathBuf::from(raw);
        if !file.is_absolute() {
            let cwd = std::env::current_dir().map_err(UriError::io("resolve", &file))?;
            file = cwd.join(file);
        }
        let path = ObjectPath::from_absolute_path(&file).map_err(|e| UriError::Invalid {
            uri: uri.to_string(),
            reason: e.to_string(),
        })?;
        static LOCAL: OnceLock<Arc<dyn ObjectStore>> = OnceLock::new();
        let store = LOCAL
            .get_or_init(|| Arc::new(LocalFileSystem::new()))
            .clone();
        Ok(Self {
            store,
            path,
            base: String::new(),
        })
    }

    /// The URI of `path` in this object's store (plain paths for local files).
    pub fn uri_of(&self, path: &ObjectPath) -> String {
        format!("{}/{}", self.base, path.as_ref())
    }

    /// The URI this was opened from, normalised.
    pub fn uri(&self) -> String {
        self.uri_of(&self.path)
    }

    pub fn path(&self) -> &ObjectPath {
        &self.path
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The same store at another path.
    pub(crate) fn at(&self, path: ObjectPath) -> Self {
        Self {
            store: self.store.clone(),
            path,
            base: self.base.clone(),
        }
    }
}

fn cached(
    base: &str,
    build: impl FnOnce() -> Result<Arc<dyn ObjectStore>, object_store::Error>,
) -> Result<Arc<dyn ObjectStore>, object_store::Error> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let mut stores = STORES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(store) = stores.get(base) {
        return Ok(store.clone());
    }
    let store = build()?;
    stores.insert(base.to_string(), store.clone());
    Ok(store)
}

fn build(
    scheme: &ObjectStoreScheme,
    url: &url::Url,
) -> Result<Arc<dyn ObjectStore>, object_store::Error> {
    crate::install_crypto_provider();
    Ok(match scheme {
        ObjectStoreScheme::Memory => Arc::new(InMemory::new()),
        ObjectStoreScheme::AmazonS3 => {
            let mut builder = AmazonS3Builder::from_env();
            for (key, value) in flyte_aws_settings(|name| std::env::var(name).ok()) {
                builder = builder.with_config(key.parse()?, value);
            }
            Arc::new(builder.with_url(url.as_str()).build()?)
        }
        ObjectStoreScheme::GoogleCloudStorage => Arc::new(
            GoogleCloudStorageBuilder::from_env()
                .with_url(url.as_str())
                .build()?,
        ),
        ObjectStoreScheme::MicrosoftAzure => Arc::new(
            MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .build()?,
        ),
        _ => {
            return Err(object_store::Error::NotSupported {
                source: format!("no store for {url}").into(),
            })
        }
    })
}

/// S3 settings from flytekit's variables, as object_store configuration keys. A plain-http
/// endpoint (MinIO, moto) is allowed without also setting `AWS_ALLOW_HTTP`: flytekit's
/// settings have no such switch, and an `http://` endpoint says it.
pub(crate) fn flyte_aws_settings(
    env: impl Fn(&str) -> Option<String>,
) -> Vec<(&'static str, String)> {
    let mut settings = Vec::new();
    // `AWS_ENDPOINT` last: object_store's older name, still set by some deployments.
    let endpoint = ["FLYTE_AWS_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
        .into_iter()
        .find_map(|name| env(name).filter(|e| !e.is_empty()));
    if let Some(endpoint) = endpoint {
        if endpoint.starts_with("http://") {
            settings.push(("aws_allow_http", "true".to_string()));
        }
        settings.push(("aws_endpoint", endpoint));
    }
    for (flyte, key) in [
        ("FLYTE_AWS_ACCESS_KEY_ID", "aws_access_key_id"),
        ("FLYTE_AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"),
    ] {
        if let Some(value) = env(flyte).filter(|v| !v.is_empty()) {
            settings.push((key, value));
        }
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_open_with_their_keys() {
        let s3 = Located::open("s3://bucket/a/b%20c.txt").expect("s3");
        assert_eq!(s3.path.as_ref(), "a/b c.txt");
        assert_eq!(s3.uri(), "s3://bucket/a/b c.txt");
        let again = Located::open("s3://bucket/other").expect("s3");
        assert!(
            Arc::ptr_eq(&s3.store, &again.store),
            "one client per bucket"
        );
        let other = Located::open("s3://elsewhere/other").expect("s3");
        assert!(!Arc::ptr_eq(&s3.store, &other.store));

        let local = Located::open("file:///tmp/x/y").expect("file");
        assert_eq!(local.uri(), "/tmp/x/y");
        assert_eq!(Located::open("/tmp/x/y").expect("path").uri(), "/tmp/x/y");
        let memory = Located::open("memory:///k/v").expect("memory");
        assert_eq!(memory.uri(), "memory:///k/v");

        for bad in ["ftp://host/x", "https://example.com/x"] {
            let err = Located::open(bad).expect_err(bad).to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn flytekit_settings_take_over() {
        let env = |name: &str| match name {
            "FLYTE_AWS_ENDPOINT" => Some("http://minio:9000".to_string()),
            "AWS_ENDPOINT_URL" => Some("https://ignored".to_string()),
            "FLYTE_AWS_ACCESS_KEY_ID" => Some("minio".to_string()),
            _ => None,
        };
        assert_eq!(
            flyte_aws_settings(env),
            vec![
                ("aws_allow_http", "true".to_string()),
                ("aws_endpoint", "http://minio:9000".to_string()),
                ("aws_access_key_id", "minio".to_string()),
            ]
        );
        assert!(flyte_aws_settings(|_| None).is_empty());
        // The older name alone still allows a plain-http endpoint.
        let old = |name: &str| (name == "AWS_ENDPOINT").then(|| "http://moto:5000".to_string());
        assert_eq!(
            flyte_aws_settings(old),
            vec![
                ("aws_allow_http", "true".to_string()),
                ("aws_endpoint", "http://moto:5000".to_string()),
            ]
        );
    }
}
