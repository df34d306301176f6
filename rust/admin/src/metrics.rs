//! Prometheus metrics: a tower layer around the gRPC server counts requests per method and
//! outcome code, and `GET /metrics` on the HTTP port renders them with the number of stored
//! executions per phase, followed by the series of other components in the process
//! ([`MetricsSource`], from `alula-metrics`). Names follow go-grpc-prometheus
//! (`grpc_server_handled_total`), which flyteadmin exports, so existing dashboards apply.

use std::sync::Arc;
use std::task::{Context, Poll};

use alula_metrics::{
    register_total, BoundedFamily, CollectFuture, Family, Gauge, Registry, TotalCounter,
};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tonic::codegen::http::{Request, Response};
use tonic::codegen::BoxFuture;
use tonic::Code;

pub use alula_metrics::MetricsSource;

use alula_idl::flyteidl::core::workflow_execution::Phase;

use crate::store::Store;

/// Distinct (service, method, code) series kept; requests to further (bogus) paths are counted
/// under [`OTHER`], so a client cannot grow the series without bound.
const MAX_SERIES: usize = 2000;
const OTHER: &str = "other";

/// `grpc_service`, `grpc_method`, `grpc_code`.
type GrpcLabels = [(&'static str, String); 3];

fn grpc_labels(service: &str, method: &str, code: &str) -> GrpcLabels {
    [
        ("grpc_service", service.to_string()),
        ("grpc_method", method.to_string()),
        ("grpc_code", code.to_string()),
    ]
}

/// Request counts shared by the layer and the endpoint.
#[derive(Clone, Debug)]
pub struct GrpcMetrics {
    handled: BoundedFamily<GrpcLabels, TotalCounter>,
}

impl Default for GrpcMetrics {
    fn default() -> Self {
        Self {
            handled: BoundedFamily::new(MAX_SERIES),
        }
    }
}

impl GrpcMetrics {
    fn record(&self, path: &str, code: Code) {
        // gRPC paths are `/package.Service/Method`.
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or((OTHER, OTHER));
        let code = code_name(code);
        self.handled
            .get_or_overflow(&grpc_labels(service, method, code), || {
                grpc_labels(OTHER, OTHER, code)
            })
            .inc();
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

/// Admin's series: the gRPC request counts and the stored executions per phase.
#[derive(Clone, Debug)]
pub struct AdminMetrics {
    pub grpc: GrpcMetrics,
    pub store: Store,
}

impl MetricsSource for AdminMetrics {
    fn collect<'a>(&'a self, registry: &'a mut Registry) -> CollectFuture<'a> {
        Box::pin(async move {
            register_total(
                registry,
                "grpc_server_handled_total",
                "Total number of RPCs completed on the server, regardless of success or failure.",
                self.grpc.handled.family().clone(),
            );
            match self.store.count_executions_by_phase().await {
                Ok(phases) => {
                    let executions = Family::<[(&'static str, String); 1], Gauge>::default();
                    // Every phase is a series, at zero when no execution is in it: a dashboard
                    // or alert sees 0 rather than no data, and the family is never missing.
                    for phase in (0..).map_while(|i| Phase::try_from(i).ok()) {
                        executions
                            .get_or_create(&[("phase", phase.as_str_name().to_string())])
                            .set(0);
                    }
                    for (phase, n) in phases {
                        executions.get_or_create(&[("phase", phase)]).set(n);
                    }
                    registry.register(
                        "alula_executions",
                        "Stored workflow executions by phase",
                        executions,
                    );
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
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, alula_metrics::CONTENT_TYPE)],
        alula_metrics::scrape(&sources).await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `grpc_server_handled_total` series of a scrape of `metrics` alone.
    fn handled_series(metrics: &GrpcMetrics) -> Vec<String> {
        let mut registry = Registry::default();
        register_total(
            &mut registry,
            "grpc_server_handled_total",
            "Handled RPCs.",
            metrics.handled.family().clone(),
        );
        let mut text = String::new();
        alula_metrics::prometheus_client::encoding::text::encode_registry(&mut text, &registry)
            .expect("writing to a String");
        text.lines()
            .filter(|l| l.starts_with("grpc_server_handled_total{"))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn bogus_paths_past_the_cap_are_counted_as_other() {
        let metrics = GrpcMetrics::default();
        metrics.record(
            "/flyteidl.service.AdminService/GetExecution",
            Code::NotFound,
        );
        for i in 0..MAX_SERIES + 500 {
            metrics.record(&format!("/bogus.Service/Method{i}"), Code::Unimplemented);
        }
        metrics.record(
            "/flyteidl.service.AdminService/GetExecution",
            Code::NotFound,
        );
        metrics.record("no-slash", Code::Ok);
        let series = handled_series(&metrics);
        // The cap, plus the overflow series of each code seen past it.
        assert_eq!(series.len(), MAX_SERIES + 2, "{}", series.len());
        let has = |line: &str| series.iter().any(|l| l == line);
        assert!(has(
            r#"grpc_server_handled_total{grpc_service="flyteidl.service.AdminService",grpc_method="GetExecution",grpc_code="NotFound"} 2"#
        ));
        assert!(has(
            r#"grpc_server_handled_total{grpc_service="other",grpc_method="other",grpc_code="Unimplemented"} 501"#
        ));
        assert!(has(
            r#"grpc_server_handled_total{grpc_service="other",grpc_method="other",grpc_code="OK"} 1"#
        ));
    }
}
