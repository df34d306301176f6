//! Signed downloads: `CreateDownloadLocation` (a stored object's native URL) and
//! `CreateDownloadLink` (a node execution's deck) hand out GET URLs presigned by the store when
//! it can sign them (S3), else URLs of `GET /download/<object>`, which serves the object from
//! the storage only while the HMAC over the object key and the expiry holds. The
//! MAC input starts with `download\n`, which no upload MAC input can (those start with the
//! object key), so an upload URL never works as a download URL or the other way round.
//! Only data objects are signed or served, and never through a symbolic link
//! ([`crate::objects`]): the storage root of a local deployment also holds the database.

use std::sync::Arc;
use std::time::Duration;

use alula_idl::flyteidl::admin::NodeExecutionGetRequest;
use alula_idl::flyteidl::service::{
    create_download_link_request::Source, ArtifactType, CreateDownloadLinkRequest,
    CreateDownloadLinkResponse, CreateDownloadLocationRequest, CreateDownloadLocationResponse,
    PreSignedUrLs,
};
use alula_idl::wkt::Timestamp;
use alula_storage::{SignedMethod, StorageError};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::config::AdminConfig;
use crate::dataproxy::{accepted_signing_keys, hex, storage_error, unhex, url_path, DataProxy};
use crate::error::{AdminError, AdminResult};
use crate::objects::{check_key, data_object, KeyError};

/// flyteadmin's default validity of a download URL.
const DEFAULT_EXPIRY: Duration = Duration::from_secs(3600);

fn mac(key: &[u8], object: &str, expires: i64) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).ok()?;
    mac.update(b"download\n");
    mac.update(object.as_bytes());
    mac.update(b"\n");
    mac.update(expires.to_string().as_bytes());
    Some(mac)
}

fn verify(key: &[u8], object: &str, expires: i64, signature: &str) -> bool {
    match (unhex(signature), mac(key, object, expires)) {
        (Some(bytes), Some(mac)) => mac.verify_slice(&bytes).is_ok(),
        _ => false,
    }
}

impl DataProxy {
    /// A signed GET URL for `native_url` and when it expires: presigned by the store when it
    /// can sign, else a URL of Alula's own download endpoint.
    async fn signed_download(
        &self,
        native_url: &str,
        expires_in: Option<&alula_idl::wkt::Duration>,
    ) -> AdminResult<(String, Timestamp)> {
        let config = &self.config;
        // The database and other state share a local root with the data; links lead anywhere.
        let object = data_object(&config.storage, native_url)?;
        let expires_in = match expires_in {
            Some(d) if d.seconds > 0 => Duration::from_secs(d.seconds.unsigned_abs()),
            _ => DEFAULT_EXPIRY,
        };
        if expires_in > config.max_upload_expiry {
            return Err(AdminError::invalid(format!(
                "expires_in {}s exceeds the maximum of {}s",
                expires_in.as_secs(),
                config.max_upload_expiry.as_secs()
            )));
        }
        let expires = chrono::Utc::now().timestamp()
            + i64::try_from(expires_in.as_secs()).unwrap_or(i64::MAX / 2);
        let presigned = config
            .storage
            .signed_url(SignedMethod::Get, &object, expires_in)
            .await
            .map_err(storage_error)?;
        let url = match presigned {
            Some(url) => url.to_string(),
            None => {
                let signature = mac(&config.signing_key, &object, expires)
                    .map(|m| hex(&m.finalize().into_bytes()))
                    .ok_or_else(|| AdminError::Internal("the signing key was refused".into()))?;
                format!(
                    "{}/download/{}?expires={expires}&signature={signature}",
                    config.public_http_url.trim_end_matches('/'),
                    url_path(&object)
                )
            }
        };
        Ok((
            url,
            Timestamp {
                seconds: expires,
                nanos: 0,
            },
        ))
    }

    pub(crate) async fn download_location(
        &self,
        req: CreateDownloadLocationRequest,
    ) -> AdminResult<CreateDownloadLocationResponse> {
        if req.native_url.is_empty() {
            return Err(AdminError::invalid("missing native_url"));
        }
        let (signed_url, expires_at) = self
            .signed_download(&req.native_url, req.expires_in.as_ref())
            .await?;
        Ok(CreateDownloadLocationResponse {
            signed_url,
            expires_at: Some(expires_at),
        })
    }

