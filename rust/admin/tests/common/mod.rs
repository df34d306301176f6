//! Test support shared by the store and service suites: a database per test on each backend,
//! and small builders for Flyte entities.
#![allow(dead_code)] // each test binary uses a different subset of the helpers

pub mod auth;
pub mod builders;
pub mod http;
pub mod server;

use alula_admin::Store;
use sqlx::Executor;

/// PostgreSQL of the test machine (`scripts/ensure-postgres` starts it). Overridable so CI can
/// point elsewhere; when unreachable the PostgreSQL tests fail rather than skip.
pub fn postgres_url() -> String {
    std::env::var("ALULA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A store for one test; PostgreSQL tests get their own schema, dropped by [`TestDb::finish`].
pub struct TestDb {
    pub store: Store,
    schema: Option<String>,
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let store = Store::connect("sqlite::memory:")
            .await
            .expect("in-memory SQLite");
        Self {
            store,
            schema: None,
        }
    }

    pub async fn postgres() -> Self {
        sqlx::any::install_default_drivers();
        let schema = format!("alula_test_{:016x}", rand::random::<u64>());
        let admin = sqlx::AnyPool::connect(&postgres_url())
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {} is unreachable: {e}", postgres_url()));
        admin
            .execute(format!("CREATE SCHEMA {schema}").as_str())
            .await
            .expect("create test schema");
        admin.close().await;
        let url = format!("{}?options=-c%20search_path%3D{schema}", postgres_url());
        let store = Store::connect(&url).await.expect("PostgreSQL store");
        Self {
            store,
            schema: Some(schema),
        }
    }

    pub async fn finish(self) {
        self.store.close().await;
        if let Some(schema) = self.schema {
            let admin = sqlx::AnyPool::connect(&postgres_url())
                .await
                .expect("reconnect");
            admin
                .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
                .await
                .expect("drop test schema");
            admin.close().await;
        }
    }
}

/// Runs each listed `async fn(Store)` test on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let db = $crate::common::TestDb::sqlite().await;
                    super::$test(db.store.clone()).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let db = $crate::common::TestDb::postgres().await;
                    super::$test(db.store.clone()).await;
                    db.finish().await;
                }
            )*
        }
    };
}
