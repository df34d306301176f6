//! SQLite specifics: the integrity check at open and the space a file gives back.
//!
//! The check is `PRAGMA quick_check`: it reads every page once (b-tree structure, cell and
//! overflow pointers, free list, records well formed) but skips `integrity_check`'s
//! cross-check of every index against its table, the part that costs O(N log N) and dominates
//! on a large file. Reading a 1 GB file takes about a second on a local disk: paid once per
//! start, it turns a damaged page into a refusal to start instead of executions that hang.

use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection, Executor, Row};

use super::StoreError;

/// SQLite's primary result codes for a file that is not a sound database.
const SQLITE_CORRUPT: i64 = 11;
const SQLITE_NOTADB: i64 = 26;

/// Pages below which an existing database without incremental vacuum is converted (a VACUUM
/// rewrites the live data: cheap for a small or mostly free file, too slow to do unasked for a
/// large one). 25,600 pages of 4 KiB: 100 MiB.
const CONVERT_MAX_LIVE_PAGES: i64 = 25_600;

/// The file a `sqlite:` URL names, for messages.
fn file_of(url: &str) -> String {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    path.to_string()
}

/// Whether `e` says the file is damaged (as opposed to busy, missing or unreadable).
pub(super) fn is_damage(e: &sqlx::Error) -> bool {
    let Some(db) = e.as_database_error() else {
        return false;
    };
    let code = db.code().and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
    // Extended codes carry the primary one in their low byte.
    matches!(code & 0xff, SQLITE_CORRUPT | SQLITE_NOTADB)
}

/// Opens one connection, refuses a damaged file, and sets a new file up to give space back.
pub(super) async fn check_and_prepare(
    url: &str,
    options: &AnyConnectOptions,
) -> Result<(), StoreError> {
    let file = file_of(url);
    let damaged = |problem: String| StoreError::Damaged {
        file: file.clone(),
        problem,
    };
    let classify = |e: sqlx::Error| {
        if is_damage(&e) {
            damaged(
                e.as_database_error()
                    .map_or(e.to_string(), |d| d.message().to_string()),
            )
        } else {
            StoreError::Database(e)
        }
    };
    let mut conn: AnyConnection = options.connect().await.map_err(classify)?;
    let checked = quick_check(&mut conn).await.map_err(classify);
    let problems = match checked {
        Ok(problems) => problems,
        Err(e) => {
            let _ = conn.close().await;
            return Err(e);
        }
    };
    if !problems.is_empty() {
        let _ = conn.close().await;
        return Err(damaged(problems));
    }
    let prepared = prepare_vacuum(&mut conn, &file).await.map_err(classify);
    let _ = conn.close().await;
    prepared
}

/// `PRAGMA quick_check`'s findings (empty when the file is sound), the first few joined.
async fn quick_check(conn: &mut AnyConnection) -> Result<String, sqlx::Error> {
    let rows = conn.fetch_all("PRAGMA quick_check(10)").await?;
    let findings: Vec<String> = rows
        .iter()
        .filter_map(|r| r.try_get::<String, _>(0).ok())
        .filter(|f| f != "ok")
        .collect();
    Ok(findings.join("; "))
}

/// New databases get `auto_vacuum = INCREMENTAL` (it must be set before the first table);
/// existing ones without it are converted when that is cheap, else left as they are with a
/// note in the log (`VACUUM` converts them offline).
async fn prepare_vacuum(conn: &mut AnyConnection, file: &str) -> Result<(), sqlx::Error> {
    let pragma = |row: sqlx::any::AnyRow| row.try_get::<i64, _>(0).unwrap_or(0);
    let mode = pragma(conn.fetch_one("PRAGMA auto_vacuum").await?);
    if mode == 2 {
        return Ok(());
    }
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL").await?;
    let pages = pragma(conn.fetch_one("PRAGMA page_count").await?);
    if pages == 0 {
        return Ok(()); // a new file: the setting applies as the schema is created
    }
    let free = pragma(conn.fetch_one("PRAGMA freelist_count").await?);
    if pages - free <= CONVERT_MAX_LIVE_PAGES {
        tracing::info!(
            file,
            pages,
            free,
            "converting the database to incremental vacuum"
        );
        conn.execute("VACUUM").await?;
    } else {
        tracing::warn!(
            file,
            pages,
            free,
            "the database predates incremental vacuum and is too large to convert at start; \
             deleted data's space is reused but the file does not shrink (run VACUUM offline)"
        );
    }
    Ok(())
}

/// Frees the pages deleted rows left and truncates the WAL.
pub(super) async fn maintain(pool: &AnyPool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    // Runs to completion in one step per freed page; a no-op without incremental vacuum.
    conn.fetch_all("PRAGMA incremental_vacuum").await?;
    // Fails to truncate (busy) while readers hold old snapshots; the next round catches up.
    conn.fetch_all("PRAGMA wal_checkpoint(TRUNCATE)").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::file_of;

    #[test]
    fn file_names_come_from_urls() {
        assert_eq!(file_of("sqlite:///srv/a.db?mode=rwc"), "/srv/a.db");
        assert_eq!(file_of("sqlite://data/a.db"), "data/a.db");
        assert_eq!(file_of("sqlite:a.db"), "a.db");
    }
}
