//! The propeller's Prometheus series, rendered on the HTTP port's `/metrics` next to admin's
//! (or alone in a propeller-only process). Each plugin's counters are created once, when the
//! propeller starts, so recording an event never allocates or looks a series up.

use std::sync::Arc;
use std::time::Duration;

use alula_metrics::{
    register_total, CollectFuture, Family, Gauge, Histogram, MetricsSource, Registry, TotalCounter,
};
use alula_plane::ControlPlane;

/// How an attempt ended, as counted by `alula_propeller_attempts_finished_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Succeeded,
    Failed,
    /// The plugin lost it (a dead worker, an evicted or deleted pod).
    Lost,
    /// The engine aborted it (a terminated execution, a timeout).
    Aborted,
}

impl AttemptOutcome {
    const ALL: [Self; 4] = [Self::Succeeded, Self::Failed, Self::Lost, Self::Aborted];

    fn label(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Lost => "lost",
            Self::Aborted => "aborted",
        }
    }
}

/// Driver rounds last from a millisecond (nothing to do) to seconds (a save of a huge map).
const ROUND_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// `plugin`.
type PluginLabels = [(&'static str, &'static str); 1];
/// `plugin`, `outcome`.
type OutcomeLabels = [(&'static str, &'static str); 2];

/// One plugin's series, handles onto the families' counters.
#[derive(Debug)]
struct PluginCounters {
    started: TotalCounter,
    start_errors: TotalCounter,
    finished: [TotalCounter; AttemptOutcome::ALL.len()],
}

/// The propeller's counters, shared by the reconciler and every driver.
pub struct PropellerMetrics {
    plane: Arc<dyn ControlPlane>,
    /// One driver round: decide, start and abort attempts, save and deliver events.
    round: Histogram,
    driving: Gauge,
    lease_claims: TotalCounter,
    lease_losses: TotalCounter,
    claim_errors: TotalCounter,
    started: Family<PluginLabels, TotalCounter>,
    start_errors: Family<PluginLabels, TotalCounter>,
    finished: Family<OutcomeLabels, TotalCounter>,
    /// In the order of the propeller's plugins.
    plugins: Vec<PluginCounters>,
}

impl PropellerMetrics {
    /// Counters for plugins named `plugins` (in dispatch order); `plane` answers how many
    /// executions are open when the series are rendered.
    pub fn new(
        plane: Arc<dyn ControlPlane>,
        plugins: impl IntoIterator<Item = &'static str>,
    ) -> Self {
        let started = Family::<PluginLabels, TotalCounter>::default();
        let start_errors = Family::<PluginLabels, TotalCounter>::default();
        let finished = Family::<OutcomeLabels, TotalCounter>::default();
        // Every plugin's series exist from the start, at zero.
        let plugins = plugins
            .into_iter()
            .map(|name| PluginCounters {
                started: started.get_or_create_owned(&[("plugin", name)]),
                start_errors: start_errors.get_or_create_owned(&[("plugin", name)]),
                finished: AttemptOutcome::ALL.map(|outcome| {
                    finished.get_or_create_owned(&[("plugin", name), ("outcome", outcome.label())])
                }),
            })
            .collect();
        Self {
            plane,
            round: Histogram::new(ROUND_BUCKETS.iter().copied()),
            driving: Gauge::default(),
            lease_claims: TotalCounter::default(),
            lease_losses: TotalCounter::default(),
            claim_errors: TotalCounter::default(),
            started,
            start_errors,
            finished,
            plugins,
        }
    }

    pub(crate) fn round(&self, elapsed: Duration) {
        self.round.observe(elapsed.as_secs_f64());
    }

    pub(crate) fn set_driving(&self, executions: usize) {
        self.driving
            .set(i64::try_from(executions).unwrap_or(i64::MAX));
    }

    pub(crate) fn lease_claimed(&self) {
        self.lease_claims.inc();
    }

    pub(crate) fn lease_lost(&self) {
        self.lease_losses.inc();
    }

    pub(crate) fn claim_failed(&self) {
        self.claim_errors.inc();
    }

    pub(crate) fn attempt_started(&self, plugin: usize) {
        if let Some(p) = self.plugins.get(plugin) {
            p.started.inc();
        }
    }

