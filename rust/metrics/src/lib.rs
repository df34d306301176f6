//! Prometheus series on the `prometheus-client` crate, shared by admin, the propeller and the
//! pod plugin. Each component keeps its counters, gauges and histograms (cheap handles onto
//! shared atomics) and implements [`MetricsSource`]; a scrape gathers every source of the
//! process into one [`Registry`] and renders it with prometheus-client's text encoder
//! ([`scrape`]), which the HTTP port serves as `GET /metrics` with [`CONTENT_TYPE`].
//!
//! Counters are [`TotalCounter`]s registered with [`register_total`]: their `# TYPE` line names
//! the `_total` series itself, as the Prometheus text format 0.0.4 we declare wants (and as
//! go-grpc-prometheus and flyteadmin expose `grpc_server_handled_total`).
//! [`BoundedFamily`] caps the series of a family whose labels come from strangers.

mod bounded;
mod total;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use prometheus_client;
pub use prometheus_client::metrics::family::Family;
pub use prometheus_client::metrics::gauge::Gauge;
pub use prometheus_client::metrics::histogram::Histogram;
pub use prometheus_client::registry::Registry;

pub use bounded::BoundedFamily;
pub use total::{register_total, TotalCounter};

/// What `GET /metrics` answers with: the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What [`MetricsSource::collect`] returns: collecting may query a database.
pub type CollectFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A component's series: admin's own, and those of a propeller or pod plugin sharing the
/// process, so one scrape of the HTTP port sees them all.
pub trait MetricsSource: Send + Sync + 'static {
    /// Registers the source's metrics (clones of its handles, and gauges read now) in this
    /// scrape's `registry`.
    fn collect<'a>(&'a self, registry: &'a mut Registry) -> CollectFuture<'a>;
}

/// Every source's series in the Prometheus text format, each source's together and in order.
pub async fn scrape(sources: &[Arc<dyn MetricsSource>]) -> String {
    // A registry per scrape: gauges read at scrape time (executions per phase) list exactly
    // the label sets that exist now, with no stale series left from an earlier scrape.
    let mut registry = Registry::default();
    for source in sources {
        source
            .collect(registry.sub_registry_with_labels(std::iter::empty()))
            .await;
    }
    let mut out = String::new();
    // `encode_registry` rather than `encode`: no OpenMetrics `# EOF` in the 0.0.4 format, and
    // writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode_registry(&mut out, &registry);
    out
}
