//! The one mapping from admin's errors to gRPC status codes. flytekit branches on these codes
//! (`AlreadyExists` means "registered already", and it starts an auth flow on `Unknown`), so every
//! error gets a precise code and a message naming the entity or field at fault.

use alula_compiler::CompileErrors;
use alula_idl::flyteidl::admin::EventFailureReason;
use alula_idl::wkt::Any;
use prost::Message;
use tonic::{Code, Status};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// An event admin refuses (for an entity already in a terminal phase): FailedPrecondition
    /// with the reason as a status detail, which propeller inspects to stop sending events.
    #[error("{message}")]
    EventRefused {
        message: String,
        reason: EventFailureReason,
    },
    #[error("{entity} failed to compile: {errors}")]
    Compile {
        entity: String,
        errors: CompileErrors,
    },
    /// A server-side fault that is not the client's doing.
    #[error("internal error: {0}")]
    Internal(String),
    /// The disk (or a quota) under the database or the storage is full: nothing was written,
    /// and trying again after space is freed works.
    #[error("no space left: {0}")]
    ResourceExhausted(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AdminError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidArgument(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) | Self::Compile { .. } => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::FailedPrecondition(_) | Self::EventRefused { .. } => Code::FailedPrecondition,
            Self::Internal(_) => Code::Internal,
            Self::ResourceExhausted(_) => Code::ResourceExhausted,
            Self::Store(e) if store_out_of_space(e) => Code::ResourceExhausted,
            Self::Store(StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_),
            )) => Code::Unavailable,
            Self::Store(_) => Code::Internal,
        }
    }
}

/// Whether `err`, or an error that caused it, says the disk or a quota is full (ENOSPC,
/// EDQUOT), however many layers (object_store, sqlx) wrap it.
pub(crate) fn out_of_space(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ) {
                return true;
            }
        }
        next = e.source();
    }
    false
}

/// SQLite's SQLITE_FULL ("database or disk is full") or an I/O error saying so.
fn store_out_of_space(err: &StoreError) -> bool {
    match err {
        StoreError::Database(sqlx::Error::Database(db)) => db.code().as_deref() == Some("13"),
        other => out_of_space(other),
    }
}

/// The most a status message may take on the wire. gRPC sends it percent-encoded in a header
/// (trailers-only for errors), and grpc-python refuses headers above 8 KiB in all (16 KiB
/// hard): a longer message reaches flytekit as RESOURCE_EXHAUSTED instead of our error.
const MAX_MESSAGE_WIRE_BYTES: usize = 4096;

/// The bytes tonic percent-encodes in `grpc-message` (controls, non-ASCII and these), which
/// take three bytes each on the wire.
fn wire_len(byte: u8) -> usize {
    if !(0x20..0x7f).contains(&byte) || b" \"#%<>`?{}".contains(&byte) {
        3
    } else {
        1
    }
}

/// `message` cut (at a character boundary, with an ellipsis and the full length) so that its
/// encoding fits [`MAX_MESSAGE_WIRE_BYTES`].
fn bounded(message: String) -> String {
    if message.bytes().map(wire_len).sum::<usize>() <= MAX_MESSAGE_WIRE_BYTES {
        return message;
    }
    let suffix = format!("… (message truncated, {} bytes in all)", message.len());
    let budget = MAX_MESSAGE_WIRE_BYTES - suffix.bytes().map(wire_len).sum::<usize>();
    let mut used = 0;
    let mut cut = 0;
    for (i, c) in message.char_indices() {
        let mut buf = [0u8; 4];
        used += c.encode_utf8(&mut buf).bytes().map(wire_len).sum::<usize>();
        if used > budget {
            break;
        }
        cut = i + c.len_utf8();
    }
    format!("{}{suffix}", message.get(..cut).unwrap_or_default())
}

impl From<AdminError> for Status {
    fn from(err: AdminError) -> Self {
        let code = err.code();
        if matches!(
            code,
            Code::Internal | Code::Unavailable | Code::ResourceExhausted
        ) {
            tracing::error!(error = %err, "admin request failed");
        }
        let message = match &err {
            AdminError::Store(_) if code == Code::ResourceExhausted => {
                bounded(format!("no space left: {err}"))
            }
            _ => bounded(err.to_string()),
        };
        match err {
            AdminError::EventRefused { reason, .. } => {
                let details = RpcStatus {
                    code: code as i32,
                    message: message.clone(),
                    details: vec![Any {
                        type_url: "type.googleapis.com/flyteidl.admin.EventFailureReason"
                            .to_string(),
                        value: reason.encode_to_vec(),
                    }],
                };
                Status::with_details(code, message, details.encode_to_vec().into())
            }
            _ => Status::new(code, message),
        }
    }
}

/// `google.rpc.Status`: gRPC clients (Go's `status.Details()`, Python's `grpc_status`) read
/// `grpc-status-details-bin` as this message with its details packed in `Any`.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<Any>,
}

pub type AdminResult<T> = Result<T, AdminError>;

/// The most of a client's input an error message quotes.
const QUOTED_CHARS: usize = 120;

/// `value` quoted (Rust string syntax, so control characters show as escapes) for an error
/// message, cut to its first [`QUOTED_CHARS`] characters: a message names what was wrong
/// without echoing a 100 KB filter back at the client.
pub fn quote(value: &str) -> String {
    match value.char_indices().nth(QUOTED_CHARS) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!(
            "{:?}… ({} bytes in all)",
            value.get(..cut).unwrap_or_default(),
            value.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(message: &str) -> usize {
        message.bytes().map(wire_len).sum()
    }

    #[test]
    fn messages_fit_a_header_and_say_they_were_cut() {
        assert_eq!(bounded("short".into()), "short");
        for long in [
            "x".repeat(100_000),
            "é ".repeat(50_000),
            "\0".repeat(10_000),
        ] {
            let cut = bounded(long.clone());
            assert!(wire(&cut) <= MAX_MESSAGE_WIRE_BYTES, "{}", wire(&cut));
            assert!(
                cut.ends_with(&format!(
                    "… (message truncated, {} bytes in all)",
                    long.len()
                )),
                "{cut:.100}"
            );
        }
        let status = Status::from(AdminError::invalid("y".repeat(100_000)));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(wire(status.message()) <= MAX_MESSAGE_WIRE_BYTES);
    }

    #[test]
    fn quotes_are_bounded() {
        assert_eq!(quote("a\0b"), "\"a\\0b\"");
        let quoted = quote(&"z".repeat(100_000));
        assert!(quoted.len() < 200, "{quoted}");
        assert!(quoted.ends_with("… (100000 bytes in all)"), "{quoted}");
    }
}
