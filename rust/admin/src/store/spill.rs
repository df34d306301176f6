//! Values too large for a row, kept in object storage while the row holds a reference.
//!
//! Propeller saves an execution's engine state (serde JSON) every round, and the state holds
//! the workflow's inputs, every node's inputs and outputs as literals: two 64 MB inputs made a
//! state of several hundred MB, rewritten at each save, which grew the SQLite file and its WAL to
//! 700 MB each. Here every JSON string above the limit is replaced by a reference to an object
//! named by its content's hash, so the copies of one value (the workflow's inputs, the node's
//! inputs, its outputs passed on) are one object, written once however many saves repeat it,
//! and the row keeps a few KB. Outbox events (which carry a node's full inputs and outputs)
//! above the limit are kept whole in an object of their own until delivered.

use std::collections::HashSet;
use std::sync::Mutex;

use alula_storage::{Storage, StorageError};
use axum::body::Bytes;

use super::{ExecutionKey, StoreError};

/// What a spilled string is replaced by, inside its quotes: NUL (as serde_json escapes it)
/// and a tag, then the content's hash. Strings that happen to start like this are spilled
/// whatever their size, so a reference is never mistaken for a value or the reverse.
const STRING_MARK: &[u8] = b"\\u0000alula-spill:";
/// What a spilled outbox event's bytes become: protobuf never starts with a zero byte (field 0
/// does not exist).
const EVENT_MARK: &[u8] = b"\0alula-spill:";
/// Hashes remembered as written, so a save does not ask storage again for each large value.
const KNOWN_MAX: usize = 4096;

#[derive(Debug)]
pub(super) struct Spill {
    storage: Storage,
    limit: usize,
    known: Mutex<HashSet<String>>,
}

fn dir(key: &ExecutionKey) -> String {
    format!(
        "metadata/{}/{}/{}/propeller",
        key.project, key.domain, key.name
    )
}

/// The byte ranges of the JSON string tokens (quotes included) of `json`.
fn string_tokens(json: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < json.len() && json[i] != b'"' {
            i += 1;
        }
        if i >= json.len() {
            return None;
        }
        let start = i;
        i += 1;
        while i < json.len() && json[i] != b'"' {
            i += if json[i] == b'\\' { 2 } else { 1 };
        }
        i = (i + 1).min(json.len());
        Some((start, i))
    })
}

/// The hash a string token refers to, when it is a reference.
fn reference(token: &[u8]) -> Option<&str> {
    let inner = token.get(1..token.len().saturating_sub(1))?;
    let hash = inner.strip_prefix(STRING_MARK)?;
    std::str::from_utf8(hash).ok()
}

impl Spill {
    pub(super) fn new(storage: Storage, limit: usize) -> Self {
        Self {
            storage,
            limit,
            known: Mutex::default(),
        }
    }

