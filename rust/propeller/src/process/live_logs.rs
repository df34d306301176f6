//! The logs of attempts still running, for admin's log route, when they are not in storage
//! yet: with a bucket the process plugin writes them into the attempt's working folder, and
//! the driver stores them only once the attempt ended. (With local storage they are written in
//! place, where the route reads them anyway.) The file is read as it is when asked, from the
//! byte the reader asks for (`?offset=`).

use std::future::Future;
use std::io::{ErrorKind, SeekFrom};
use std::path::PathBuf;
use std::pin::Pin;

use alula_plane::logs::{AttemptLogId, LiveLogs, LogStream};
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Bytes read from a log file per chunk of the answer.
const CHUNK: usize = 64 * 1024;

/// Reads `<work root>/<attempt's unique name>/<stream>.txt` (see the module docs).
pub struct WorkFolderLogs {
    work_root: PathBuf,
}

impl WorkFolderLogs {
    pub fn new(work_root: PathBuf) -> Self {
        Self { work_root }
    }

    /// The attempt's working folder: named as `Attempt::unique_name` names it.
    fn dir(&self, id: &AttemptLogId) -> PathBuf {
        let element = id.array_index.map(|i| format!("-{i}")).unwrap_or_default();
        self.work_root.join(format!(
            "{}-{}-{}-{}{element}-{}",
            id.project, id.domain, id.name, id.node_id, id.retry_attempt
        ))
    }
}

impl LiveLogs for WorkFolderLogs {
    fn logs<'a>(
        &'a self,
        id: &'a AttemptLogId,
        stream: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Option<LogStream>, String>> + Send + 'a>> {
        self.logs_from(id, stream, 0)
    }

    /// Seeks past what the reader has rather than reading the file from its start at every
    /// poll of a page following the log.
    fn logs_from<'a>(
        &'a self,
        id: &'a AttemptLogId,
        stream: &'a str,
        offset: u64,
    ) -> Pin<Box<dyn Future<Output = Result<Option<LogStream>, String>> + Send + 'a>> {
        Box::pin(async move {
            // Processes keep stdout and stderr apart; they have no combined `output`.
            if !matches!(stream, "stdout" | "stderr") {
                return Ok(None);
            }
            let path = self.dir(id).join(format!("{stream}.txt"));
            let mut file = match tokio::fs::File::open(&path).await {
                Ok(file) => file,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(format!("{}: {e}", path.display())),
            };
            // Past the end reads nothing, as the route answers a reader that is up to date.
            file.seek(SeekFrom::Start(offset))
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let chunks = futures::stream::try_unfold(file, |mut file| async move {
                let mut buf = vec![0; CHUNK];
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    return Ok(None);
                }
                buf.truncate(n);
                Ok(Some((Bytes::from(buf), file)))
            });
            Ok(Some(chunks.boxed()))
        })
    }
}