    /// Signed URLs for a node execution's deck, the one artifact type flyteidl defines.
    pub(crate) async fn deck_urls(
        &self,
        id: alula_idl::flyteidl::core::NodeExecutionIdentifier,
        expires_in: Option<&alula_idl::wkt::Duration>,
    ) -> AdminResult<PreSignedUrLs> {
        let node = self
            .api
            .get_node_execution(NodeExecutionGetRequest {
                id: Some(id.clone()),
            })
            .await?;
        let deck = node.closure.map(|c| c.deck_uri).unwrap_or_default();
        if deck.is_empty() {
            return Err(AdminError::not_found(format!(
                "node execution {} of execution {} has no deck",
                id.node_id,
                id.execution_id.map(|e| e.name).unwrap_or_default()
            )));
        }
        let (url, expires_at) = self.signed_download(&deck, expires_in).await?;
        Ok(PreSignedUrLs {
            signed_url: vec![url],
            expires_at: Some(expires_at),
        })
    }

    // The deprecated top-level fields are still filled: older clients read only those.
    #[allow(deprecated)]
    pub(crate) async fn download_link(
        &self,
        req: CreateDownloadLinkRequest,
    ) -> AdminResult<CreateDownloadLinkResponse> {
        if req.artifact_type != ArtifactType::Deck as i32 {
            return Err(AdminError::invalid(format!(
                "artifact_type {} is not supported; only ARTIFACT_TYPE_DECK is",
                req.artifact_type
            )));
        }
        let Some(Source::NodeExecutionId(id)) = req.source else {
            return Err(AdminError::invalid("missing source node_execution_id"));
        };
        let urls = self.deck_urls(id, req.expires_in.as_ref()).await?;
        Ok(CreateDownloadLinkResponse {
            signed_url: urls.signed_url.clone(),
            expires_at: urls.expires_at,
            pre_signed_urls: Some(urls),
        })
    }
}

#[derive(Deserialize)]
struct Signed {
    expires: i64,
    signature: String,
}

/// `GET /download/<object>?expires=..&signature=..`.
pub fn router(config: Arc<AdminConfig>) -> Router {
    Router::new()
        .route("/download/{*object}", get(serve))
        .with_state(config)
}

async fn serve(
    State(config): State<Arc<AdminConfig>>,
    UrlPath(object): UrlPath<String>,
    Query(signed): Query<Signed>,
) -> Response {
    let signed_by_an_accepted_key = accepted_signing_keys(&config)
        .any(|key| verify(key, &object, signed.expires, &signed.signature));
    if !signed_by_an_accepted_key {
        return (StatusCode::FORBIDDEN, "invalid download signature").into_response();
    }
    if chrono::Utc::now().timestamp() > signed.expires {
        return (StatusCode::FORBIDDEN, "download URL has expired").into_response();
    }
    // Checked again when serving: a link may have appeared since the URL was signed.
    match check_key(&config.storage, &object) {
        Ok(()) => {}
        Err(KeyError::NotPlain) => {
            return (StatusCode::BAD_REQUEST, "not a plain object path").into_response()
        }
        Err(KeyError::NotData) => {
            return (
                StatusCode::FORBIDDEN,
                format!("{object} is not a data object"),
            )
                .into_response()
        }
        Err(KeyError::Link(e @ StorageError::InvalidKey { .. })) => {
            return (StatusCode::FORBIDDEN, e.to_string()).into_response()
        }
        Err(KeyError::Link(e)) => {
            tracing::error!(error = %e, object, "download check failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read {object}"),
            )
                .into_response();
        }
    }
    match config.storage.get(&object).await {
        Ok(Some(bytes)) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
        Ok(None) => (
            StatusCode::NOT_FOUND,
            format!("object {object} does not exist"),
        )
            .into_response(),
        Err(e @ StorageError::InvalidKey { .. }) => {
            (StatusCode::BAD_REQUEST, e.to_string()).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, object, "download read failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read {object}: {e}"),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_signatures_bind_object_and_expiry() {
        let sig = |o: &str, e: i64| hex(&mac(b"k", o, e).unwrap().finalize().into_bytes());
        let s = sig("a/b", 10);
        assert!(verify(b"k", "a/b", 10, &s));
        assert!(!verify(b"k", "a/c", 10, &s));
        assert!(!verify(b"k", "a/b", 11, &s));
        assert!(!verify(b"other", "a/b", 10, &s));
        // An upload signature of the same object is no download signature.
        let upload = crate::dataproxy::sign(b"k", "a/b", 10, "").unwrap();
        assert!(!verify(b"k", "a/b", 10, &upload));
    }
}
