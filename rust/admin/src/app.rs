//! Runs the admin service: gRPC (AdminService, DataProxyService, SignalService, the auth
//! discovery services, health, reflection) on one listener and HTTP (uploads, downloads, the
//! REST gateway, `/metrics`, `/healthz`, `/readyz`) on another, until `shutdown` resolves.
//! A process without the API (a propeller replica) serves only the probes ([`serve_probes`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use alula_idl::flyteidl::service::admin_service_server::AdminServiceServer;
use alula_idl::flyteidl::service::agent_metadata_service_server::AgentMetadataServiceServer;
use alula_idl::flyteidl::service::auth_metadata_service_server::AuthMetadataServiceServer;
use alula_idl::flyteidl::service::data_proxy_service_server::DataProxyServiceServer;
use alula_idl::flyteidl::service::identity_service_server::IdentityServiceServer;
use alula_idl::flyteidl::service::signal_service_server::SignalServiceServer;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::layer::AuthLayer;
use crate::auth::{Auth, AuthError};
use crate::authz::{Gate, Guarded};
use crate::config::{AdminConfig, HttpAccess};
use crate::dataproxy::DataProxy;
use crate::guard;
use crate::metrics::{AdminMetrics, GrpcMetrics, GrpcMetricsLayer, MetricsSource};
use crate::service::AdminApi;
use crate::store::Store;
use crate::upload;

/// flytekit accepts responses up to 20 MB and may send large registrations; tonic's 4 MB
/// default would refuse big workflows.
const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// How long `/readyz` waits for the database: well under a kubelet probe's default 1 s timeout
/// would be ideal, but a loaded PostgreSQL may take a moment; a probe that times out counts as
/// a failure anyway.
const DATABASE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub use alula_plane::ReadinessCheck;

/// What other components of the process (a propeller, its pod plugin) add to the HTTP port:
/// series for `/metrics` and conditions for `/readyz`.
#[derive(Clone, Default)]
pub struct Instrumentation {
    pub metrics: Vec<Arc<dyn MetricsSource>>,
    pub readiness: Vec<Arc<dyn ReadinessCheck>>,
    /// Where `/api/v1/logs` reads logs not stored yet (running pods), if anywhere.
    pub live_logs: Option<Arc<dyn crate::logs::LiveLogs>>,
    /// More routes of the HTTP port (the web console), behind the same guard as the API's.
    pub routes: Vec<Router>,
}

/// Not ready once shutdown began: load balancers stop sending work before the listeners close.
struct ShuttingDown(watch::Receiver<bool>);

impl ReadinessCheck for ShuttingDown {
    fn not_ready(&self) -> Option<String> {
        (*self.0.borrow()).then(|| "shutting down".to_string())
    }
}

struct Probes {
    /// `None`: a propeller working for a remote admin opens no database.
    store: Option<Store>,
    readiness: Vec<Arc<dyn ReadinessCheck>>,
}

/// `GET /healthz` (liveness: the process answers), `GET /readyz` (the database answers and
/// every check passes; else 503 with the reasons) and `GET /metrics` (every source).
pub fn probe_router(store: Option<Store>, instrumentation: Instrumentation) -> Router {
    let probes = Arc::new(Probes {
        store,
        readiness: instrumentation.readiness,
    });
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(probes)
        .merge(crate::metrics::router(instrumentation.metrics))
}

async fn readyz(State(probes): State<Arc<Probes>>) -> (StatusCode, String) {
    let mut reasons = match &probes.store {
        None => Vec::new(),
        Some(store) => match tokio::time::timeout(DATABASE_PROBE_TIMEOUT, store.ping()).await {
            Ok(Ok(())) => Vec::new(),
            Ok(Err(e)) => vec![format!("database: {e}")],
            Err(_) => vec![format!(
                "database: no answer within {}s",
                DATABASE_PROBE_TIMEOUT.as_secs()
            )],
        },
    };
    reasons.extend(probes.readiness.iter().filter_map(|c| c.not_ready()));
    if reasons.is_empty() {
        (StatusCode::OK, "ok\n".into())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, reasons.join("\n") + "\n")
    }
}

