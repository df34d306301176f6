//! A damaged SQLite file is refused at start, quickly, with a message that names the file and
//! the problem, and before any port is bound (a server that listens but cannot serve looks
//! healthy to a load balancer while executions hang).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::path::Path;
use std::time::{Duration, Instant};

use alula_admin::store::{now_micros, ExecutionKey, ExecutionRow};
use alula_admin::Store;
use alula_server::{FileConfig, Role};
use anyhow::Result;
use tokio::net::{TcpListener, TcpStream};

const PAGE: u64 = 4096;

async fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port())
}

/// A database with data in several tables (executions, their run records, projects), its WAL
/// checkpointed into the file, and the store closed.
async fn healthy_database(root: &Path) -> Result<std::path::PathBuf> {
    let file = root.join("alula.db");
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", file.display())).await?;
    let now = now_micros();
    for i in 0..400 {
        let key = ExecutionKey {
            project: "p".into(),
            domain: "d".into(),
            name: format!("exec-{i:04}"),
        };
        store
            .insert_execution(&ExecutionRow {
                key,
                launch_entity: 3,
                launch_plan_name: "lp".into(),
                launch_plan_version: "v1".into(),
                phase: "QUEUED".into(),
                // Row bodies that fill pages, as real specs and closures do.
                spec: vec![b's'; 1500],
                closure: vec![b'c'; 1500],
                created_at: now,
                updated_at: now,
                ..Default::default()
            })
            .await?;
    }
    store.claim_runs("seed", now, now + 1, 1000).await?;
    store.maintain().await?; // the WAL's pages into the file
    store.close().await;
    let size = std::fs::metadata(&file)?.len();
    assert!(size > 100 * PAGE, "a database of {size} bytes is too small");
    Ok(file)
}

/// Starts the server on `root` and expects it to refuse within a few seconds, never ready.
async fn refused_start(root: &Path) -> Result<String> {
    let (grpc_port, http_port) = (free_port().await?, free_port().await?);
    let config = FileConfig {
        role: Some(Role::All),
        storage_root: Some(root.to_path_buf()),
        grpc_port: Some(grpc_port),
        http_port: Some(http_port),
        warm_workers: Some(0),
        ..Default::default()
    };
    let started = Instant::now();
    let run = alula_server::run(config, std::future::pending(), |endpoints| {
        panic!("a damaged database was served at {endpoints:?}")
    });
    // Without the check the truncated file failed only after the pool's 30 s timeout.
    let outcome = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("the server neither refused nor started within 5 s");
    let err = format!(
        "{:#}",
        outcome.expect_err("the server accepted a damaged database")
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    for port in [grpc_port, http_port] {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).await.is_err(),
            "something listens on {port}"
        );
    }
    Ok(err)
}

#[tokio::test]
async fn a_page_of_garbage_is_refused_at_start() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = healthy_database(dir.path()).await?;
    let pages = std::fs::metadata(&file)?.len() / PAGE;
    let mut bytes = std::fs::read(&file)?;
    let middle = (pages / 2 * PAGE) as usize;
    for (i, b) in bytes[middle..middle + PAGE as usize].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37) ^ 0xa5;
    }
    std::fs::write(&file, bytes)?;

    let err = refused_start(dir.path()).await?;
    assert!(err.contains("is damaged"), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("restore it from a backup"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_truncated_file_is_refused_at_start() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = healthy_database(dir.path()).await?;
    let size = std::fs::metadata(&file)?.len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)?
        .set_len(size - PAGE)?;

    let err = refused_start(dir.path()).await?;
    assert!(err.contains("is damaged"), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    Ok(())
}

/// The checks cost a sound database nothing but the read: it still starts.
#[tokio::test]
async fn a_sound_database_still_starts() -> Result<()> {
    let dir = tempfile::tempdir()?;
    healthy_database(dir.path()).await?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let config = FileConfig {
        role: Some(Role::Admin),
        storage_root: Some(dir.path().to_path_buf()),
        grpc_port: Some(0),
        http_port: Some(0),
        ..Default::default()
    };
    let task = tokio::spawn(alula_server::run(
        config,
        async {
            let _ = stop_rx.await;
        },
        move |_| {
            let _ = ready_tx.send(());
        },
    ));
    tokio::time::timeout(Duration::from_secs(10), ready_rx).await??;
    let _ = stop_tx.send(());
    task.await??;
    Ok(())
}
