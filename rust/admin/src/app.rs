//! Runs the admin service: gRPC (AdminService, DataProxyService, SignalService, the auth
//! discovery services, health, reflection) on one listener and HTTP (uploads, downloads, the
//! REST gateway, `/metrics`) on another, until `shutdown` resolves.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use alula_idl::flyteidl::service::admin_service_server::AdminServiceServer;
use alula_idl::flyteidl::service::auth_metadata_service_server::AuthMetadataServiceServer;
use alula_idl::flyteidl::service::data_proxy_service_server::DataProxyServiceServer;
use alula_idl::flyteidl::service::identity_service_server::IdentityServiceServer;
use alula_idl::flyteidl::service::signal_service_server::SignalServiceServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::server::TcpIncoming;

use crate::auth::NoAuth;
use crate::config::AdminConfig;
use crate::dataproxy::DataProxy;
use crate::metrics::{GrpcMetrics, GrpcMetricsLayer};
use crate::service::AdminApi;
use crate::store::Store;
use crate::upload;

/// flytekit accepts responses up to 20 MB and may send large registrations; tonic's 4 MB
/// default would refuse big workflows.
const MAX_MESSAGE_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("gRPC reflection setup failed: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("HTTP server failed: {0}")]
    Http(#[from] std::io::Error),
    #[error("startup failed: {0}")]
    Startup(#[from] crate::error::AdminError),
    #[error("REST gateway setup failed: {0}")]
    Rest(#[from] crate::rest::RouteError),
}

pub async fn serve(
    store: Store,
    config: Arc<AdminConfig>,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let api = AdminApi::new(store, config.clone());
    serve_api(api, config, grpc, http, shutdown).await
}

/// Serves `api` (whose notices a propeller in the same process may be listening to).
pub async fn serve_api(
    api: AdminApi,
    config: Arc<AdminConfig>,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let store = api.store().clone();
    api.ensure_default_projects().await?;
    let metrics = GrpcMetrics::default();
    let http_router = upload::router(config.clone())
        .merge(crate::download::router(config.clone()))
        .merge(crate::metrics::router(metrics.clone(), store))
        .merge(crate::rest::router(api.clone())?);
    let data_proxy = DataProxy::new(config.clone(), api.clone());

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<AdminServiceServer<AdminApi>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(alula_idl::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        // An Err means the sender is gone, which also means "stop".
        let _ = rx.wait_for(|stop| *stop).await;
    };

    // Without TCP_NODELAY small responses wait for the client's delayed ACK (~40 ms per call).
    let incoming = TcpIncoming::from(grpc)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)));
    let grpc_server = tonic::transport::Server::builder()
        // flytekit pings every 30 s; h2 answers pings without a minimum interval, and our own
        // keepalive detects clients that vanished.
        .http2_keepalive_interval(Some(Duration::from_secs(60)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .layer(GrpcMetricsLayer(metrics))
        .add_service(health)
        .add_service(reflection)
        .add_service(
            AdminServiceServer::new(api.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(DataProxyServiceServer::new(data_proxy))
        .add_service(SignalServiceServer::new(api))
        .add_service(AuthMetadataServiceServer::new(NoAuth))
        .add_service(IdentityServiceServer::new(NoAuth))
        .serve_with_incoming_shutdown(incoming, stopped(stop_rx.clone()));
    let http_server = axum::serve(http, http_router).with_graceful_shutdown(stopped(stop_rx));
    let (grpc_result, http_result) = tokio::join!(grpc_server, async { http_server.await });
    grpc_result?;
    http_result?;
    Ok(())
}
