//! Uploads for storages that cannot presign (local folders): `PUT /upload/<object>?expires=..
//! &md5=..&signature=..` receives what a signed URL from `CreateUploadLocation` allows,
//! streaming it into the storage, where the object appears only once the size and MD5 are
//! right, so a reader never sees half an upload. `GET /healthcheck` answers 200 like
//! flyteadmin's.

use std::sync::Arc;

use alula_storage::{Storage, StorageError, StreamedPut};
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, put};
use axum::Router;
use base64::Engine;
use md5::{Digest, Md5};
use serde::Deserialize;
use tokio_stream::StreamExt;

use crate::config::AdminConfig;
use crate::dataproxy::{unhex, verify_with_any_key};

#[derive(Deserialize)]
struct Signed {
    expires: i64,
    #[serde(default)]
    md5: String,
    signature: String,
}

type Reply = (StatusCode, String);

fn reply(status: StatusCode, message: impl Into<String>) -> Reply {
    (status, message.into())
}

/// The router of the HTTP port.
pub fn router(config: Arc<AdminConfig>) -> Router {
    let limit = config.max_upload_bytes;
    Router::new()
        .route("/healthcheck", get(|| async { "OK" }))
        .route("/upload/{*object}", put(receive))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(config)
}

async fn receive(
    State(config): State<Arc<AdminConfig>>,
    UrlPath(object): UrlPath<String>,
    Query(signed): Query<Signed>,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    if !verify_with_any_key(
        &config,
        &object,
        signed.expires,
        &signed.md5,
        &signed.signature,
    ) {
        return reply(StatusCode::FORBIDDEN, "invalid upload signature");
    }
    if chrono::Utc::now().timestamp() > signed.expires {
        return reply(StatusCode::FORBIDDEN, "upload URL has expired");
    }
    // A link on the way would take the write out of the storage root.
    if let Err(e) = config.storage.refuse_links(&object) {
        return reply(StatusCode::FORBIDDEN, e.to_string());
    }
    let expected_md5 = if signed.md5.is_empty() {
        None
    } else {
        let announced = headers
            .get("content-md5")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok());
        let signed_md5 = unhex(&signed.md5);
        if announced.is_none() || announced != signed_md5 {
            return reply(
                StatusCode::BAD_REQUEST,
                "Content-MD5 header missing or different from the MD5 the URL was issued for",
            );
        }
        signed_md5
    };
    match store(
        &config.storage,
        &object,
        body,
        config.max_upload_bytes,
        expected_md5,
    )
    .await
    {
        Ok(()) => reply(StatusCode::OK, ""),
        Err(e) => e,
    }
}

/// Streams `body` into the object, which appears only if the size and MD5 are right.
async fn store(
    storage: &Storage,
    object: &str,
    body: Body,
    max_bytes: usize,
    expected_md5: Option<Vec<u8>>,
) -> Result<(), Reply> {
    let failed = |e: StorageError| {
        tracing::error!(error = %e, object, "upload write failed");
        reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot store upload: {e}"),
        )
    };
    let mut upload = storage.put_streamed(object).await.map_err(failed)?;
    match write_checked(&mut upload, body, max_bytes, expected_md5).await {
        Ok(()) => upload.finish().await.map_err(failed),
        Err(e) => {
            // Best effort: an abandoned write is never visible to readers anyway.
            if let Err(abort) = upload.abort().await {
                tracing::warn!(error = %abort, object, "abandoning an upload failed");
            }
            Err(e)
        }
    }
}

async fn write_checked(
    upload: &mut StreamedPut,
    body: Body,
    max_bytes: usize,
    expected_md5: Option<Vec<u8>>,
) -> Result<(), Reply> {
    let mut hasher = Md5::new();
    let mut written = 0usize;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| reply(StatusCode::BAD_REQUEST, format!("upload interrupted: {e}")))?;
        written += chunk.len();
        if written > max_bytes {
            return Err(reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("upload exceeds {max_bytes} bytes"),
            ));
        }
        hasher.update(&chunk);
        upload.write(chunk).await.map_err(|e| {
            reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot store upload: {e}"),
            )
        })?;
    }
    if let Some(expected) = expected_md5 {
        if hasher.finalize().as_slice() != expected.as_slice() {
            return Err(reply(
                StatusCode::BAD_REQUEST,
                "uploaded bytes do not match the announced MD5",
            ));
        }
    }
    Ok(())
}
