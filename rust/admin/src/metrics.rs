//! Prometheus metrics: a tower layer around the gRPC server counts requests per method and
//! outcome code, and `GET /metrics` on the HTTP port renders them with the number of stored
//! executions per phase, followed by the series of other components in the process
//! ([`MetricsSource`]). Names follow go-grpc-prometheus (`grpc_server_handled_total`), which
//! flyteadmin exports, so existing dashboards apply.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tonic::codegen::http::{Request, Response};
use tonic::codegen::BoxFuture;
use tonic::Code;

use crate::store::Store;

/// Distinct (service, method, code) series kept; requests to further (bogus) paths are counted
/// under [`OTHER`], so a client cannot grow the map without bound.
const MAX_SERIES: usize = 2000;
const OTHER: &str = "other";

type SeriesKey = (String, String, &'static str);

/// Request counts shared by the layer and the endpoint.
#[derive(Clone, Debug, Default)]
pub struct GrpcMetrics {
    handled: Arc<Mutex<BTreeMap<SeriesKey, u64>>>,
}

impl GrpcMetrics {
    fn record(&self, path: &str, code: Code) {
        // gRPC paths are `/package.Service/Method`.
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or((OTHER, OTHER));
        let code = code_name(code);
        // A panic elsewhere while holding the lock leaves the counts usable.
        let mut handled = self.handled.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (service.to_string(), method.to_string(), code);
        let key = if handled.len() < MAX_SERIES || handled.contains_key(&key) {
            key
        } else {
            (OTHER.to_string(), OTHER.to_string(), code)
        };
        *handled.entry(key).or_insert(0) += 1;
    }

    fn snapshot(&self) -> Vec<(SeriesKey, u64)> {
        let handled = self.handled.lock().unwrap_or_else(PoisonError::into_inner);
        handled.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// The names go-grpc-prometheus uses for `grpc_code` (Go's `codes.Code.String()`).
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// The tower layer counting each gRPC request.
#[derive(Clone, Debug)]
pub struct GrpcMetricsLayer(pub GrpcMetrics);

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct GrpcMetricsService<S> {
    inner: S,
    metrics: GrpcMetrics,
}

impl<S, B, R> tower::Service<Request<B>> for GrpcMetricsService<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let path = request.uri().path().to_string();
        let metrics = self.metrics.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            // tonic answers a failed unary call "trailers-only": `grpc-status` is a header. A
            // successful call sends its status in the trailers after the body, so a response
            // without the header succeeded (all of Alula's RPCs that count are unary).
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .map_or(Code::Ok, |v| Code::from_bytes(v.as_bytes())),
                Err(_) => Code::Unavailable,
            };
            metrics.record(&path, code);
            result
        })
    }
}

/// What [`MetricsSource::render`] returns: rendering may query the database.
pub type RenderFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A component's series for `GET /metrics`: admin's own, and those of a propeller or pod plugin
/// sharing the process, so one scrape of the HTTP port sees them all.
pub trait MetricsSource: Send + Sync + 'static {
    /// Appends the source's series (Prometheus text format) to `out`.
    fn render<'a>(&'a self, out: &'a mut String) -> RenderFuture<'a>;
}

/// Admin's series: the gRPC request counts and the stored executions per phase.
#[derive(Clone, Debug)]
pub struct AdminMetrics {
    pub grpc: GrpcMetrics,
    pub store: Store,
}

impl MetricsSource for AdminMetrics {
    fn render<'a>(&'a self, out: &'a mut String) -> RenderFuture<'a> {
        Box::pin(async move {
            out.push_str("# HELP grpc_server_handled_total Total number of RPCs completed on the server, regardless of success or failure.\n");
            out.push_str("# TYPE grpc_server_handled_total counter\n");
            for ((service, method, code), n) in self.grpc.snapshot() {
                let _ = writeln!(
                    out,
                    "grpc_server_handled_total{{grpc_service=\"{}\",grpc_method=\"{}\",grpc_code=\"{code}\"}} {n}",
                    escape(&service),
                    escape(&method)
                );
            }
            match self.store.count_executions_by_phase().await {
                Ok(phases) => {
                    out.push_str("# HELP alula_executions Stored workflow executions by phase.\n");
                    out.push_str("# TYPE alula_executions gauge\n");
                    for (phase, n) in phases {
                        let _ =
                            writeln!(out, "alula_executions{{phase=\"{}\"}} {n}", escape(&phase));
                    }
                }
                Err(err) => {
                    // The request counts are still worth serving when the database is
                    // unreachable.
                    tracing::warn!(error = %err, "metrics: counting executions failed");
                }
            }
        })
    }
}

/// `GET /metrics`: every source's series, in order.
pub fn router(sources: Vec<Arc<dyn MetricsSource>>) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(Arc::new(sources))
}

async fn render(State(sources): State<Arc<Vec<Arc<dyn MetricsSource>>>>) -> impl IntoResponse {
    let mut out = String::new();
    for source in sources.iter() {
        source.render(&mut out).await;
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}

/// Label values escape backslash, quote and newline (Prometheus text format).
pub fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
