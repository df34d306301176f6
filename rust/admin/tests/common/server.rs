//! An in-process admin server (gRPC and HTTP on 127.0.0.1:0) for the service-level suites.

use std::path::PathBuf;
use std::sync::Arc;

use alula_admin::{app, AdminConfig, Store};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub struct TestServer {
    pub grpc_url: String,
    pub http_url: String,
    pub storage: PathBuf,
    _stop: oneshot::Sender<()>,
}

impl TestServer {
    pub async fn start(store: Store) -> Self {
        Self::start_with(store, |_| {}).await
    }

    /// Starts a server whose configuration `configure` adjusts first.
    pub async fn start_with(store: Store, configure: impl FnOnce(&mut AdminConfig)) -> Self {
        let grpc = TcpListener::bind("127.0.0.1:0").await.expect("bind gRPC");
        let http = TcpListener::bind("127.0.0.1:0").await.expect("bind HTTP");
        let grpc_url = format!("http://{}", grpc.local_addr().expect("gRPC address"));
        let http_url = format!("http://{}", http.local_addr().expect("HTTP address"));
        let storage =
            std::env::temp_dir().join(format!("alula-admin-test-{:x}", rand::random::<u64>()));
        let mut config = AdminConfig::new(storage.clone(), http_url.clone(), b"test-key".to_vec());
        configure(&mut config);
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app::serve(
            store,
            Arc::new(config),
            grpc,
            http,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            grpc_url,
            http_url,
            storage,
            _stop: stop,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Best effort: the folder exists only if something was uploaded.
        let _ = std::fs::remove_dir_all(&self.storage);
    }
}
