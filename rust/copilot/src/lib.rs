//! Alula's copilot: Flyte's flytecopilot for raw containers (flytekit's `ContainerTask`), tasks
//! whose image knows nothing of Flyte. In the task's pod,
//!
//! - `alula-copilot download` (an init container) reads the attempt's `inputs.pb` and writes each
//!   input as a file under the task's `input_path`: primitives as text ([`text`]), blobs
//!   downloaded to `<input_path>/<name>`, collections and maps as folders of such files, plus
//!   `inputs.pb` (blob URIs replaced by the local paths) and `inputs.json` / `inputs.yaml`;
//! - the user's container runs and writes one file per output under `output_path`;
//! - `alula-copilot upload` (a sidecar) waits for that container to end ([`watch`]), reads the
//!   files back as the interface's typed outputs, uploads blobs, and writes `outputs.pb` to the
//!   attempt's output prefix, or `error.pb` naming what is wrong (a missing output file, a value
//!   that does not parse, or the `_ERROR` file the container wrote).
//!
//! Every object is reached by its URI through `alula_storage::stream` (s3://, gs://, az://,
//! memory://, file:// or a path, settings from the environment as flytekit's), and files move
//! streamed: a task's 1 GB output costs the sidecar tens of MB, not 1 GB.

pub mod download;
pub mod text;
pub mod upload;
pub mod watch;

pub use alula_storage::uri::UriError;

/// The file a container writes to fail the task with its content as the message (flytecopilot's
/// `_ERROR`).
pub const ERROR_FILE: &str = "_ERROR";

#[derive(Debug, thiserror::Error)]
pub enum CopilotError {
    /// Reaching storage failed; `what` says for what (`input [x]`, `output [y]`, `inputs.pb`),
    /// the source names the URI and the operation. Boxed: object_store's errors are large.
    #[error("{what}: {source}")]
    Storage {
        what: String,
        #[source]
        source: Box<UriError>,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no inputs at {0}")]
    NoInputs(String),
    #[error("{what} does not decode: {source}")]
    Decode {
        what: String,
        #[source]
        source: prost::DecodeError,
    },
    /// An input the downloader cannot write as files.
    #[error("input [{var}]: {reason}")]
    Input { var: String, reason: String },
    /// What the task's container produced does not make the interface's outputs: the user's
    /// fault, reported in `error.pb`.
    #[error("output [{var}]: {reason}")]
    Output { var: String, reason: String },
    /// The container wrote `_ERROR`.
    #[error("the task's container reported an error: {0}")]
    UserError(String),
    #[error("waiting for the task's container: {0}")]
    Watch(String),
}

impl CopilotError {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> CopilotError + '_ {
        move |source| CopilotError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn storage(what: impl Into<String>) -> impl FnOnce(UriError) -> CopilotError {
        let what = what.into();
        move |source| CopilotError::Storage {
            what,
            source: Box::new(source),
        }
    }

    /// Whether the user's container is at fault (a USER error in `error.pb`), not the platform.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            CopilotError::Output { .. } | CopilotError::UserError(_)
        )
    }
}
