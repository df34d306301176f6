//! The reconciler: finds executions that need driving (new ones at once through admin's
//! notices, the rest by scanning the store), leases them and runs one driver task per
//! execution. Several instances can share a database: leases decide who drives what, and an
//! instance that dies leaves leases that expire and are taken over; one that stops cleanly
//! releases its leases so that another takes over at once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alula_plane::{ControlPlane, ExecutionKey, ExecutionNotice, ReadinessCheck, RunRecord};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::driver::{exec_name, Driver};
use crate::give_up::{fail_execution, DriverFailures};
use crate::metrics::PropellerMetrics;
use crate::{Context, DriveError, Notice, Plugin, PluginRegistry, PropellerConfig};

/// Scan intervals without a round after which the loop counts as stuck (on the database,
/// most likely) and the instance as not ready.
const STALE_ROUNDS: u32 = 5;

pub struct Propeller {
    ctx: Arc<Context>,
    heartbeat: Heartbeat,
}

/// A driver task and the way to talk to it.
struct DriverHandle {
    notices: mpsc::UnboundedSender<Notice>,
    task: JoinHandle<()>,
}

impl Propeller {
    /// Runs tasks on the first of `plugins` that accepts them (no type defaults).
    pub fn new(
        plane: Arc<dyn ControlPlane>,
        plugins: Vec<Arc<dyn Plugin>>,
        config: PropellerConfig,
    ) -> Self {
        Self::with_registry(plane, Arc::new(PluginRegistry::in_order(plugins)), config)
    }

    /// Runs tasks on the plugins `registry` selects.
    pub fn with_registry(
        plane: Arc<dyn ControlPlane>,
        registry: Arc<PluginRegistry>,
        config: PropellerConfig,
    ) -> Self {
        let layout = crate::Layout::new(config.storage.clone());
        let metrics = Arc::new(PropellerMetrics::new(
            plane.clone(),
            registry.plugins().iter().map(|p| p.name()),
        ));
        let heartbeat = Heartbeat::new(config.scan_interval * STALE_ROUNDS);
        Self {
            ctx: Arc::new(Context {
                plane,
                registry,
                config,
                layout,
                metrics,
            }),
            heartbeat,
        }
    }

    /// The series for `/metrics`.
    pub fn metrics(&self) -> Arc<PropellerMetrics> {
        self.ctx.metrics.clone()
    }

    /// The loop's liveness, for `/readyz`.
    pub fn heartbeat(&self) -> Heartbeat {
        self.heartbeat.clone()
    }