    pub(crate) fn attempt_start_failed(&self, plugin: usize) {
        if let Some(p) = self.plugins.get(plugin) {
            p.start_errors.inc();
        }
    }

    pub(crate) fn attempt_finished(&self, plugin: usize, outcome: AttemptOutcome) {
        if let Some(p) = self.plugins.get(plugin) {
            p.finished[outcome as usize].inc();
        }
    }

    /// Executions this instance drives now.
    pub fn driving(&self) -> u64 {
        u64::try_from(self.driving.get()).unwrap_or(0)
    }

    /// Executions this instance leased since it started.
    pub fn lease_claims(&self) -> u64 {
        self.lease_claims.get()
    }

    /// The series that need no database.
    fn register_counters(&self, registry: &mut Registry) {
        registry.register(
            "alula_propeller_round_seconds",
            "Time one driver round took: engine decisions, attempt starts and aborts, the state save and event delivery",
            self.round.clone(),
        );
        for (name, help, family) in [
            (
                "alula_propeller_attempts_started_total",
                "Task attempts started, by plugin.",
                &self.started,
            ),
            (
                "alula_propeller_attempt_start_errors_total",
                "Task attempts a plugin refused or failed to start, by plugin.",
                &self.start_errors,
            ),
        ] {
            register_total(registry, name, help, family.clone());
        }
        register_total(
            registry,
            "alula_propeller_attempts_finished_total",
            "Task attempts ended, by plugin and outcome.",
            self.finished.clone(),
        );
        for (name, help, counter) in [
            (
                "alula_propeller_lease_claims_total",
                "Executions this instance leased.",
                &self.lease_claims,
            ),
            (
                "alula_propeller_lease_losses_total",
                "Executions whose lease this instance lost to another while driving them.",
                &self.lease_losses,
            ),
            (
                "alula_propeller_claim_errors_total",
                "Rounds whose attempt to lease executions failed (the database).",
                &self.claim_errors,
            ),
        ] {
            register_total(registry, name, help, counter.clone());
        }
    }
}

impl MetricsSource for PropellerMetrics {
    fn collect<'a>(&'a self, registry: &'a mut Registry) -> CollectFuture<'a> {
        Box::pin(async move {
            self.register_counters(registry);
            // `open` counts every instance's executions (and those no instance holds yet), so
            // the queue is `open` minus the sum of `driving` over the instances.
            let executions = Family::<[(&'static str, &'static str); 1], Gauge>::default();
            executions
                .get_or_create(&[("state", "driving")])
                .set(self.driving.get());
            match self.plane.count_open_runs().await {
                Ok(open) => {
                    executions.get_or_create(&[("state", "open")]).set(open);
                }
                Err(e) => tracing::warn!(error = %e, "metrics: counting open executions failed"),
            }
            registry.register(
                "alula_propeller_executions",
                "Executions this instance drives (driving), and executions not finished in the database, leased by any instance or waiting (open)",
                executions,
            );
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut registry = Registry::default();
        let round = Histogram::new(ROUND_BUCKETS.iter().copied());
        for elapsed in [
            Duration::from_micros(500),
            Duration::from_millis(30),
            Duration::from_millis(40),
            Duration::from_secs(3),
        ] {
            round.observe(elapsed.as_secs_f64());
        }
        registry.register("x", "Rounds", round);
        let mut out = String::new();
        prometheus_client_text(&mut out, &registry);
        let has = |line: &str| out.lines().any(|l| l == line);
        for line in [
            r#"x_bucket{le="0.001"} 1"#,
            r#"x_bucket{le="0.025"} 1"#,
            r#"x_bucket{le="0.05"} 3"#,
            r#"x_bucket{le="2.5"} 3"#,
            r#"x_bucket{le="5.0"} 4"#,
            r#"x_bucket{le="+Inf"} 4"#,
            "x_sum 3.0705",
            "x_count 4",
        ] {
            assert!(has(line), "{line} missing from\n{out}");
        }
    }

    fn prometheus_client_text(out: &mut String, registry: &Registry) {
        alula_metrics::prometheus_client::encoding::text::encode_registry(out, registry)
            .expect("writing to a String");
    }
}
