//! `DataProxyService` over the configured object storage. `CreateUploadLocation` hands out a
//! URL presigned by the store when it can sign one (S3-compatible buckets), else a URL of
//! Alula's own HTTP upload endpoint ([`crate::upload`]) signed with HMAC-SHA256 over the object
//! key, the expiry and the announced MD5. Either way a URL cannot be reused for another object,
//! after it expires, or (when an MD5 was announced) for other content. Downloads are in
//! [`crate::download`], `GetData` in [`crate::flyte_url`].

use std::sync::Arc;
use std::time::Duration;

use alula_idl::flyteidl::service::data_proxy_service_server::DataProxyService;
use alula_idl::flyteidl::service::{
    CreateDownloadLinkRequest, CreateDownloadLinkResponse, CreateDownloadLocationRequest,
    CreateDownloadLocationResponse, CreateUploadLocationRequest, CreateUploadLocationResponse,
    GetDataRequest, GetDataResponse,
};
use alula_idl::wkt::Timestamp;
use alula_storage::{SignedMethod, Storage, StorageError};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use tonic::{Request, Response, Status};

use crate::config::AdminConfig;
use crate::error::{AdminError, AdminResult};
use crate::service::AdminApi;
use crate::validate;

const RANDOM_NAME_LEN: usize = 20;
const RANDOM_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// flyteadmin's default when the client asks for no particular validity.
const DEFAULT_EXPIRY: Duration = Duration::from_secs(3600);

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `None` only if the MAC rejected the key, which HMAC never does (it takes keys of any length).
fn mac(key: &[u8], object: &str, expires: i64, md5_hex: &str) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).ok()?;
    mac.update(object.as_bytes());
    mac.update(b"\n");
    mac.update(expires.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(md5_hex.as_bytes());
    Some(mac)
}

/// The signature of an upload URL, hex encoded.
pub fn sign(key: &[u8], object: &str, expires: i64, md5_hex: &str) -> Option<String> {
    Some(hex(&mac(key, object, expires, md5_hex)?
        .finalize()
        .into_bytes()))
}

/// Constant-time check of a signature made by [`sign`].
pub fn verify(key: &[u8], object: &str, expires: i64, md5_hex: &str, signature: &str) -> bool {
    match (unhex(signature), mac(key, object, expires, md5_hex)) {
        (Some(bytes), Some(mac)) => mac.verify_slice(&bytes).is_ok(),
        _ => false,
    }
}

/// The keys whose signatures the HTTP port accepts: the current one first, then the earlier
/// ones still honoured after a rotation (URLs handed out before it keep working until they
/// expire; only the current key signs new URLs).
pub(crate) fn accepted_signing_keys(config: &AdminConfig) -> impl Iterator<Item = &[u8]> {
    std::iter::once(config.signing_key.as_slice())
        .chain(config.previous_signing_keys.iter().map(Vec::as_slice))
}

/// [`verify`] against every key of [`accepted_signing_keys`].
pub fn verify_with_any_key(
    config: &AdminConfig,
    object: &str,
    expires: i64,
    md5_hex: &str,
    signature: &str,
) -> bool {
    accepted_signing_keys(config).any(|key| verify(key, object, expires, md5_hex, signature))
}

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub(crate) use alula_plane::logs::url_path;

#[derive(Clone)]
pub struct DataProxy {
    pub(crate) config: Arc<AdminConfig>,
    /// Execution and node data come from the admin service, so `GetData` answers exactly what
    /// `GetExecutionData`/`GetNodeExecutionData` would.
    pub(crate) api: AdminApi,
}

impl DataProxy {
    pub fn new(config: Arc<AdminConfig>, api: AdminApi) -> Self {
        Self { config, api }
    }

