//! Admin's database: one struct over sqlx's `Any` driver, so the same queries (and the same test
//! suite) serve the embedded SQLite file and PostgreSQL. Each backend has its own migrations
//! because their DDL differs (`BLOB` / `BYTEA`); the queries themselves are portable.

mod attributes;
mod entities;
mod events;
mod executions;
mod named_entities;
mod projects;
pub mod query;
mod runs;
mod signals;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

pub use attributes::AttributesKey;
use entities::EntityGrowth;
pub use entities::NAME_FIELDS;
pub use entities::{Entity, EntityKey, EntityRow, InsertOutcome};
pub use events::{
    ExecutionEventState, ExecutionEventUpdate, NodeExecutionKey, NodeExecutionRow, NodeParent,
    TaskExecutionKey, TaskExecutionRow, NODE_EXECUTION_FIELDS, TASK_EXECUTION_FIELDS,
};
pub use executions::{ExecutionKey, ExecutionRow, EXECUTION_FIELDS};
pub use named_entities::{NamedEntityRow, DESCRIPTION_FIELDS, NAMED_ENTITY_FIELDS};
pub use projects::PROJECT_FIELDS;
pub use runs::{OutboxEvent, RunRecord};
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
                    // and costs no fsync per transaction.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA busy_timeout = 10000;",
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
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// One round trip to the database, for readiness probes.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Microseconds since the Unix epoch, the unit of every timestamp column.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
