//! `alula-server`: Alula's control plane as one process.
//!
//! Usage: `alula-server [--config FILE]`. Settings come from the TOML file (every key optional)
//! and are overridden by `ALULA_*` environment variables:
//!
//! | key | env | default |
//! |---|---|---|
//! | `host` | `ALULA_HOST` | `127.0.0.1` |
//! | `grpc_port` | `ALULA_GRPC_PORT` | 8089 (flyte-binary's) |
//! | `http_port` | `ALULA_HTTP_PORT` | 8088 |
//! | `storage_root` | `ALULA_STORAGE_ROOT` | `./alula-data` |
//! | `database_url` | `ALULA_DATABASE_URL` | `sqlite://<storage_root>/alula.db?mode=rwc` |
//! | `public_http_url` | `ALULA_PUBLIC_HTTP_URL` | `http://<host>:<http_port>` |
//! | `signing_key` | `ALULA_SIGNING_KEY` | random at each start |
//! | `domains` | — | development, staging, production |
//! | `default_projects` | — | flytesnacks |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use alula_admin::{app, AdminConfig, Store};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use tokio::net::TcpListener;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    host: Option<String>,
    grpc_port: Option<u16>,
    http_port: Option<u16>,
    storage_root: Option<PathBuf>,
    database_url: Option<String>,
    public_http_url: Option<String>,
    signing_key: Option<String>,
    domains: Option<Vec<String>>,
    default_projects: Option<Vec<String>>,
}

impl FileConfig {
    fn load(path: Option<&str>) -> Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        toml::from_str(&text).with_context(|| format!("parsing {path}"))
    }

    fn apply_env(&mut self) -> Result<()> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let port = |name: &str| -> Result<Option<u16>> {
            var(name)
                .map(|v| {
                    v.parse()
                        .with_context(|| format!("{name}={v:?} is not a port"))
                })
                .transpose()
        };
        if let Some(v) = var("ALULA_HOST") {
            self.host = Some(v);
        }
        if let Some(p) = port("ALULA_GRPC_PORT")? {
            self.grpc_port = Some(p);
        }
        if let Some(p) = port("ALULA_HTTP_PORT")? {
            self.http_port = Some(p);
        }
        if let Some(v) = var("ALULA_STORAGE_ROOT") {
            self.storage_root = Some(v.into());
        }
        if let Some(v) = var("ALULA_DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = var("ALULA_PUBLIC_HTTP_URL") {
            self.public_http_url = Some(v);
        }
        if let Some(v) = var("ALULA_SIGNING_KEY") {
            self.signing_key = Some(v);
        }
        Ok(())
    }
}

fn config_path() -> Result<Option<String>> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (None, _) => Ok(None),
        (Some("--config"), Some(path)) => Ok(Some(path)),
        _ => bail!("usage: alula-server [--config FILE]"),
    }
}

async fn shutdown_signal() {
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::error!(error = %e, "cannot listen for Ctrl-C; stop the server with a signal");
        std::future::pending::<()>().await;
    }
    tracing::info!("shutting down");
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();

    let mut file = FileConfig::load(config_path()?.as_deref())?;
    file.apply_env()?;
    let host = file.host.unwrap_or_else(|| "127.0.0.1".to_string());
    let storage_root = file
        .storage_root
        .unwrap_or_else(|| PathBuf::from("alula-data"));
    std::fs::create_dir_all(&storage_root)
        .with_context(|| format!("creating storage root {}", storage_root.display()))?;
    let storage_root = storage_root
        .canonicalize()
        .with_context(|| format!("resolving storage root {}", storage_root.display()))?;
    let database_url = file.database_url.unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            storage_root.join("alula.db").display()
        )
    });

    let grpc_addr: SocketAddr = format!("{host}:{}", file.grpc_port.unwrap_or(8089)).parse()?;
    let http_addr: SocketAddr = format!("{host}:{}", file.http_port.unwrap_or(8088)).parse()?;
    let grpc = TcpListener::bind(grpc_addr)
        .await
        .with_context(|| format!("binding gRPC to {grpc_addr}"))?;
    let http = TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("binding HTTP to {http_addr}"))?;
    let http_bound = http.local_addr()?;

    let signing_key = match file.signing_key {
        Some(k) => k.into_bytes(),
        // Upload URLs only live for an hour, so a per-start key costs nothing.
        None => rand_key(),
    };
    let mut config = AdminConfig::new(
        storage_root.clone(),
        file.public_http_url
            .unwrap_or_else(|| format!("http://{http_bound}")),
        signing_key,
    );
    if let Some(domains) = file.domains {
        config.domains = domains;
    }
    if let Some(projects) = file.default_projects {
        config.default_projects = projects;
    }

    let store = Store::connect(&database_url)
        .await
        .with_context(|| format!("opening database {database_url}"))?;
    tracing::info!(
        grpc = %grpc.local_addr()?,
        http = %http_bound,
        storage = %storage_root.display(),
        database = ?store.backend(),
        "alula-server listening"
    );
    app::serve(
        store.clone(),
        Arc::new(config),
        grpc,
        http,
        shutdown_signal(),
    )
    .await?;
    store.close().await;
    Ok(())
}

fn rand_key() -> Vec<u8> {
    rand::random::<[u8; 32]>().to_vec()
}
