//! Literal maps too large for a database row. Execution inputs and outputs, and node and task
//! inputs and outputs, are kept inline while small; above `max_inline_literal_bytes` they are
//! written to object storage under a key derived from what they belong to, and the row keeps the
//! URI with an empty bytes column. Readers go through [`load`] (the whole map, wherever it is)
//! or [`for_client`] (what the Get*Data calls return: the map when it is small enough to send,
//! and for stored ones always a link).

use std::time::Duration;

use alula_idl::flyteidl::admin::UrlBlob;
use alula_idl::flyteidl::core::LiteralMap;
use alula_storage::{SignedMethod, Storage, StorageError};
// The `bytes` crate's type, through the re-export of a dependency admin has anyway.
use axum::body::Bytes;
use prost::Message;

use crate::store::{ExecutionEventState, ExecutionKey, ExecutionRow};

/// How long a download link handed out with execution data stays valid.
const LINK_VALIDITY: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum LiteralsError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{what} at {uri} is not in storage {root}")]
    Outside {
        what: String,
        uri: String,
        root: String,
    },
    /// A recorded URI under the storage that names no data object (see [`crate::objects`]).
    #[error("{what}: {source}")]
    Refused {
        what: String,
        #[source]
        source: crate::objects::ObjectError,
    },
    #[error("{what} at {uri} is missing from storage")]
    Missing { what: String, uri: String },
    #[error("{what} is not a valid literal map: {source}")]
    Corrupt {
        what: String,
        #[source]
        source: prost::DecodeError,
    },
}

impl From<LiteralsError> for crate::AdminError {
    fn from(e: LiteralsError) -> Self {
        match e {
            // A recorded URI that names no data object: the call is fine, the record is not.
            LiteralsError::Refused { .. } => Self::FailedPrecondition(e.to_string()),
            LiteralsError::Storage(ref s) if crate::error::out_of_space(s) => {
                Self::ResourceExhausted(e.to_string())
            }
            // Stored data the row points at is gone or broken: the server's fault, not the
            // caller's.
            _ => Self::Internal(e.to_string()),
        }
    }
}

/// Where a literal map was put: inline bytes for the row, or the URI of the stored object.
/// Exactly one of the two is non-empty (both are for an absent map).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placed {
    pub inline: Vec<u8>,
    pub uri: String,
}

/// The storage keys of an execution's offloaded literal maps, beside the folders the propeller
/// writes (`metadata/<project>/<domain>/<name>/...`) under names it does not use.
pub mod keys {
    use crate::store::{ExecutionKey, NodeExecutionKey, TaskExecutionKey};

    fn execution_dir(key: &ExecutionKey) -> String {
        alula_storage::layout::metadata_dir(&key.id())
    }

    /// `file` (`inputs.pb`, `user_inputs.pb`, `outputs.pb`) of the execution itself.
    pub fn execution(key: &ExecutionKey, file: &str) -> String {
        format!("{}/{file}", execution_dir(key))
    }

    /// `node_<file>` of a node execution.
    pub fn node(key: &NodeExecutionKey, file: &str) -> String {
        format!(
            "{}/{}/node_{file}",
            execution_dir(&key.execution),
            key.node_id
        )
    }

    /// `task_<file>` of one task attempt, in the attempt's folder.
    pub fn task(key: &TaskExecutionKey, file: &str) -> String {
        format!(
            "{}/{}/{}/task_{file}",
            execution_dir(&key.node.execution),
            key.node.node_id,
            key.retry_attempt
        )
    }
}

/// Keeps `encoded` (a `core.LiteralMap`) inline when it is at most `limit` bytes; otherwise
/// stores it and returns its URI.
///
/// Stored maps are named by their content within the execution `key` belongs to
/// (`metadata/<p>/<d>/<n>/literals/<sha256>.pb`): one execution's inputs, user inputs, node
/// inputs, task inputs and the outputs passed up are often the same map, and each of those
/// events repeats it, so naming by `key` wrote a 64 MB input six times and more. A map already
/// stored is not written again. `key` still says which execution (and so which folder).
pub async fn place(
    storage: &Storage,
    limit: usize,
    key: &str,
    encoded: Vec<u8>,
) -> Result<Placed, LiteralsError> {
    if encoded.len() <= limit {
        return Ok(Placed {
            inline: encoded,
            uri: String::new(),
        });
    }
    let stored = content_key(key, &encoded);
    storage.put_once(&stored, Bytes::from(encoded)).await?;
    Ok(Placed {
        inline: Vec::new(),
        uri: storage.uri(&stored),
    })
}

