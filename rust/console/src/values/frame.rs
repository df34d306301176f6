//! A preview of a data frame stored as parquet: its first rows and columns, read through the
//! storage only when admin would serve the object to a client (a data object, no link on its
//! way) and only when small (a few MB). Larger frames, other formats and unreadable files show
//! their columns, URI and link only.

use alula_admin::objects::{check_key, data_object};
use alula_storage::Storage;
use bytes::Bytes;
use parquet::file::reader::{FileReader, SerializedFileReader};

/// Largest parquet file read for a preview.
pub(super) const MAX_BYTES: u64 = 4 << 20;
/// Rows and columns shown.
pub(super) const ROWS: usize = 10;
pub(super) const COLUMNS: usize = 20;

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Preview {
    pub columns: Vec<String>,
    /// Columns not shown.
    pub more_columns: usize,
    pub rows: Vec<Vec<String>>,
    pub total_rows: i64,
}

/// The preview of the data frame at `uri` (a parquet file, or a folder holding flytekit's
/// single `00000` file), `None` when there is none to show.
pub(super) async fn preview(storage: &Storage, uri: &str) -> Option<Preview> {
    let key = data_object(storage, uri).ok()?;
    for candidate in [key.clone(), format!("{}/00000", key.trim_end_matches('/'))] {
        if check_key(storage, &candidate).is_err() {
            continue;
        }
        match storage.head(&candidate).await {
            Ok(Some(size)) if size <= MAX_BYTES => {}
            // Too big to read for a page: columns and link only.
            Ok(Some(_)) => return None,
            // A folder, or nothing there.
            Ok(None) | Err(_) => continue,
        }
        let bytes = storage.get(&candidate).await.ok()??;
        return tokio::task::spawn_blocking(move || parse(bytes))
            .await
            .ok()?
            .inspect_err(|e| tracing::debug!(%uri, error = %e, "no parquet preview"))
            .ok();
    }
    None
}

/// The first rows of a parquet file.
pub(super) fn parse(bytes: Bytes) -> Result<Preview, parquet::errors::ParquetError> {
    let reader = SerializedFileReader::new(bytes)?;
    let meta = reader.metadata().file_metadata();
    let fields = meta.schema_descr().root_schema().get_fields();
    let columns: Vec<String> = fields
        .iter()
        .take(COLUMNS)
        .map(|f| f.name().to_string())
        .collect();
    let mut rows = Vec::new();
    for row in reader.get_row_iter(None)?.take(ROWS) {
        let row = row?;
        rows.push(
            row.get_column_iter()
                .take(COLUMNS)
                .map(|(_, field)| field.to_string())
                .collect(),
        );
    }
    Ok(Preview {
        more_columns: fields.len().saturating_sub(COLUMNS),
        columns,
        rows,
        total_rows: meta.num_rows(),
    })
}
