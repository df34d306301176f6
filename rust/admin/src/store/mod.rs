//! Admin's database: one struct over sqlx's `Any` driver, so the same queries (and the same test
//! suite) serve the embedded SQLite file and PostgreSQL. Each backend has its own migrations
//! because their DDL differs (`BLOB` / `BYTEA`); the queries themselves are portable.

mod access;
mod attributes;
mod auth;
mod entities;
mod events;
mod executions;
mod named_entities;
mod notifications;
mod projects;
pub mod query;
mod reservations;
mod runs;
mod schedules;
mod signals;
mod spill;
mod sqlite;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

pub use access::{AuditEntry, AuditRow};
pub use attributes::AttributesKey;
pub use auth::{ClientRow, KeyRow};
use entities::EntityGrowth;
pub use entities::NAME_FIELDS;
pub use entities::{Entity, EntityKey, EntityRow, InsertOutcome};
pub use events::{
    ExecutionEventState, ExecutionEventUpdate, NodeExecutionKey, NodeExecutionRow, NodeParent,
    TaskExecutionKey, TaskExecutionRow, NODE_EXECUTION_FIELDS, TASK_EXECUTION_FIELDS,
};
pub use executions::{is_tag_field, ExecutionKey, ExecutionRow, EXECUTION_FIELDS};
pub use named_entities::{NamedEntityRow, DESCRIPTION_FIELDS, NAMED_ENTITY_FIELDS};
pub use notifications::{NewNotification, NotificationRow, NotificationState};
pub use projects::PROJECT_FIELDS;
pub use reservations::Reservation;
pub use runs::{OutboxEvent, RunRecord};
pub use schedules::ScheduleRow;
pub use signals::{SignalRow, SIGNAL_FIELDS};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL {0:?} is neither sqlite: nor postgres:")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The SQLite file fails its integrity check (or cannot be read at all) at open.
    #[error(
        "database file {file} is damaged: {problem}; restore it from a backup or move it away \
         (a new, empty database is then created)"
    )]
    Damaged { file: String, problem: String },
    /// A large value could not be moved to (or read back from) object storage.
    #[error("{0}")]
    Spill(#[from] alula_storage::StorageError),
    #[error("a value kept in object storage for the database is missing: {0}")]
    SpillMissing(String),
    #[error("stored {what} cannot be decoded: {source}")]
    Corrupt {
        what: String,
        source: prost::DecodeError,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    entity_growth: Arc<EntityGrowth>,
    /// Where values too large for a row (engine states, outbox events) go; `None` keeps them
    /// inline (a store used without admin's configuration, as in store tests).
    spill: Option<Arc<spill::Spill>>,
}

impl Store {
    /// Connects and brings the schema up to date. `sqlite::memory:` gives a private database
    /// (one connection, so every query sees the same memory); `sqlite://path?mode=rwc` creates a
    /// file.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend =
            Backend::of_url(url).ok_or_else(|| StoreError::UnsupportedUrl(url.to_string()))?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = AnyConnectOptions::from_str(url)?;
        if backend == Backend::Sqlite && !in_memory {
            // Before the pool: a pool hides a connection's failure behind a 30 s "pool timed
            // out", and a damaged file must be refused before anything is served from it.
            sqlite::check_and_prepare(url, &options).await?;
        }
        let mut pool = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        pool = match backend {
            Backend::Sqlite if in_memory => pool
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None),
            Backend::Sqlite => pool.max_connections(8).after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers proceed while `pyflyte register` writes tasks concurrently.
                    // NORMAL: a commit survives a crash of the process (WAL), not a power loss,
                    // and costs no fsync per transaction. journal_size_limit: a checkpoint
                    // shrinks a WAL that one large transaction grew back to 16 MiB.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA busy_timeout = 10000; PRAGMA journal_size_limit = 16777216;",
                    )
                    .await?;
                    Ok(())
                })
            }),
            Backend::Postgres => pool.max_connections(20),
        };
        let pool = pool.connect_with(options).await?;
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Self {
            pool,
            backend,
            entity_growth: Arc::default(),
            spill: None,
        })
    }

    /// This store with values larger than `limit` bytes (engine states' large strings, outbox
    /// events) kept in `storage`, the row holding a reference. Admin sets it up from its
    /// configuration, so propeller's saves of large inputs never reach the database.
    pub fn with_spill(mut self, storage: alula_storage::Storage, limit: usize) -> Self {
        self.spill = Some(Arc::new(spill::Spill::new(storage, limit)));
        self
    }

    /// Gives space back: on SQLite, frees the pages deleted rows left (incremental vacuum, for
    /// databases created with it) and checkpoints and truncates the WAL. The server calls it
    /// periodically; a no-op on PostgreSQL (autovacuum's job).
    pub async fn maintain(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            sqlite::maintain(&self.pool).await?;
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A read of real pages, for readiness probes: the schema and the first row of the tables
    /// every request and propeller round touch (`SELECT 1` would answer from a damaged file).
    pub async fn ping(&self) -> Result<(), StoreError> {
        for probe in [
            "SELECT COUNT(*) AS n FROM projects",
            "SELECT name FROM executions LIMIT 1",
            "SELECT name FROM propeller_runs WHERE done = 0 LIMIT 1",
        ] {
            sqlx::query(probe).fetch_all(&self.pool).await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Microseconds since the Unix epoch, the unit of every timestamp column.
pub use alula_plane::now_micros;