/// `metadata/<p>/<d>/<n>/literals/<sha256 of encoded>.pb` for a key under that execution's
/// folder; other keys (not from [`keys`]) get the hash beside them.
fn content_key(key: &str, encoded: &[u8]) -> String {
    let hash = alula_storage::content_name(encoded);
    let parts: Vec<&str> = key.split('/').collect();
    match parts.as_slice() {
        ["metadata", project, domain, name, _, ..] => {
            format!("metadata/{project}/{domain}/{name}/literals/{hash}.pb")
        }
        _ => match key.rsplit_once('/') {
            Some((dir, _)) => format!("{dir}/{hash}.pb"),
            None => format!("{hash}.pb"),
        },
    }
}

fn decode(bytes: &[u8], what: &str) -> Result<LiteralMap, LiteralsError> {
    LiteralMap::decode(bytes).map_err(|source| LiteralsError::Corrupt {
        what: what.to_string(),
        source,
    })
}

fn key_of(storage: &Storage, uri: &str, what: &str) -> Result<String, LiteralsError> {
    if storage.key_of(uri).is_none() {
        return Err(LiteralsError::Outside {
            what: what.to_string(),
            uri: uri.to_string(),
            root: storage.root_uri(),
        });
    }
    data_object(storage, uri, what)
}

/// The key of `uri` when it names a data object; recorded URIs come from events, so they are
/// checked like a client's before anything is read or signed.
fn data_object(storage: &Storage, uri: &str, what: &str) -> Result<String, LiteralsError> {
    crate::objects::data_object(storage, uri).map_err(|source| LiteralsError::Refused {
        what: what.to_string(),
        source,
    })
}

/// The literal map a row holds, inline or under `uri`; `None` when it holds none. `what`
/// names it in errors ("inputs of execution p/d/x").
pub async fn load(
    storage: &Storage,
    inline: &[u8],
    uri: &str,
    what: &str,
) -> Result<Option<LiteralMap>, LiteralsError> {
    if !inline.is_empty() {
        return decode(inline, what).map(Some);
    }
    if uri.is_empty() {
        return Ok(None);
    }
    let key = key_of(storage, uri, what)?;
    let bytes = storage
        .get(&key)
        .await?
        .ok_or_else(|| LiteralsError::Missing {
            what: what.to_string(),
            uri: uri.to_string(),
        })?;
    decode(&bytes, what).map(Some)
}

/// The inputs an execution runs with (defaults and fixed inputs applied), wherever they are.
pub async fn execution_inputs(
    storage: &Storage,
    row: &ExecutionRow,
) -> Result<LiteralMap, LiteralsError> {
    let what = format!(
        "inputs of execution {}/{}/{}",
        row.key.project, row.key.domain, row.key.name
    );
    Ok(load(storage, &row.inputs, &row.inputs_uri, &what)
        .await?
        .unwrap_or_default())
}

/// The outputs an execution's events recorded, wherever they are; `None` before it has any.
pub async fn execution_outputs(
    storage: &Storage,
    key: &ExecutionKey,
    state: &ExecutionEventState,
) -> Result<Option<LiteralMap>, LiteralsError> {
    let what = format!(
        "outputs of execution {}/{}/{}",
        key.project, key.domain, key.name
    );
    load(storage, &state.outputs, &state.outputs_uri, &what).await
}

/// A literal map as the Get*Data calls return it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForClient {
    /// The map itself, unless it is stored and larger than the download limit.
    pub full: Option<LiteralMap>,
    /// A link to the stored map with its size (none for inline maps).
    pub blob: Option<UrlBlob>,
}