    /// Runs until `shutdown` resolves, then stops claiming, lets every driver finish its round
    /// (within [`PropellerConfig::shutdown_grace`]; attempts keep running and whoever resumes
    /// the execution re-attaches to them) and releases the leases.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), DriveError> {
        let ctx = self.ctx;
        // Marks the loop dead however `run` ends (an error, a panic, a dropped future).
        let _alive = self.heartbeat.alive_guard();
        // A control plane that cannot push notices (across the network) is found out by the
        // scan alone: this receiver's sender lives as long as the loop and never sends.
        let (_no_notices, never) = broadcast::channel(1);
        let mut notices = ctx.plane.notices().unwrap_or(never);
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<DriverEnd>();
        let mut drivers: HashMap<ExecutionKey, DriverHandle> = HashMap::new();
        let mut failures = DriverFailures::default();
        let mut scan = tokio::time::interval(ctx.config.scan_interval);
        scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            self.heartbeat.beat();
            ctx.metrics.set_driving(drivers.len());
            let mut claim = false;
            tokio::select! {
                _ = &mut shutdown => break,
                _ = scan.tick() => claim = true,
                Some((key, error)) = done_rx.recv() => {
                    drivers.remove(&key);
                    match error {
                        None => failures.clear(&key),
                        Some(e) => {
                            if let Some(tries) = failures.record(&key, &e, &ctx.config) {
                                if let Err(err) = fail_execution(&ctx, &key, &e, tries).await {
                                    tracing::error!(execution = %exec_name(&key), error = %err, "cannot fail the execution either; its lease will expire");
                                }
                            }
                        }
                    }
                }
                notice = notices.recv() => match notice {
                    Ok(notice) => claim |= forward(notice, &drivers),
                    // Missed notices: the scan finds what they were about.
                    Err(broadcast::error::RecvError::Lagged(_)) => claim = true,
                    Err(broadcast::error::RecvError::Closed) => {}
                },
            }
            // A burst of notices (a thousand executions created at once) becomes one claim.
            while let Ok(notice) = notices.try_recv() {
                claim |= forward(notice, &drivers);
            }
            if claim && drivers.len() < ctx.config.max_executions {
                let now = alula_plane::now_micros();
                let limit = (ctx.config.max_executions - drivers.len()) as i64;
                let claimed = match ctx
                    .plane
                    .claim_runs(&ctx.config.instance_id, now, ctx.lease_until(), limit)
                    .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        ctx.metrics.claim_failed();
                        tracing::warn!(error = %e, "cannot claim executions; will retry");
                        continue;
                    }
                };
                for record in claimed {
                    // Its own leases come back too (renewed): only new ones count as claims.
                    if drivers.contains_key(&record.key) || failures.waiting(&record.key) {
                        continue;
                    }
                    ctx.metrics.lease_claimed();
                    let (tx, rx) = mpsc::unbounded_channel();
                    let key = record.key.clone();
                    let task = spawn_driver(ctx.clone(), record, rx, done_tx.clone());
                    drivers.insert(key, DriverHandle { notices: tx, task });
                }
            }
        }
        stop_drivers(&ctx, drivers, &mut done_rx).await;
        ctx.metrics.set_driving(0);
        // Whatever happened to the drivers: another instance can take over at once instead of
        // waiting for the leases to expire.
        let released = ctx.plane.release_runs(&ctx.config.instance_id).await?;
        tracing::info!(
            instance = %ctx.config.instance_id,
            released,
            "propeller stopped; leases released"
        );
        Ok(())
    }
}

/// Asks every driver to stop after its current round and waits for them until the grace
/// period ends; the ones still busy then (a slow save, a plugin call that hangs) are cut off,
/// which loses nothing saved: their next owner resumes from the last save.
async fn stop_drivers(
    ctx: &Context,
    mut drivers: HashMap<ExecutionKey, DriverHandle>,
    done: &mut mpsc::UnboundedReceiver<DriverEnd>,
) {
    for driver in drivers.values() {
        let _ = driver.notices.send(Notice::Stop);
    }
    let deadline = tokio::time::Instant::now() + ctx.config.shutdown_grace;
    while !drivers.is_empty() {
        match tokio::time::timeout_at(deadline, done.recv()).await {
            Ok(Some((key, _))) => {
                drivers.remove(&key);
            }
            Ok(None) | Err(_) => break,
        }
    }
    if drivers.is_empty() {
        return;
    }
    tracing::warn!(
        drivers = drivers.len(),
        grace = ?ctx.config.shutdown_grace,
        "drivers still busy after the shutdown grace period; cutting them off"
    );
    for driver in drivers.values() {
        driver.task.abort();
    }
    // Cancelled at their next await point; waiting for that keeps a cut-off driver from
    // writing after the leases are released (its writes would fail the owner check anyway).
    for (_, driver) in drivers {
        let _ = driver.task.await;
    }
}

/// When the reconciler's loop last went round. It goes round at least every scan interval,
/// so a stale heartbeat means the loop is stuck (on the database) or gone.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    inner: Arc<HeartbeatState>,
}

#[derive(Debug)]
struct HeartbeatState {
    epoch: Instant,
    /// Milliseconds from `epoch` to the last round.
    last_ms: AtomicU64,
    stale_after: Duration,
    running: AtomicBool,
    started: AtomicBool,
}

impl Heartbeat {
    pub fn new(stale_after: Duration) -> Self {
        Self {
            inner: Arc::new(HeartbeatState {
                epoch: Instant::now(),
                last_ms: AtomicU64::new(0),
                stale_after,
                running: AtomicBool::new(false),
                started: AtomicBool::new(false),
            }),
        }
    }

