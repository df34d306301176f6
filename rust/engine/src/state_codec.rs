//! The engine state's stored form. Propeller saves an execution's [`ExecutionState`] after its
//! transitions (and a big map's state is mostly its elements and their outputs), so the form is
//! binary: postcard for the engine's own structures, flyteidl values (literals, errors, dynamic
//! workflows) as their protobuf encoding. A 100,000-element map's state is a sixth of its JSON
//! (4.4 MB against 26.8 MB) and reads twice as fast; it encodes in about the same time, and the
//! database then writes a sixth of the bytes (`cargo run --release -p alula-engine --example
//! engine_bench -- 100000`). States saved as JSON by earlier versions still decode.
//!
//! The flyteidl fields carry `#[serde(with = ...)]` adapters from here: protobuf bytes in binary
//! formats, their proto3 JSON mapping in human-readable ones (so `serde_json` of a state reads
//! as it always did, for tests and debugging).

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use prost::Message;
use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

use crate::state::ExecutionState;

/// The first bytes of a binary state (the version of the form after them).
const MAGIC: &[u8; 4] = b"ALS\x01";

#[derive(Debug, thiserror::Error)]
pub enum StateCodecError {
    #[error("engine state: {0}")]
    Binary(#[from] postcard::Error),
    #[error("engine state (JSON): {0}")]
    Json(#[from] serde_json::Error),
    #[error("engine state: neither Alula's binary form nor JSON (starts with {0:02x?})")]
    Unknown(Vec<u8>),
}

/// The stored form of `state`.
pub fn encode(state: &ExecutionState) -> Result<Vec<u8>, StateCodecError> {
    let body = postcard::to_allocvec(state)?;
    let mut out = Vec::with_capacity(MAGIC.len() + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&body);
    Ok(out)
}

/// A state as [`encode`] wrote it, or as JSON (earlier versions).
pub fn decode(bytes: &[u8]) -> Result<ExecutionState, StateCodecError> {
    if let Some(body) = bytes.strip_prefix(MAGIC.as_slice()) {
        return Ok(postcard::from_bytes(body)?);
    }
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(serde_json::from_slice(bytes)?),
        _ => Err(StateCodecError::Unknown(
            bytes.iter().take(8).copied().collect(),
        )),
    }
}

/// A flyteidl value serialized by the rule above.
struct Ref<'a, T>(&'a T);

thread_local! {
    /// One buffer per thread for the protobuf encodings (a map's state holds hundreds of
    /// thousands of literals: one allocation each would be most of the cost).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl<T: Message + Serialize> Serialize for Ref<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            return self.0.serialize(serializer);
        }
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut buffer) => {
                buffer.clear();
                // Encoding into a Vec cannot run out of room.
                let _ = self.0.encode(&mut *buffer);
                serializer.serialize_bytes(&buffer)
            }
            // Never nested in practice (a message encodes its parts itself); if it were, a
            // buffer of its own.
            Err(_) => serializer.serialize_bytes(&self.0.encode_to_vec()),
        })
    }
}

/// A flyteidl value deserialized by the rule above.
struct Owned<T>(T);

impl<'de, T: Message + Default + Deserialize<'de>> Deserialize<'de> for Owned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            return T::deserialize(deserializer).map(Owned);
        }
        struct Bytes<T>(PhantomData<T>);
        impl<T: Message + Default> Visitor<'_> for Bytes<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a protobuf-encoded flyteidl message")
            }
            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<T, E> {
                T::decode(bytes).map_err(E::custom)
            }
        }
        deserializer
            .deserialize_bytes(Bytes(PhantomData))
            .map(Owned)
    }
}

/// `#[serde(with = "proto")]` for a flyteidl message.
pub(crate) mod proto {
    use super::*;

    pub fn serialize<T: Message + Serialize, S: Serializer>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        Ref(value).serialize(serializer)
    }

    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
    where
        T: Message + Default + Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Owned::deserialize(deserializer).map(|o| o.0)
    }
}

/// `#[serde(with = "proto_option")]` for an optional flyteidl message.
pub(crate) mod proto_option {
    use super::*;

    pub fn serialize<T: Message + Serialize, S: Serializer>(
        value: &Option<T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.as_ref().map(Ref).serialize(serializer)
    }

    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        T: Message + Default + Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Option::<Owned<T>>::deserialize(deserializer)?.map(|o| o.0))
    }
}

/// `#[serde(with = "proto_columns")]` for a map's output columns (name → one value per
/// element).
pub(crate) mod proto_columns {
    use super::*;

    pub fn serialize<T: Message + Serialize, S: Serializer>(
        columns: &BTreeMap<String, Vec<T>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            columns
                .iter()
                .map(|(name, column)| (name, column.iter().map(Ref).collect::<Vec<_>>())),
        )
    }

    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<BTreeMap<String, Vec<T>>, D::Error>
    where
        T: Message + Default + Deserialize<'de>,
        D: Deserializer<'de>,
    {
        let columns = BTreeMap::<String, Vec<Owned<T>>>::deserialize(deserializer)?;
        Ok(columns
            .into_iter()
            .map(|(name, column)| (name, column.into_iter().map(|o| o.0).collect()))
            .collect())
    }
}
