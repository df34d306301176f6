//! The propeller's Prometheus series, rendered on the HTTP port's `/metrics` next to admin's
//! (or alone in a propeller-only process). Counters are atomics indexed by plugin position and
//! outcome, so recording an event never allocates or locks.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use alula_admin::metrics::{escape, MetricsSource, RenderFuture};
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

/// A Prometheus histogram with fixed buckets (upper bounds in seconds).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative; the last one is `+Inf`).
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = self
            .bounds
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(self.bounds.len());
        self.counts[bucket].fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Relaxed);
    }

    /// Appends `name`'s `_bucket`, `_sum` and `_count` lines.
    pub fn render(&self, name: &str, out: &mut String) {
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Relaxed);
            match self.bounds.get(i) {
                Some(bound) => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// Driver rounds last from a millisecond (nothing to do) to seconds (a save of a huge map).
const ROUND_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug)]
struct PluginCounters {
    name: &'static str,
    started: AtomicU64,
    start_errors: AtomicU64,
    finished: [AtomicU64; AttemptOutcome::ALL.len()],
}

/// The propeller's counters, shared by the reconciler and every driver.
pub struct PropellerMetrics {
    plane: Arc<dyn ControlPlane>,
    /// One driver round: decide, start and abort attempts, save and deliver events.
    round: Histogram,
    driving: AtomicU64,
    lease_claims: AtomicU64,
    lease_losses: AtomicU64,
    claim_errors: AtomicU64,
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
        Self {
            plane,
            round: Histogram::new(ROUND_BUCKETS),
            driving: AtomicU64::new(0),
            lease_claims: AtomicU64::new(0),
            lease_losses: AtomicU64::new(0),
            claim_errors: AtomicU64::new(0),
            plugins: plugins
                .into_iter()
                .map(|name| PluginCounters {
                    name,
                    started: AtomicU64::new(0),
                    start_errors: AtomicU64::new(0),
                    finished: Default::default(),
                })
                .collect(),
        }
    }

    pub(crate) fn round(&self, elapsed: Duration) {
        self.round.observe(elapsed);
    }

    pub(crate) fn set_driving(&self, executions: usize) {
        self.driving.store(executions as u64, Relaxed);
    }

    pub(crate) fn lease_claimed(&self) {
        self.lease_claims.fetch_add(1, Relaxed);
    }

    pub(crate) fn lease_lost(&self) {
        self.lease_losses.fetch_add(1, Relaxed);
    }

    pub(crate) fn claim_failed(&self) {
        self.claim_errors.fetch_add(1, Relaxed);
    }

    pub(crate) fn attempt_started(&self, plugin: usize) {
        if let Some(p) = self.plugins.get(plugin) {
            p.started.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn attempt_start_failed(&self, plugin: usize) {
        if let Some(p) = self.plugins.get(plugin) {
            p.start_errors.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn attempt_finished(&self, plugin: usize, outcome: AttemptOutcome) {
        if let Some(p) = self.plugins.get(plugin) {
            p.finished[outcome as usize].fetch_add(1, Relaxed);
        }
    }

    /// Executions this instance drives now.
    pub fn driving(&self) -> u64 {
        self.driving.load(Relaxed)
    }

    /// Executions this instance leased since it started.
    pub fn lease_claims(&self) -> u64 {
        self.lease_claims.load(Relaxed)
    }

    fn render_counters(&self, out: &mut String) {
        out.push_str("# HELP alula_propeller_round_seconds Time one driver round took: engine decisions, attempt starts and aborts, the state save and event delivery.\n");
        out.push_str("# TYPE alula_propeller_round_seconds histogram\n");
        self.round.render("alula_propeller_round_seconds", out);

        out.push_str(
            "# HELP alula_propeller_attempts_started_total Task attempts started, by plugin.\n",
        );
        out.push_str("# TYPE alula_propeller_attempts_started_total counter\n");
        for p in &self.plugins {
            let _ = writeln!(
                out,
                "alula_propeller_attempts_started_total{{plugin=\"{}\"}} {}",
                escape(p.name),
                p.started.load(Relaxed)
            );
        }
        out.push_str("# HELP alula_propeller_attempt_start_errors_total Task attempts a plugin refused or failed to start, by plugin.\n");
        out.push_str("# TYPE alula_propeller_attempt_start_errors_total counter\n");
        for p in &self.plugins {
            let _ = writeln!(
                out,
                "alula_propeller_attempt_start_errors_total{{plugin=\"{}\"}} {}",
                escape(p.name),
                p.start_errors.load(Relaxed)
            );
        }
        out.push_str("# HELP alula_propeller_attempts_finished_total Task attempts ended, by plugin and outcome.\n");
        out.push_str("# TYPE alula_propeller_attempts_finished_total counter\n");
        for p in &self.plugins {
            for outcome in AttemptOutcome::ALL {
                let _ = writeln!(
                    out,
                    "alula_propeller_attempts_finished_total{{plugin=\"{}\",outcome=\"{}\"}} {}",
                    escape(p.name),
                    outcome.label(),
                    p.finished[outcome as usize].load(Relaxed)
                );
            }
        }

        for (name, help, value) in [
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
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Relaxed));
        }
    }
}

impl MetricsSource for PropellerMetrics {
    fn render<'a>(&'a self, out: &'a mut String) -> RenderFuture<'a> {
        Box::pin(async move {
            self.render_counters(out);
            // `open` counts every instance's executions (and those no instance holds yet), so
            // the queue is `open` minus the sum of `driving` over the instances.
            out.push_str("# HELP alula_propeller_executions Executions this instance drives (driving), and executions not finished in the database, leased by any instance or waiting (open).\n");
            out.push_str("# TYPE alula_propeller_executions gauge\n");
            let _ = writeln!(
                out,
                "alula_propeller_executions{{state=\"driving\"}} {}",
                self.driving()
            );
            match self.plane.count_open_runs().await {
                Ok(open) => {
                    let _ = writeln!(out, "alula_propeller_executions{{state=\"open\"}} {open}");
                }
                Err(e) => tracing::warn!(error = %e, "metrics: counting open executions failed"),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::new(&[0.01, 0.1]);
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_millis(60));
        h.observe(Duration::from_secs(3));
        let mut out = String::new();
        h.render("x", &mut out);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            [
                r#"x_bucket{le="0.01"} 1"#,
                r#"x_bucket{le="0.1"} 3"#,
                r#"x_bucket{le="+Inf"} 4"#,
                "x_sum 3.115",
                "x_count 4",
            ]
        );
    }
}
