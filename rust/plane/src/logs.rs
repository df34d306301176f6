//! Task attempt logs as both planes see them: which attempt ([`AttemptLogId`]), where its
//! stored logs live ([`log_key`]), the link task events carry to admin's log route
//! ([`log_url`]), and where logs of attempts still running are read ([`LiveLogs`]: a pod's
//! through the Kubernetes API, a local process's file), which data-plane plugins implement and
//! admin's log route asks.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;

/// Which attempt's logs: a task execution id's parts (the task itself is implied by the node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptLogId {
    pub project: String,
    pub domain: String,
    /// The execution name.
    pub name: String,
    /// The node execution id.
    pub node_id: String,
    pub retry_attempt: u32,
    /// The element of an array node, if any.
    pub array_index: Option<u32>,
}

/// The storage key of an attempt's `stream` log: beside its outputs, in flytepropeller's layout
/// of the output prefix (`metadata/<project>/<domain>/<name>/<node>/[<element>/]<retry>`).
pub fn log_key(id: &AttemptLogId, stream: &str) -> String {
    let execution = alula_idl::flyteidl::core::WorkflowExecutionIdentifier {
        project: id.project.clone(),
        domain: id.domain.clone(),
        name: id.name.clone(),
        org: String::new(),
    };
    let prefix = alula_storage::layout::output_prefix(
        &execution,
        &id.node_id,
        id.array_index,
        id.retry_attempt,
    );
    format!("{prefix}/logs/{stream}.txt")
}

/// The URL of an attempt's `stream` log on admin's HTTP port (`base`: its public URL).
pub fn log_url(base: &str, id: &AttemptLogId, stream: &str) -> String {
    let segment = |s: &str| url_path(s);
    let index = id
        .array_index
        .map(|i| format!("?index={i}"))
        .unwrap_or_default();
    format!(
        "{}/api/v1/logs/{}/{}/{}/{}/{}/{stream}{index}",
        base.trim_end_matches('/'),
        segment(&id.project),
        segment(&id.domain),
        segment(&id.name),
        segment(&id.node_id),
        id.retry_attempt
    )
}

/// A log's bytes, chunk by chunk.
pub type LogStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// Where logs of attempts still running are read (a pod's, through the Kubernetes API).
pub trait LiveLogs: Send + Sync + 'static {
    /// The attempt's `stream` log, `None` when this source knows no such attempt. An error
    /// says why the source could not be read (the API server is unreachable).
    fn logs<'a>(
        &'a self,
        id: &'a AttemptLogId,
        stream: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Option<LogStream>, String>> + Send + 'a>>;

    /// [`LiveLogs::logs`] from byte `offset` on (what a page following the log has not seen).
    /// By default the log is read from its start and its first bytes dropped (a pod's log API
    /// counts lines and seconds, not bytes); a source that can seek (a file) overrides this.
    fn logs_from<'a>(
        &'a self,
        id: &'a AttemptLogId,
        stream: &'a str,
        offset: u64,
    ) -> Pin<Box<dyn Future<Output = Result<Option<LogStream>, String>> + Send + 'a>> {
        Box::pin(async move { Ok(self.logs(id, stream).await?.map(|body| skip(body, offset))) })
    }
}

/// Several live sources asked in turn (a deployment's pods, then its local processes): the
/// first that knows the attempt answers. A source that fails is reported only when none knows
/// the attempt, so an unreachable Kubernetes API does not hide a local process's log.
pub struct FirstLiveLogs(pub Vec<Arc<dyn LiveLogs>>);

impl LiveLogs for FirstLiveLogs {
    fn logs<'a>(
        &'a self,
        id: &'a AttemptLogId,
        stream: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Option<LogStream>, String>> + Send + 'a>> {
        self.logs_from(id, stream, 0)
    }

    fn logs_from<'a>(
        &'a self,
        id: &'a AttemptLogId,
        stream: &'a str,
        offset: u64,
    ) -> Pin<Box<dyn Future<Output = Result<Option<LogStream>, String>> + Send + 'a>> {
        Box::pin(async move {
            let mut failure = None;
            for source in &self.0 {
                match source.logs_from(id, stream, offset).await {
                    Ok(Some(body)) => return Ok(Some(body)),
                    Ok(None) => {}
                    Err(e) => failure = Some(e),
                }
            }
            failure.map_or(Ok(None), Err)
        })
    }
}

/// `key` for the path of a URL: every byte but unreserved ones and `/` percent-encoded, so
/// names with spaces, `#` or `?` (flytekit uploads files under their own names) survive the
/// trip; admin's HTTP port decodes the path before checking a signature over the key.
pub fn url_path(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `body` without its first `offset` bytes.
pub fn skip(body: LogStream, offset: u64) -> LogStream {
    if offset == 0 {
        return body;
    }
    let mut left = offset;
    body.filter_map(move |chunk| {
        let chunk = match chunk {
            Ok(bytes) if left > 0 => {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                left -= n as u64;
                Ok(bytes.slice(n..))
            }
            other => other,
        };
        futures::future::ready(match chunk {
            Ok(bytes) if bytes.is_empty() => None,
            other => Some(other),
        })
    })
    .boxed()
}