/// The map a row holds (inline, or stored under `uri`) for a client: stored maps come with a
/// link (presigned where the storage can sign, else the storage URI) and in full only up to
/// `max_download` bytes, as flyteadmin serves them.
pub async fn for_client(
    storage: &Storage,
    max_download: u64,
    inline: &[u8],
    uri: &str,
    what: &str,
) -> Result<ForClient, LiteralsError> {
    if !inline.is_empty() || uri.is_empty() {
        return Ok(ForClient {
            full: load(storage, inline, "", what).await?,
            blob: None,
        });
    }
    if storage.key_of(uri).is_none() {
        // A reference elsewhere (a propeller writing to its own bucket): passed on as it is,
        // with the size unknown.
        return Ok(ForClient {
            full: None,
            blob: Some(UrlBlob {
                url: uri.to_string(),
                bytes: 0,
            }),
        });
    }
    let key = data_object(storage, uri, what)?;
    let size = storage
        .head(&key)
        .await?
        .ok_or_else(|| LiteralsError::Missing {
            what: what.to_string(),
            uri: uri.to_string(),
        })?;
    let url = match storage
        .signed_url(SignedMethod::Get, &key, LINK_VALIDITY)
        .await?
    {
        Some(signed) => signed.to_string(),
        None => uri.to_string(),
    };
    let blob = Some(UrlBlob {
        url,
        bytes: i64::try_from(size).unwrap_or(i64::MAX),
    });
    let full = if size <= max_download {
        load(storage, &[], uri, what).await?
    } else {
        None
    };
    Ok(ForClient { full, blob })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alula_idl::flyteidl::core::{literal, primitive, scalar, Literal, Primitive, Scalar};

    fn map_of(text: &str) -> LiteralMap {
        let value = Literal {
            value: Some(literal::Value::Scalar(Box::new(Scalar {
                value: Some(scalar::Value::Primitive(Primitive {
                    value: Some(primitive::Value::StringValue(text.to_string())),
                })),
            }))),
            ..Default::default()
        };
        LiteralMap {
            literals: [("s".to_string(), value)].into(),
        }
    }

    #[tokio::test]
    async fn small_maps_stay_inline_and_large_ones_are_stored() {
        let storage = Storage::memory();
        let small = map_of("x").encode_to_vec();
        let placed = place(&storage, 100, "metadata/a/small.pb", small.clone())
            .await
            .unwrap();
        assert_eq!((placed.inline, placed.uri.as_str()), (small, ""));
        assert_eq!(storage.head("metadata/a/small.pb").await.unwrap(), None);

        let large = map_of(&"y".repeat(500));
        let placed = place(&storage, 100, "metadata/a/large.pb", large.encode_to_vec())
            .await
            .unwrap();
        assert!(placed.inline.is_empty());
        let hash = "memory:///metadata/a/";
        assert!(
            placed.uri.starts_with(hash) && placed.uri.ends_with(".pb"),
            "{}",
            placed.uri
        );
        // The same map again (another node's inputs, say) is the same object.
        let again = place(&storage, 100, "metadata/a/other.pb", large.encode_to_vec())
            .await
            .unwrap();
        assert_eq!(again.uri, placed.uri);
        let back = load(&storage, &[], &placed.uri, "large").await.unwrap();
        assert_eq!(back, Some(large.clone()));

        let served = for_client(&storage, 10_000, &[], &placed.uri, "large")
            .await
            .unwrap();
        assert_eq!(served.full, Some(large.clone()));
        let blob = served.blob.expect("a link for a stored map");
        assert_eq!(blob.url, placed.uri);
        assert_eq!(blob.bytes as usize, large.encoded_len());
        let too_big = for_client(&storage, 100, &[], &placed.uri, "large")
            .await
            .unwrap();
        assert_eq!(too_big.full, None);
        assert!(too_big.blob.is_some());
    }

    #[tokio::test]
    async fn missing_and_foreign_objects_are_named() {
        let storage = Storage::memory();
        let err = load(&storage, &[], "memory:///metadata/gone.pb", "inputs of x")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("inputs of x") && err.contains("gone.pb"),
            "{err}"
        );
        let err = load(&storage, &[], "s3://elsewhere/k", "outputs of y")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("s3://elsewhere/k"), "{err}");
        assert_eq!(load(&storage, &[], "", "none").await.unwrap(), None);
    }
}
