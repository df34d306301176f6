//! Whole objects, ranges, listings and streamed transfers between local files and any URI
//! [`Located`] opens. Transfers never hold a whole object: downloads write each chunk as it
//! arrives, uploads read the file a part at a time into a multipart upload with a bounded
//! number of parts in flight, so a 1 GB file costs tens of MB of memory, not 1 GB.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::path::{Path as ObjectPath, PathPart};
use object_store::{ObjectStoreExt, PutPayload};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::uri::{Located, UriError};

/// The size of an upload's parts (S3 wants at least 5 MiB but the last).
const PART_BYTES: usize = 8 << 20;
/// Parts of one upload in flight at once: memory is about `PART_BYTES` times this plus one.
const PARTS_IN_FLIGHT: usize = 4;
/// Files of a folder moved at once.
const FILES_IN_FLIGHT: usize = 4;

/// One object listed under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub uri: String,
    /// The object's path below the prefix listed (`a/b.txt`).
    pub relative: String,
    pub size: u64,
}

/// The whole object (for small ones: literal maps, error documents).
pub async fn get(uri: &str) -> Result<Bytes, UriError> {
    let at = Located::open(uri)?;
    let result = at
        .store
        .get(&at.path)
        .await
        .map_err(UriError::store("read", uri))?;
    result.bytes().await.map_err(UriError::store("read", uri))
}

/// Writes `bytes` as the object (readers see the old object or the new one).
pub async fn put(uri: &str, bytes: Bytes) -> Result<(), UriError> {
    let at = Located::open(uri)?;
    at.store
        .put(&at.path, PutPayload::from_bytes(bytes))
        .await
        .map_err(UriError::store("write", uri))?;
    Ok(())
}

/// The object's size, `None` when there is none.
pub async fn size(uri: &str) -> Result<Option<u64>, UriError> {
    let at = Located::open(uri)?;
    match at.store.head(&at.path).await {
        Ok(meta) => Ok(Some(meta.size)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(UriError::store("stat", uri)(e)),
    }
}

/// Bytes `start..end` of the object (random access: one parquet footer, one record).
pub async fn read_range(uri: &str, start: u64, end: u64) -> Result<Bytes, UriError> {
    if end < start {
        return Err(UriError::Invalid {
            uri: uri.to_string(),
            reason: format!("range {start}..{end} ends before it starts"),
        });
    }
    let at = Located::open(uri)?;
    at.store
        .get_range(&at.path, start..end)
        .await
        .map_err(UriError::store("read", uri))
}

/// Every object under the folder `prefix` (its path segments, not a string prefix: `a/b`
/// lists `a/b/c` but not `a/bc`), sorted by path.
pub async fn list(prefix: &str) -> Result<Vec<Listed>, UriError> {
    let at = Located::open(prefix)?;
    list_at(&at, prefix).await
}

async fn list_at(at: &Located, prefix: &str) -> Result<Vec<Listed>, UriError> {
    let root = at.path.as_ref().to_string();
    let metas: Vec<_> = at
        .store
        .list(Some(&at.path))
        .try_collect()
        .await
        .map_err(UriError::store("list", prefix))?;
    let mut listed: Vec<Listed> = metas
        .into_iter()
        .map(|meta| {
            let full = meta.location.as_ref();
            let relative = full
                .strip_prefix(root.as_str())
                .unwrap_or(full)
                .trim_start_matches('/')
                .to_string();
            Listed {
                uri: at.uri_of(&meta.location),
                relative,
                size: meta.size,
            }
        })
        .collect();
    listed.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(listed)
}

/// A name next to `dest` for a download in progress, renamed over it once whole, so a reader
/// never sees half a file.
fn staging_name(dest: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned());
    dest.with_file_name(format!(
        ".{}.{}-{n}.part",
        name.unwrap_or_default(),
        std::process::id()
    ))
}

/// Streams the object into the local file `dest` (its folders made as needed); returns the
/// bytes written.
pub async fn download(uri: &str, dest: &Path) -> Result<u64, UriError> {
    let at = Located::open(uri)?;
    download_at(&at, uri, dest).await
}

async fn download_at(at: &Located, uri: &str, dest: &Path) -> Result<u64, UriError> {
    let result = at
        .store
        .get(&at.path)
        .await
        .map_err(UriError::store("read", uri))?;
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(UriError::io("create folder", parent))?;
    }
    let staging = staging_name(dest);
    let written = async {
        let mut file = tokio::fs::File::create(&staging)
            .await
            .map_err(UriError::io("create", &staging))?;
        let mut stream = result.into_stream();
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(UriError::store("read", uri))?;
            file.write_all(&chunk)
                .await
                .map_err(UriError::io("write", &staging))?;
            written += chunk.len() as u64;
        }
        file.flush()
            .await
            .map_err(UriError::io("write", &staging))?;
        tokio::fs::rename(&staging, dest)
            .await
            .map_err(UriError::io("rename", dest))?;
        Ok(written)
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&staging).await;
    }
    written
}

