//! Which stored objects admin hands to clients: data objects only.
//!
//! The storage root of a local deployment also holds the server's own state (the SQLite file,
//! task work folders), and any folder may hold symbolic links. Admin signs, serves and reads on
//! a client's behalf only objects under the prefixes it writes data to, and never through a
//! link: `metadata/` (execution, node and task inputs, outputs, decks, offloaded literals),
//! `raw/` (raw output data of tasks) and `uploads/` (what `CreateUploadLocation` placed).

use alula_storage::{Storage, StorageError};

use crate::error::{quote, AdminError};

/// The top-level folders of data objects (see the module docs).
pub const DATA_PREFIXES: &[&str] = &["metadata", "raw", "uploads"];

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("{} is outside Alula's storage {root}", quote(.uri))]
    Outside { uri: String, root: String },
    #[error("{} is not a plain object path (empty, '.' or '..' segments)", quote(.uri))]
    NotPlain { uri: String },
    #[error(
        "{} is not a data object: only objects under {} of the storage are served",
        quote(.uri),
        DATA_PREFIXES.iter().map(|p| format!("{p}/")).collect::<Vec<_>>().join(", ")
    )]
    NotData { uri: String },
    #[error("{} is refused: {source}", quote(.uri))]
    Link {
        uri: String,
        // Boxed: object_store's errors are large, and this one is rare.
        #[source]
        source: Box<StorageError>,
    },
}

impl From<ObjectError> for AdminError {
    fn from(err: ObjectError) -> Self {
        match err {
            ObjectError::Link { source, .. } if matches!(*source, StorageError::Backend { .. }) => {
                AdminError::Internal(source.to_string())
            }
            refused => AdminError::invalid(refused.to_string()),
        }
    }
}

/// The key of the data object `uri` names (a URI of the configured storage; for a local folder
/// also its plain path), after checking that it is one and that no link lies on its way.
pub fn data_object(storage: &Storage, uri: &str) -> Result<String, ObjectError> {
    let key = storage.key_of(uri).ok_or_else(|| ObjectError::Outside {
        uri: uri.to_string(),
        root: storage.root_uri(),
    })?;
    check_key(storage, &key).map_err(|e| match e {
        KeyError::NotPlain => ObjectError::NotPlain {
            uri: uri.to_string(),
        },
        KeyError::NotData => ObjectError::NotData {
            uri: uri.to_string(),
        },
        KeyError::Link(source) => ObjectError::Link {
            uri: uri.to_string(),
            source: Box::new(source),
        },
    })?;
    Ok(key)
}

/// Why [`check_key`] refused a key.
#[derive(Debug)]
pub enum KeyError {
    NotPlain,
    NotData,
    Link(StorageError),
}

/// [`data_object`] for a key (the serving side of a signed URL holds keys, not URIs).
pub fn check_key(storage: &Storage, key: &str) -> Result<(), KeyError> {
    if key
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(KeyError::NotPlain);
    }
    let mut parts = key.split('/');
    let top = parts.next().unwrap_or_default();
    // A prefix alone is a folder, not an object.
    if !DATA_PREFIXES.contains(&top) || parts.next().is_none() {
        return Err(KeyError::NotData);
    }
    storage.refuse_links(key).map_err(KeyError::Link)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a panic is how a test reports failure"
    )]

    use super::*;

    #[test]
    fn only_data_objects_of_the_storage_pass() {
        let local = Storage::local("/data");
        assert_eq!(
            data_object(&local, "file:///data/metadata/p/d/e/n0/0/deck.html").unwrap(),
            "metadata/p/d/e/n0/0/deck.html"
        );
        assert_eq!(
            data_object(&local, "/data/uploads/p/d/r/f").unwrap(),
            "uploads/p/d/r/f"
        );
        for (uri, why) in [
            ("file:///etc/passwd", "outside"),
            ("s3://bucket/metadata/a", "outside"),
            ("file:///data", "not a plain object path"),
            ("file:///data/../etc/passwd", "not a plain object path"),
            (
                "file:///data/metadata/../alula.db",
                "not a plain object path",
            ),
            ("file:///data/alula.db", "not a data object"),
            ("file:///data/attempts/x/log", "not a data object"),
            ("file:///data/metadata", "not a data object"),
            ("file:///data/metadataX/a", "not a data object"),
        ] {
            let err = data_object(&local, uri).unwrap_err().to_string();
            assert!(err.contains(why), "{uri}: {err}");
        }

        let bucket = Storage::from_url("s3://bucket/prefix").unwrap();
        assert_eq!(
            data_object(&bucket, "s3://bucket/prefix/raw/a/b").unwrap(),
            "raw/a/b"
        );
        assert!(data_object(&bucket, "s3://bucket/prefix/other/a").is_err());
        assert!(data_object(&bucket, "s3://bucket/other/metadata/a").is_err());
        assert!(data_object(&bucket, "s3://bucket/prefix/raw/../../x").is_err());
    }
}
