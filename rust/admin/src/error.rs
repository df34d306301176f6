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
            Self::Store(StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_),
            )) => Code::Unavailable,
            Self::Store(_) => Code::Internal,
        }
    }
}

/// flyteadmin caps status messages so that huge compile error lists still fit in trailers.
const MAX_MESSAGE_BYTES: usize = 32_000;

impl From<AdminError> for Status {
    fn from(err: AdminError) -> Self {
        let code = err.code();
        if matches!(code, Code::Internal | Code::Unavailable) {
            tracing::error!(error = %err, "admin request failed");
        }
        let mut message = err.to_string();
        if message.len() > MAX_MESSAGE_BYTES {
            let mut cut = MAX_MESSAGE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
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