/// Streams the local file `source` into the object `uri` (one request when small, a multipart
/// upload otherwise); returns the bytes read. The object appears only once whole.
pub async fn upload(source: &Path, uri: &str) -> Result<u64, UriError> {
    let at = Located::open(uri)?;
    upload_at(source, &at, uri).await
}

async fn upload_at(source: &Path, at: &Located, uri: &str) -> Result<u64, UriError> {
    let mut file = tokio::fs::File::open(source)
        .await
        .map_err(UriError::io("open", source))?;
    let mut writer = BufWriter::with_capacity(at.store.clone(), at.path.clone(), PART_BYTES)
        .with_max_concurrency(PARTS_IN_FLIGHT);
    let sent = async {
        let mut total = 0u64;
        loop {
            let mut part = BytesMut::with_capacity(PART_BYTES);
            while part.len() < PART_BYTES {
                let n = file
                    .read_buf(&mut part)
                    .await
                    .map_err(UriError::io("read", source))?;
                if n == 0 {
                    break;
                }
            }
            if part.is_empty() {
                break;
            }
            total += part.len() as u64;
            writer
                .put(part.freeze())
                .await
                .map_err(UriError::store("write", uri))?;
        }
        writer.shutdown().await.map_err(|e| UriError::Store {
            op: "write",
            uri: uri.to_string(),
            source: object_store::Error::Generic {
                store: "upload",
                source: Box::new(e),
            },
        })?;
        Ok(total)
    }
    .await;
    if sent.is_err() {
        // Leaves no parts behind (S3 keeps unfinished multipart uploads, and bills them).
        let _ = writer.abort().await;
    }
    sent
}

/// Downloads every object under the folder `prefix` into `dest`, keeping their relative
/// paths; returns how many files were written. An empty or missing folder makes `dest` empty.
pub async fn download_dir(prefix: &str, dest: &Path) -> Result<usize, UriError> {
    let at = Located::open(prefix)?;
    let listed = list_at(&at, prefix).await?;
    tokio::fs::create_dir_all(dest)
        .await
        .map_err(UriError::io("create folder", dest))?;
    let mut targets = Vec::with_capacity(listed.len());
    for item in &listed {
        let relative = Path::new(&item.relative);
        // Object names are not paths: none may climb out of `dest` or name a root.
        if item.relative.is_empty()
            || relative
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(UriError::Invalid {
                uri: item.uri.clone(),
                reason: "not a relative path below the folder".into(),
            });
        }
        targets.push((item.uri.clone(), dest.join(relative)));
    }
    let count = targets.len();
    futures::stream::iter(targets)
        .map(|(uri, target)| async move { download(&uri, &target).await })
        .buffer_unordered(FILES_IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(count)
}

/// Uploads every file under the local folder `source` below the folder `prefix`, keeping their
/// relative paths; returns how many files were sent.
pub async fn upload_dir(source: &Path, prefix: &str) -> Result<usize, UriError> {
    let at = Located::open(prefix)?;
    let source = source.to_path_buf();
    let files = tokio::task::spawn_blocking({
        let source = source.clone();
        move || files_under(&source)
    })
    .await
    .map_err(|e| UriError::Io {
        op: "walk",
        path: source.display().to_string(),
        source: std::io::Error::other(e),
    })??;
    let count = files.len();
    futures::stream::iter(files)
        .map(|relative| {
            let extra: Vec<PathPart<'static>> = relative
                .components()
                .map(|c| PathPart::from(c.as_os_str().to_string_lossy().into_owned()))
                .collect();
            let path = ObjectPath::from_iter(at.path.parts().chain(extra));
            let target = at.at(path);
            let file = source.join(&relative);
            async move {
                let uri = target.uri();
                upload_at(&file, &target, &uri).await
            }
        })
        .buffer_unordered(FILES_IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(count)
}

/// The files under `root`, as paths relative to it. Links are followed to files (a folder
/// the user built with links uploads what it shows), not into folders (no cycles).
fn files_under(root: &Path) -> Result<Vec<PathBuf>, UriError> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let folder = root.join(&relative);
        let entries = std::fs::read_dir(&folder).map_err(UriError::io("list", &folder))?;
        for entry in entries {
            let entry = entry.map_err(UriError::io("list", &folder))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(UriError::io("stat", &path))?;
            let child = relative.join(entry.file_name());
            if kind.is_dir() {
                pending.push(child);
            } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
                found.push(child);
            }
        }
    }
    found.sort();
    Ok(found)
}
