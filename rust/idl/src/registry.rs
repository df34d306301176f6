//! Look up a generated message type by its protobuf full name (`flyteidl.core.Literal`).
//!
//! Used where only a name is known at run time: the byte round-trip test tool, debugging
//! commands that decode a stored blob, and error messages that name the message at fault.

/// What every generated message supports: binary protobuf and proto3 JSON.
pub trait WireMessage:
    prost::Message + Default + serde::Serialize + serde::de::DeserializeOwned + 'static
{
}

impl<T> WireMessage for T where
    T: prost::Message + Default + serde::Serialize + serde::de::DeserializeOwned + 'static
{
}

/// Generic code run against the concrete type selected by [`visit_message`].
pub trait MessageVisitor {
    type Output;
    fn visit<M: WireMessage>(self) -> Self::Output;
}

include!(concat!(env!("OUT_DIR"), "/registry.rs"));

/// Why a named message could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("no message named {0:?} in proto/")]
    UnknownMessage(String),
    #[error("{message}: invalid protobuf bytes: {source}")]
    Decode {
        message: String,
        source: prost::DecodeError,
    },
    #[error("{message}: JSON mapping failed: {source}")]
    Json {
        message: String,
        source: serde_json::Error,
    },
}

/// Decodes `bytes` as the named message and encodes it again (drops unknown fields).
pub fn reencode(full_name: &str, bytes: &[u8]) -> Result<Vec<u8>, ConvertError> {
    struct Reencode<'a>(&'a str, &'a [u8]);
    impl MessageVisitor for Reencode<'_> {
        type Output = Result<Vec<u8>, ConvertError>;
        fn visit<M: WireMessage>(self) -> Self::Output {
            let msg = M::decode(self.1).map_err(|source| ConvertError::Decode {
                message: self.0.to_string(),
                source,
            })?;
            Ok(msg.encode_to_vec())
        }
    }
    visit_message(full_name, Reencode(full_name, bytes))
        .ok_or_else(|| ConvertError::UnknownMessage(full_name.to_string()))?
}

/// Decodes `bytes` as the named message and renders its proto3 JSON mapping.
pub fn to_json(full_name: &str, bytes: &[u8]) -> Result<String, ConvertError> {
    struct ToJson<'a>(&'a str, &'a [u8]);
    impl MessageVisitor for ToJson<'_> {
        type Output = Result<String, ConvertError>;
        fn visit<M: WireMessage>(self) -> Self::Output {
            let msg = M::decode(self.1).map_err(|source| ConvertError::Decode {
                message: self.0.to_string(),
                source,
            })?;
            serde_json::to_string(&msg).map_err(|source| ConvertError::Json {
                message: self.0.to_string(),
                source,
            })
        }
    }
    visit_message(full_name, ToJson(full_name, bytes))
        .ok_or_else(|| ConvertError::UnknownMessage(full_name.to_string()))?
}

/// Parses proto3 JSON as the named message and encodes it as binary protobuf.
pub fn from_json(full_name: &str, json: &str) -> Result<Vec<u8>, ConvertError> {
    struct FromJson<'a>(&'a str, &'a str);
    impl MessageVisitor for FromJson<'_> {
        type Output = Result<Vec<u8>, ConvertError>;
        fn visit<M: WireMessage>(self) -> Self::Output {
            let msg: M = serde_json::from_str(self.1).map_err(|source| ConvertError::Json {
                message: self.0.to_string(),
                source,
            })?;
            Ok(msg.encode_to_vec())
        }
    }
    visit_message(full_name, FromJson(full_name, json))
        .ok_or_else(|| ConvertError::UnknownMessage(full_name.to_string()))?
}