    fn beat(&self) {
        let ms = self.inner.epoch.elapsed().as_millis() as u64;
        self.inner.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the last round.
    pub fn age(&self) -> Duration {
        let last = Duration::from_millis(self.inner.last_ms.load(Ordering::Relaxed));
        self.inner.epoch.elapsed().saturating_sub(last)
    }

    fn alive_guard(&self) -> AliveGuard {
        self.beat();
        self.inner.started.store(true, Ordering::Relaxed);
        self.inner.running.store(true, Ordering::Relaxed);
        AliveGuard(self.clone())
    }
}

struct AliveGuard(Heartbeat);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.inner.running.store(false, Ordering::Relaxed);
    }
}

impl ReadinessCheck for Heartbeat {
    fn not_ready(&self) -> Option<String> {
        if !self.inner.started.load(Ordering::Relaxed) {
            return Some("propeller: not started yet".into());
        }
        if !self.inner.running.load(Ordering::Relaxed) {
            return Some("propeller: its loop has stopped".into());
        }
        let age = self.age();
        (age > self.inner.stale_after).then(|| {
            format!(
                "propeller: its loop last went round {:.1}s ago (limit {:.1}s)",
                age.as_secs_f64(),
                self.inner.stale_after.as_secs_f64()
            )
        })
    }
}

/// Passes a notice to the driver it concerns; true when it calls for a claim instead (a new
/// execution, or one terminated while nobody drives it, whose abort must still be recorded).
fn forward(notice: ExecutionNotice, drivers: &HashMap<ExecutionKey, DriverHandle>) -> bool {
    let (key, to_driver) = match notice {
        ExecutionNotice::Created(_) => return true,
        ExecutionNotice::Terminated(key) => (key, Notice::Terminated),
        ExecutionNotice::SignalSet(key) => (key, Notice::SignalSet),
    };
    match drivers.get(&key) {
        Some(driver) => {
            let _ = driver.notices.send(to_driver);
            false
        }
        None => to_driver == Notice::Terminated,
    }
}

/// A driver that ended: its execution, and the error it stopped on (not a lost lease).
type DriverEnd = (ExecutionKey, Option<DriveError>);

fn spawn_driver(
    ctx: Arc<Context>,
    record: RunRecord,
    notices: mpsc::UnboundedReceiver<Notice>,
    done: mpsc::UnboundedSender<DriverEnd>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let key = record.key.clone();
        let result = match Driver::load(ctx.clone(), record, notices).await {
            Ok(driver) => driver.run().await,
            Err(e) => Err(e),
        };
        let error = match result {
            Ok(()) => None,
            Err(DriveError::LeaseLost) => {
                ctx.metrics.lease_lost();
                tracing::warn!(execution = %exec_name(&key), "lease lost; another instance drives it now");
                None
            }
            Err(e) => {
                // Left leased: the reconciler tries again after a backoff, and fails the
                // execution when the error is final or keeps coming back (see `give_up`).
                tracing::error!(execution = %exec_name(&key), error = %e, "driver stopped");
                Some(e)
            }
        };
        let _ = done.send((key, error));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_readiness_follows_the_loop() {
        let heartbeat = Heartbeat::new(Duration::from_secs(60));
        assert!(heartbeat.not_ready().is_some(), "not started yet");
        let guard = heartbeat.alive_guard();
        assert_eq!(heartbeat.not_ready(), None);
        drop(guard);
        assert_eq!(
            heartbeat.not_ready().as_deref(),
            Some("propeller: its loop has stopped")
        );

        let stale = Heartbeat::new(Duration::ZERO);
        let _guard = stale.alive_guard();
        std::thread::sleep(Duration::from_millis(5));
        let reason = stale.not_ready().unwrap_or_default();
        assert!(reason.contains("last went round"), "{reason:?}");
        stale.beat();
        assert!(stale.age() < Duration::from_millis(5));
    }
}
