//! Signed downloads from local storage: `CreateDownloadLocation` (a stored object's native URL)
//! and `CreateDownloadLink` (a node execution's deck) hand out URLs of `GET /download/<object>`,
//! which serves the object only while the HMAC over the object key and the expiry holds. The
//! MAC input starts with `download\n`, which no upload MAC input can (those start with the
//! object key), so an upload URL never works as a download URL or the other way round.

use std::sync::Arc;
use std::time::Duration;

use alula_idl::flyteidl::admin::NodeExecutionGetRequest;
use alula_idl::flyteidl::service::{
    create_download_link_request::Source, ArtifactType, CreateDownloadLinkRequest,
    CreateDownloadLinkResponse, CreateDownloadLocationRequest, CreateDownloadLocationResponse,
    PreSignedUrLs,
};
use alula_idl::wkt::Timestamp;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::config::AdminConfig;
use crate::dataproxy::{hex, unhex, DataProxy};
use crate::error::{AdminError, AdminResult};

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

/// The object key of a `file://` URL under the storage root; anything else cannot be served.
fn object_of(config: &AdminConfig, native_url: &str) -> AdminResult<String> {
    let path = native_url.strip_prefix("file://").ok_or_else(|| {
        AdminError::invalid(format!(
            "{native_url:?} is not a file:// URL of Alula's local storage"
        ))
    })?;
    let relative = std::path::Path::new(path)
        .strip_prefix(&config.storage_root)
        .map_err(|_| {
            AdminError::invalid(format!(
                "{native_url:?} is outside Alula's storage root {}",
                config.storage_root.display()
            ))
        })?;
    let parts: Vec<&str> = relative
        .components()
        .map(|c| match c {
            std::path::Component::Normal(part) => part.to_str(),
            _ => None,
        })
        .collect::<Option<_>>()
        .ok_or_else(|| AdminError::invalid(format!("{native_url:?} is not a plain object path")))?;
    if parts.is_empty() {
        return Err(AdminError::invalid(format!(
            "{native_url:?} names no object"
        )));
    }
    Ok(parts.join("/"))
}

impl DataProxy {
    /// A signed GET URL for `native_url` and when it expires.
    fn signed_download(
        &self,
        native_url: &str,
        expires_in: Option<&alula_idl::wkt::Duration>,
    ) -> AdminResult<(String, Timestamp)> {
        let config = &self.config;
        let object = object_of(config, native_url)?;
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
        let signature = mac(&config.signing_key, &object, expires)
            .map(|m| hex(&m.finalize().into_bytes()))
            .ok_or_else(|| AdminError::Internal("the signing key was refused".into()))?;
        let url = format!(
            "{}/download/{object}?expires={expires}&signature={signature}",
            config.public_http_url.trim_end_matches('/')
        );
        Ok((
            url,
            Timestamp {
                seconds: expires,
                nanos: 0,
            },
        ))
    }

    pub(crate) fn download_location(
        &self,
        req: CreateDownloadLocationRequest,
    ) -> AdminResult<CreateDownloadLocationResponse> {
        if req.native_url.is_empty() {
            return Err(AdminError::invalid("missing native_url"));
        }
        let (signed_url, expires_at) =
            self.signed_download(&req.native_url, req.expires_in.as_ref())?;
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
        let (url, expires_at) = self.signed_download(&deck, expires_in)?;
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
    if !verify(
        &config.signing_key,
        &object,
        signed.expires,
        &signed.signature,
    ) {
        return (StatusCode::FORBIDDEN, "invalid download signature").into_response();
    }
    if chrono::Utc::now().timestamp() > signed.expires {
        return (StatusCode::FORBIDDEN, "download URL has expired").into_response();
    }
    match tokio::fs::read(config.storage_root.join(&object)).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
            StatusCode::NOT_FOUND,
            format!("object {object} does not exist"),
        )
            .into_response(),
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

    #[test]
    fn only_objects_under_the_storage_root_are_signed() {
        let config = AdminConfig::new("/data".into(), "http://h".into(), b"k".to_vec());
        assert_eq!(
            object_of(&config, "file:///data/a/b.html").unwrap(),
            "a/b.html"
        );
        assert!(object_of(&config, "file:///etc/passwd").is_err());
        assert!(object_of(&config, "file:///data/../etc/passwd").is_err());
        assert!(object_of(&config, "s3://bucket/a").is_err());
        assert!(object_of(&config, "file:///data").is_err());
    }
}
