//! Stores a task log file in object storage piece by piece: a task that printed gigabytes
//! must not need gigabytes of propeller's memory when its attempt ends.

use std::path::Path;

use alula_storage::Storage;
use tokio::io::AsyncReadExt;

/// Bytes read from the file per write; the storage gathers them into multipart parts.
const CHUNK: usize = 1 << 20;

/// Copies the local file `path` to `key`; the object appears whole or not at all.
pub(super) async fn store_log_file(
    storage: &Storage,
    key: &str,
    path: &Path,
) -> Result<(), String> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut put = storage.put_streamed(key).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match file.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                let _ = put.abort().await;
                return Err(format!("{}: {e}", path.display()));
            }
        };
        if n == 0 {
            break;
        }
        if let Err(e) = put.write(buf[..n].to_vec().into()).await {
            let _ = put.abort().await;
            return Err(e.to_string());
        }
    }
    put.finish().await.map_err(|e| e.to_string())
}