    /// Where an upload goes and how the client sends it: a URL presigned by the object store
    /// when it can sign (S3), else a URL of Alula's own upload endpoint.
    async fn upload_location(
        &self,
        req: CreateUploadLocationRequest,
    ) -> AdminResult<CreateUploadLocationResponse> {
        validate::project(&req.project, "project")?;
        validate::domain(&req.domain, "domain")?;
        if req.content_md5.is_empty() && req.filename_root.is_empty() {
            return Err(AdminError::invalid(
                "content_md5 or filename_root is required to place the upload",
            ));
        }
        let md5_hex = hex(&req.content_md5);
        let root = if req.filename_root.is_empty() {
            md5_hex.clone()
        } else {
            // flytekit sends the base32 MD5 of the content, `=` padded.
            validate::relative_path(&req.filename_root, "filename_root")?;
            req.filename_root.clone()
        };
        let filename = if req.filename.is_empty() {
            let mut rng = rand::rng();
            (0..RANDOM_NAME_LEN)
                .map(|_| char::from(RANDOM_ALPHABET[rng.random_range(0..RANDOM_ALPHABET.len())]))
                .collect()
        } else {
            // A FlyteDirectory's files come with their paths inside it.
            validate::relative_path(&req.filename, "filename")?;
            req.filename.clone()
        };
        let expires_in = match req.expires_in {
            Some(d) if d.seconds > 0 => Duration::from_secs(d.seconds.unsigned_abs()),
            _ => DEFAULT_EXPIRY,
        };
        if expires_in > self.config.max_upload_expiry {
            return Err(AdminError::invalid(format!(
                "expires_in {}s exceeds the maximum of {}s",
                expires_in.as_secs(),
                self.config.max_upload_expiry.as_secs()
            )));
        }
        let expires = chrono::Utc::now().timestamp()
            + i64::try_from(expires_in.as_secs()).unwrap_or(i64::MAX / 2);
        let object = format!("uploads/{}/{}/{root}/{filename}", req.project, req.domain);
        let storage = &self.config.storage;
        // With an MD5 the signature covers the Content-MD5 header, which S3 checks the body
        // against: like Alula's own URLs, the URL then uploads that content and nothing else.
        let presigned = if req.content_md5.is_empty() {
            storage
                .signed_url(SignedMethod::Put, &object, expires_in)
                .await
        } else {
            storage
                .signed_put_url_with_md5(&object, &req.content_md5, expires_in)
                .await
        }
        .map_err(storage_error)?;
        let signed_url = match presigned {
            Some(url) => url.to_string(),
            None => {
                let signature = sign(&self.config.signing_key, &object, expires, &md5_hex)
                    .ok_or_else(|| {
                        AdminError::Internal("the upload signing key was refused".into())
                    })?;
                format!(
                    "{}/upload/{}?expires={expires}&md5={md5_hex}&signature={signature}",
                    self.config.public_http_url.trim_end_matches('/'),
                    url_path(&object)
                )
            }
        };
        // Both kinds of URL insist on the header when an MD5 was announced; clients that
        // send the response's headers (flytekit does) get it right without knowing that.
        let mut headers = std::collections::BTreeMap::new();
        if !req.content_md5.is_empty() {
            headers.insert(
                "Content-MD5".to_string(),
                base64::engine::general_purpose::STANDARD.encode(&req.content_md5),
            );
        }
        Ok(CreateUploadLocationResponse {
            signed_url,
            native_url: native_url(storage, &object),
            expires_at: Some(Timestamp {
                seconds: expires,
                nanos: 0,
            }),
            headers,
        })
    }
}

/// The URI clients and tasks are given for `object`. Local objects keep the `file://` form
/// flytekit has always been handed for them.
pub(crate) fn native_url(storage: &Storage, object: &str) -> String {
    let uri = storage.uri(object);
    if storage.local_root().is_some() {
        format!("file://{uri}")
    } else {
        uri
    }
}

/// Storage faults in a request's terms: a URI or key the client got wrong is its error,
/// anything the store itself says is ours.
pub(crate) fn storage_error(err: StorageError) -> AdminError {
    match err {
        StorageError::InvalidKey { .. } | StorageError::InvalidUrl { .. } => {
            AdminError::invalid(err.to_string())
        }
        StorageError::Backend { .. } if crate::error::out_of_space(&err) => {
            AdminError::ResourceExhausted(err.to_string())
        }
        StorageError::Backend { .. } => AdminError::Internal(err.to_string()),
    }
}

#[tonic::async_trait]
impl DataProxyService for DataProxy {
    async fn create_upload_location(
        &self,
        request: Request<CreateUploadLocationRequest>,
    ) -> Result<Response<CreateUploadLocationResponse>, Status> {
        self.upload_location(request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn create_download_location(
        &self,
        request: Request<CreateDownloadLocationRequest>,
    ) -> Result<Response<CreateDownloadLocationResponse>, Status> {
        self.download_location(request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn create_download_link(
        &self,
        request: Request<CreateDownloadLinkRequest>,
    ) -> Result<Response<CreateDownloadLinkResponse>, Status> {
        self.download_link(request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn get_data(
        &self,
        request: Request<GetDataRequest>,
    ) -> Result<Response<GetDataResponse>, Status> {
        DataProxy::get_data(self, request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_object_expiry_and_md5() {
        let s = sign(b"k", "uploads/p/d/r/f", 100, "ab").unwrap();
        assert!(verify(b"k", "uploads/p/d/r/f", 100, "ab", &s));
        assert!(!verify(b"k", "uploads/p/d/r/g", 100, "ab", &s));
        assert!(!verify(b"k", "uploads/p/d/r/f", 101, "ab", &s));
        assert!(!verify(b"k", "uploads/p/d/r/f", 100, "ac", &s));
        assert!(!verify(b"other", "uploads/p/d/r/f", 100, "ab", &s));
        assert!(!verify(b"k", "uploads/p/d/r/f", 100, "ab", "zz"));
    }

    #[test]
    fn url_paths_encode_all_but_plain_characters() {
        assert_eq!(
            url_path("uploads/p/d/AB==/a b#?.txt"),
            "uploads/p/d/AB%3D%3D/a%20b%23%3F.txt"
        );
        assert_eq!(url_path("é"), "%C3%A9");
    }
}
