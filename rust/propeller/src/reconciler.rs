//! The reconciler: finds executions that need driving (new ones at once through admin's
//! notices, the rest by scanning the store), leases them and runs one driver task per
//! execution. Several instances can share a database: leases decide who drives what, and an
//! instance that dies leaves leases that expire and are taken over.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use alula_admin::store::{ExecutionKey, RunRecord};
use alula_admin::{AdminApi, ExecutionNotice};
use tokio::sync::{broadcast, mpsc};

use crate::driver::{exec_name, Driver};
use crate::{Context, DriveError, Notice, Plugin, PropellerConfig};

pub struct Propeller {
    ctx: Arc<Context>,
}

impl Propeller {
    pub fn new(api: AdminApi, plugins: Vec<Arc<dyn Plugin>>, config: PropellerConfig) -> Self {
        let layout = crate::Layout::new(config.storage_root.clone());
        Self {
            ctx: Arc::new(Context {
                store: api.store().clone(),
                api,
                plugins,
                config,
                layout,
            }),
        }
    }

    /// Runs until `shutdown` resolves, then stops every driver (attempts keep running; a
    /// restarted instance re-attaches to them) and releases its leases.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), DriveError> {
        let ctx = self.ctx;
        let mut notices = ctx.api.subscribe();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<ExecutionKey>();
        let mut drivers: HashMap<ExecutionKey, mpsc::UnboundedSender<Notice>> = HashMap::new();
        let mut scan = tokio::time::interval(ctx.config.scan_interval);
        scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            let mut claim = false;
            tokio::select! {
                _ = &mut shutdown => break,
                _ = scan.tick() => claim = true,
                Some(key) = done_rx.recv() => { drivers.remove(&key); }
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
                let now = alula_admin::store::now_micros();
                let limit = (ctx.config.max_executions - drivers.len()) as i64;
                let claimed = match ctx
                    .store
                    .claim_runs(&ctx.config.instance_id, now, ctx.lease_until(), limit)
                    .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot claim executions; will retry");
                        continue;
                    }
                };
                for record in claimed {
                    if drivers.contains_key(&record.key) {
                        continue;
                    }
                    let (tx, rx) = mpsc::unbounded_channel();
                    drivers.insert(record.key.clone(), tx);
                    spawn_driver(ctx.clone(), record, rx, done_tx.clone());
                }
            }
        }
        for tx in drivers.values() {
            let _ = tx.send(Notice::Stop);
        }
        // Let drivers finish their round so what they decided is saved.
        while !drivers.is_empty() {
            match tokio::time::timeout(std::time::Duration::from_secs(5), done_rx.recv()).await {
                Ok(Some(key)) => {
                    drivers.remove(&key);
                }
                _ => break,
            }
        }
        ctx.store.release_runs(&ctx.config.instance_id).await?;
        Ok(())
    }
}

/// Passes a notice to the driver it concerns; true when it calls for a claim instead (a new
/// execution, or one terminated while nobody drives it, whose abort must still be recorded).
fn forward(
    notice: ExecutionNotice,
    drivers: &HashMap<ExecutionKey, mpsc::UnboundedSender<Notice>>,
) -> bool {
    let (key, to_driver) = match notice {
        ExecutionNotice::Created(_) => return true,
        ExecutionNotice::Terminated(key) => (key, Notice::Terminated),
        ExecutionNotice::SignalSet(key) => (key, Notice::SignalSet),
    };
    match drivers.get(&key) {
        Some(tx) => {
            let _ = tx.send(to_driver);
            false
        }
        None => to_driver == Notice::Terminated,
    }
}

fn spawn_driver(
    ctx: Arc<Context>,
    record: RunRecord,
    notices: mpsc::UnboundedReceiver<Notice>,
    done: mpsc::UnboundedSender<ExecutionKey>,
) {
    tokio::spawn(async move {
        let key = record.key.clone();
        let result = match Driver::load(ctx.clone(), record, notices).await {
            Ok(driver) => driver.run().await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {}
            Err(DriveError::LeaseLost) => {
                tracing::warn!(execution = %exec_name(&key), "lease lost; another instance drives it now")
            }
            Err(e) => {
                // Left leased: it is retried when the lease expires (a transient database or
                // storage failure), and the error stays visible in the log meanwhile.
                tracing::error!(execution = %exec_name(&key), error = %e, "driver stopped");
            }
        }
        let _ = done.send(key);
    });
}
