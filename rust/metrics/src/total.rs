//! Counters named the way the Prometheus text format 0.0.4 names them. prometheus-client
//! writes OpenMetrics names (`# TYPE x counter` over samples `x_total`); `/metrics` declares
//! the 0.0.4 format, whose `# TYPE` line names the sample itself, so dashboards and scrapers
//! see `# TYPE grpc_server_handled_total counter` exactly as before the port.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// A monotonic counter (prometheus-client's [`Counter`]) whose samples carry the registered
/// name unchanged. Clones share one count.
#[derive(Clone, Debug, Default)]
pub struct TotalCounter(Counter);

impl TotalCounter {
    pub fn inc(&self) {
        self.0.inc();
    }

    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

impl TypedMetric for TotalCounter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for TotalCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> fmt::Result {
        // The gauge encoding writes the value without appending `_total` to the name.
        encoder.encode_gauge(&self.0.get())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

/// A [`TotalCounter`] or a `Family` of them, under its full name.
#[derive(Debug)]
struct Named<M> {
    name: &'static str,
    help: &'static str,
    metric: M,
}

impl<M: EncodeMetric + fmt::Debug + Send + Sync + 'static> Collector for Named<M> {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let metric = encoder.encode_descriptor(self.name, self.help, None, MetricType::Counter)?;
        self.metric.encode(metric)
    }
}

/// Registers `counter` (a [`TotalCounter`] or a `Family` of them) as the counter `name`, which
/// ends in `_total`. Unlike [`Registry::register`], `help` is written as given (with its full
/// stop) and the `# HELP`/`# TYPE` lines are written even while a family has no series.
pub fn register_total<M>(
    registry: &mut Registry,
    name: &'static str,
    help: &'static str,
    counter: M,
) where
    M: EncodeMetric + fmt::Debug + Send + Sync + 'static,
{
    debug_assert!(
        name.ends_with("_total"),
        "counter {name} must end in _total"
    );
    registry.register_collector(Box::new(Named {
        name,
        help,
        metric: counter,
    }));
}
