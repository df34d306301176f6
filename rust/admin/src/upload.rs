//! The HTTP side of local storage: `PUT /upload/<object>?expires=..&md5=..&signature=..`
//! receives what a signed URL from `CreateUploadLocation` allows, streaming it to a temporary
//! file that is renamed into place only once the size and MD5 are right, so a reader never sees
//! half an upload. `GET /healthcheck` answers 200 like flyteadmin's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, put};
use axum::Router;
use base64::Engine;
use md5::{Digest, Md5};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio_stream::StreamExt;

use crate::config::AdminConfig;
use crate::dataproxy::{unhex, verify};

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
    if !verify(
        &config.signing_key,
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
    let target = config.storage_root.join(&object);
    match store(&target, body, config.max_upload_bytes, expected_md5).await {
        Ok(()) => reply(StatusCode::OK, ""),
        Err(e) => e,
    }
}

async fn store(
    target: &Path,
    body: Body,
    max_bytes: usize,
    expected_md5: Option<Vec<u8>>,
) -> Result<(), Reply> {
    let io = |e: std::io::Error| {
        tracing::error!(error = %e, path = %target.display(), "upload write failed");
        reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot store upload: {e}"),
        )
    };
    let dir = target.parent().map(Path::to_path_buf).unwrap_or_default();
    tokio::fs::create_dir_all(&dir).await.map_err(io)?;
    let temp: PathBuf = dir.join(format!(
        ".{}.partial-{}",
        target
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        rand::random::<u64>()
    ));
    let result = write_checked(&temp, body, max_bytes, expected_md5).await;
    match result {
        Ok(()) => tokio::fs::rename(&temp, target).await.map_err(io),
        Err(e) => {
            // Best effort: a leftover partial file is invisible to readers anyway.
            let _ = tokio::fs::remove_file(&temp).await;
            Err(e)
        }
    }
}

async fn write_checked(
    temp: &Path,
    body: Body,
    max_bytes: usize,
    expected_md5: Option<Vec<u8>>,
) -> Result<(), Reply> {
    let io = |e: std::io::Error| {
        reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot store upload: {e}"),
        )
    };
    let mut file = tokio::fs::File::create(temp).await.map_err(io)?;
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
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.sync_all().await.map_err(io)?;
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