/// A watch that turns true once `shutdown` resolved: each server and readiness check gets a
/// receiver.
fn stop_signal(shutdown: impl Future<Output = ()> + Send + 'static) -> watch::Receiver<bool> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    stop_rx
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    // An Err means the sender is gone, which also means "stop".
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Serves only the probes and metrics on `http` (a process that runs no API) until `shutdown`
/// resolves.
pub async fn serve_probes(
    store: Option<Store>,
    http: TcpListener,
    access: HttpAccess,
    mut instrumentation: Instrumentation,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let stop = stop_signal(shutdown);
    instrumentation
        .readiness
        .push(Arc::new(ShuttingDown(stop.clone())));
    let router = guard::protect(probe_router(store, instrumentation), access);
    axum::serve(http, router)
        .with_graceful_shutdown(stopped(stop))
        .await?;
    Ok(())
}

/// flytekit prints console links on its admin endpoint's host and port when its config names no
/// `console.endpoint`, so a browser may come to the gRPC port: `GET /` and `/console/...` there
/// are sent to the same path on the HTTP port, where the console is. gRPC calls are POSTs to
/// `/<package>.<Service>/<Method>`, which these routes never match.
fn console_redirect(grpc: Router, public_http_url: &str) -> Router {
    let base = public_http_url.trim_end_matches('/').to_string();
    let redirect = move |uri: axum::http::Uri| {
        let base = base.clone();
        async move {
            let path = uri.path_and_query().map_or("/console", |p| p.as_str());
            axum::response::Redirect::temporary(&format!("{base}{path}"))
        }
    };
    grpc.route("/", get(redirect.clone()))
        .route("/console", get(redirect.clone()))
        .route("/console/{*rest}", get(redirect))
}

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
    #[error("TLS setup failed: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("authentication setup failed: {0}")]
    Auth(#[from] AuthError),
}

/// Serves an admin over `store` with the authentication `config.auth` asks for.
pub async fn serve(
    store: Store,
    config: Arc<AdminConfig>,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let auth = Auth::new(config.auth.clone(), store.clone()).await?;
    let gate = Gate::new(auth, store.clone());
    let api = AdminApi::new(store, config.clone());
    serve_api(
        api,
        gate,
        config,
        grpc,
        http,
        Instrumentation::default(),
        shutdown,
    )
    .await
}

/// Serves `api` (whose notices a propeller in the same process may be listening to) behind
/// `gate` (every gRPC and REST call, the logs route and the audit log), with the series and
/// readiness conditions of the process's other components.
pub async fn serve_api(
    api: AdminApi,
    gate: Gate,
    config: Arc<AdminConfig>,
    grpc: TcpListener,
    http: TcpListener,
    mut instrumentation: Instrumentation,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let store = api.store().clone();
    api.ensure_default_projects().await?;
    let stop = stop_signal(shutdown);
    let metrics = GrpcMetrics::default();
    instrumentation.metrics.insert(
        0,
        Arc::new(AdminMetrics {
            grpc: metrics.clone(),
            store: store.clone(),
        }),
    );
    instrumentation
        .readiness
        .push(Arc::new(ShuttingDown(stop.clone())));
    let live_logs = instrumentation.live_logs.clone();
    let extra_routes = std::mem::take(&mut instrumentation.routes);
    let auth_layer = AuthLayer {
        auth: gate.auth().clone(),
    };
    let data_proxy = DataProxy::new(config.clone(), api.clone());
    let handlers = crate::rest::GatedHandlers::new(api.clone(), data_proxy, gate.clone());
    // What answers per caller: the authentication layer puts the caller in each request and
    // the gate (REST gateway, logs, audit) or the console decides. Upload and download URLs
    // carry their own signature; the layer refuses nothing, so they pass as before.
    let mut api_router = upload::router(config.clone())
        .merge(crate::download::router(config.clone()))
        .merge(crate::logs::gated_router(
            config.clone(),
            live_logs,
            gate.clone(),
        ))
        .merge(crate::rest::gated_router(handlers.clone())?)
        .merge(crate::authz::audit::router(gate.clone()));
    for routes in extra_routes {
        api_router = api_router.merge(routes);
    }
    // Probes, metrics and the token endpoint need no caller.
    let http_router = api_router
        .layer(auth_layer.clone())
        .merge(probe_router(Some(store), instrumentation))
        .merge(crate::auth::token_endpoint::router(gate.auth().clone()));
    // Every route, probes included: what a web page may not do (see `guard`).
    let http_router = guard::protect(http_router, config.http_access.clone());

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<AdminServiceServer<Guarded<AdminApi>>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(alula_idl::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    // Through TLS when configured (one watched certificate for both ports); TCP_NODELAY on,
    // else small responses wait for the client's delayed ACK (~40 ms per call).
    let (incoming, http) = crate::tls::listeners(grpc, http, config.tls.as_ref())?;
    // Each service behind the gate: the compiler checks every RPC goes through it.
    let admin = handlers.admin;
    // The data plane's interface, for propellers in other processes.
    let plane = crate::plane::service::PlaneService::new(api.clone(), gate.clone()).server();
    let mut services = tonic::service::Routes::builder();
    services
        .add_service(health)
        .add_service(reflection)
        .add_service(
            AdminServiceServer::new(admin.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(DataProxyServiceServer::new(handlers.data_proxy))
        .add_service(SignalServiceServer::new(admin))
        .add_service(AgentMetadataServiceServer::new(handlers.agents))
        .add_service(AuthMetadataServiceServer::new(handlers.discovery.clone()))
        .add_service(IdentityServiceServer::new(handlers.discovery))
        .add_service(plane);
    let services = services.routes().into_axum_router();
    let grpc_server = tonic::transport::Server::builder()
        // flytekit pings every 30 s; h2 answers pings without a minimum interval, and our own
        // keepalive detects clients that vanished.
        .http2_keepalive_interval(Some(Duration::from_secs(60)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        // HTTP/1.1 too, for browsers sent to the console on this port (below); gRPC clients
        // speak HTTP/2 and are told apart by the connection preface.
        .accept_http1(true)
        .layer(GrpcMetricsLayer(metrics))
        // Inside the metrics layer, so requests it answers INVALID_ARGUMENT are counted so.
        .layer(crate::decode_errors::DecodeErrorLayer)
        // The caller of each call, for the guarded services (it refuses nothing itself).
        .layer(auth_layer)
        .add_routes(tonic::service::Routes::from(console_redirect(
            services,
            &config.public_http_url,
        )))
        .serve_with_incoming_shutdown(incoming, stopped(stop.clone()));
    let http_server = axum::serve(http, http_router).with_graceful_shutdown(stopped(stop));
    let (grpc_result, http_result) = tokio::join!(grpc_server, async { http_server.await });
    grpc_result?;
    http_result?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a panic is how a test reports failure"
    )]

    use std::sync::atomic::{AtomicBool, Ordering};

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    struct Switch(AtomicBool);

    impl ReadinessCheck for Switch {
        fn not_ready(&self) -> Option<String> {
            (!self.0.load(Ordering::Relaxed)).then(|| "switched off".to_string())
        }
    }

    async fn get(router: &Router, path: &str) -> (StatusCode, String) {
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readiness_needs_the_database_and_every_check() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let switch = Arc::new(Switch(AtomicBool::new(true)));
        let router = probe_router(
            Some(store.clone()),
            Instrumentation {
                metrics: Vec::new(),
                readiness: vec![switch.clone()],
                ..Default::default()
            },
        );
        assert_eq!(get(&router, "/readyz").await.0, StatusCode::OK);

        switch.0.store(false, Ordering::Relaxed);
        let (status, body) = get(&router, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "switched off\n");

        switch.0.store(true, Ordering::Relaxed);
        store.close().await;
        let (status, body) = get(&router, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.starts_with("database: "), "{body}");
        // Liveness does not depend on the database.
        assert_eq!(get(&router, "/healthz").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_stopping_server_is_not_ready() {
        let (tx, rx) = watch::channel(false);
        let check = ShuttingDown(rx);
        assert_eq!(check.not_ready(), None);
        tx.send_replace(true);
        assert_eq!(check.not_ready().as_deref(), Some("shutting down"));
    }
}
