//! What a page answers when the API refuses: the status gRPC-gateway would give the same code,
//! and a page that says what went wrong in the API's own words.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use tonic::Code;

use crate::shell;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The API refused or failed the call.
    #[error("{}", .0.message())]
    Api(#[from] tonic::Status),
    /// The URL or form asked for something that does not exist or is malformed.
    #[error("{message}")]
    Request { status: StatusCode, message: String },
}

pub type ConsoleResult<T> = Result<T, ConsoleError>;

impl ConsoleError {
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::Request {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::Request {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// The caller may not do this (the page asked the gate before calling anything).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Request {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Api(status) => alula_admin::rest::http_status(status.code()),
            Self::Request { status, .. } => *status,
        }
    }

    /// The gRPC code of the failure, for JSON answers to scripts (the console's actions).
    pub fn code(&self) -> Code {
        match self {
            Self::Api(status) => status.code(),
            Self::Request { status, .. } if *status == StatusCode::NOT_FOUND => Code::NotFound,
            Self::Request { status, .. } if *status == StatusCode::FORBIDDEN => {
                Code::PermissionDenied
            }
            Self::Request { .. } => Code::InvalidArgument,
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "console page failed");
        }
        let title = status.canonical_reason().unwrap_or("Error");
        let body = html! {
            section.error-page role="alert" {
                h1 { (status.as_u16()) " " (title) }
                p.error-message { (self.to_string()) }
                p { a href="/console" { "Back to the projects" } }
            }
        };
        (status, shell::page(title, &[], body)).into_response()
    }
}