    fn remember(&self, key: &str) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= KNOWN_MAX {
            known.clear();
        }
        known.insert(key.to_string());
    }

    fn is_known(&self, key: &str) -> bool {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.contains(key)
    }

    /// `json` with its large strings stored and replaced by references.
    pub(super) async fn put_state(
        &self,
        key: &ExecutionKey,
        json: Vec<u8>,
    ) -> Result<Vec<u8>, StorageError> {
        let dir = dir(key);
        let mut out = Vec::new();
        let mut copied = 0;
        for (start, end) in string_tokens(&json) {
            let token = &json[start..end];
            if token.len() <= self.limit && !token[1..].starts_with(STRING_MARK) {
                continue;
            }
            let hash = alula_storage::content_name(token);
            let object = format!("{dir}/{hash}.json");
            if !self.is_known(&object) {
                self.storage
                    .put_once(&object, Bytes::copy_from_slice(token))
                    .await?;
            }
            self.remember(&object);
            out.extend_from_slice(&json[copied..start]);
            out.push(b'"');
            out.extend_from_slice(STRING_MARK);
            out.extend_from_slice(hash.as_bytes());
            out.push(b'"');
            copied = end;
        }
        if copied == 0 {
            return Ok(json);
        }
        out.extend_from_slice(&json[copied..]);
        Ok(out)
    }

    /// The state as it was saved, its references replaced by the strings they name.
    pub(super) async fn get_state(
        &self,
        key: &ExecutionKey,
        json: Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        let dir = dir(key);
        let mut out = Vec::new();
        let mut copied = 0;
        for (start, end) in string_tokens(&json) {
            let Some(hash) = reference(&json[start..end]) else {
                continue;
            };
            let object = format!("{dir}/{hash}.json");
            let token = self
                .storage
                .get(&object)
                .await?
                .ok_or_else(|| StoreError::SpillMissing(self.storage.uri(&object)))?;
            out.extend_from_slice(&json[copied..start]);
            out.extend_from_slice(&token);
            copied = end;
        }
        if copied == 0 {
            return Ok(json);
        }
        out.extend_from_slice(&json[copied..]);
        Ok(out)
    }

    /// The objects a saved (spilled) state refers to.
    pub(super) fn state_objects(key: &ExecutionKey, json: &[u8]) -> HashSet<String> {
        let dir = dir(key);
        string_tokens(json)
            .filter_map(|(start, end)| reference(&json[start..end]))
            .map(|hash| format!("{dir}/{hash}.json"))
            .collect()
    }

    /// Removes objects no saved state refers to any more (best effort: a leftover object
    /// costs space, not correctness).
    pub(super) async fn forget(&self, objects: impl IntoIterator<Item = String>) {
        for object in objects {
            self.known
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&object);
            if let Err(e) = self.storage.delete(&object).await {
                tracing::warn!(error = %e, "cannot remove a spilled value");
            }
        }
    }

    /// An outbox event as the row keeps it: itself, or a reference to where it was stored.
    pub(super) async fn put_event(
        &self,
        key: &ExecutionKey,
        event: &[u8],
    ) -> Result<Option<Vec<u8>>, StorageError> {
        if event.len() <= self.limit {
            return Ok(None);
        }
        // Not by content: acknowledging one event must not remove another's bytes.
        let object = format!("{}/event-{:016x}.pb", dir(key), rand::random::<u64>());
        self.storage
            .put(&object, Bytes::copy_from_slice(event))
            .await?;
        let mut row = EVENT_MARK.to_vec();
        row.extend_from_slice(object.as_bytes());
        Ok(Some(row))
    }

    /// The object a row's event refers to, if it was spilled.
    pub(super) fn event_object(row: &[u8]) -> Option<String> {
        let object = row.strip_prefix(EVENT_MARK)?;
        String::from_utf8(object.to_vec()).ok()
    }

    /// An outbox event's bytes, read back from storage when spilled.
    pub(super) async fn get_event(&self, row: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let Some(object) = Self::event_object(&row) else {
            return Ok(row);
        };
        let bytes = self
            .storage
            .get(&object)
            .await?
            .ok_or_else(|| StoreError::SpillMissing(self.storage.uri(&object)))?;
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ExecutionKey {
        ExecutionKey {
            project: "p".into(),
            domain: "d".into(),
            name: "x".into(),
        }
    }

    #[tokio::test]
    async fn large_strings_round_trip_once_per_content() {
        let spill = Spill::new(Storage::memory(), 16);
        let big = "y".repeat(100);
        let tricky = "\\u0000alula-spill:abc"; // a value that looks like a reference
        let json =
            format!(r#"{{"a":"{big}","b":["{big}","small","esc\"aped {big}"],"c":"{tricky}"}}"#);
        let saved = spill
            .put_state(&key(), json.clone().into_bytes())
            .await
            .unwrap();
        assert!(
            saved.len() < json.len(),
            "{}",
            String::from_utf8_lossy(&saved)
        );
        // `a` and `b[0]` share one object; the escaped one and the look-alike have their own.
        assert_eq!(Spill::state_objects(&key(), &saved).len(), 3);
        let back = spill.get_state(&key(), saved).await.unwrap();
        assert_eq!(String::from_utf8(back).unwrap(), json);
    }

    #[tokio::test]
    async fn large_events_are_stored_whole() {
        let spill = Spill::new(Storage::memory(), 16);
        assert_eq!(spill.put_event(&key(), b"small").await.unwrap(), None);
        let event = vec![7u8; 100];
        let row = spill.put_event(&key(), &event).await.unwrap().unwrap();
        assert!(row.len() < 100);
        assert_eq!(spill.get_event(row).await.unwrap(), event);
    }
}
