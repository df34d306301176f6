//! Drives one execution: the engine, its attempts, children and gates, the saved state and the
//! event outbox. One tokio task per leased execution.
//!
//! What makes a crash harmless: events are saved with the state that produced them (one
//! transaction, into an outbox) before they are delivered, so none is lost or invented twice;
//! and every plugin refuses to start an attempt twice (a marker per attempt), so when a
//! restarted driver resumes from the last saved state and the engine asks again for attempts
//! started since, the driver re-attaches to them instead. Attempts the saved state records are
//! re-attached to, finished ones read, ones never started started (the first time).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use alula_engine::{
    Action, AttemptId, Event, Execution, ExecutionSettings, ExecutionState, SignalKind,
    TaskAttempt, TaskOutcome,
};
use alula_idl::flyteidl::admin::TaskResourceAttributes;
use alula_idl::flyteidl::core::{
    literal_type, workflow_execution::Phase, CatalogCacheStatus, LiteralMap, LiteralType,
    SimpleType, WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::core::{task_execution, NodeExecutionIdentifier, TaskLog};
use alula_idl::flyteidl::event::{NodeExecutionEvent, TaskExecutionEvent, WorkflowExecutionEvent};
use alula_plane::logs::{log_key, log_url, AttemptLogId};
use alula_plane::{ExecutionEvent, ExecutionKey, RunRecord, Save};

use crate::plugin::AttemptSettings;
use prost::Message;
use tokio::sync::mpsc;

use crate::children::Children;
use crate::launch::apply_task_resources;
use crate::metrics::AttemptOutcome;
use crate::plugin::{Attempt, AttemptStatus, LogData, Plugin, PluginError, Waker};
use crate::{Context, DriveError, Notice};

mod attempts;
mod log_upload;
mod outside;
mod recovery;
mod serialize;

pub(crate) use outside::deliver;

/// How often children, signals and the execution's own phase are looked at when no notice
/// arrives (another instance's admin, or a lost notice).
const POLL: Duration = Duration::from_millis(500);
/// Bytes of saved state per microsecond of delay between saves: a small state is saved at once
/// (its events wait for the save), a large one (a map over 100,000 elements) less often.
const SAVE_BYTES_PER_MICRO: usize = 50;
/// From this size on, the delay also follows what the last save cost (encoding and writing):
/// at least this many times as long, so that saving takes at most a fifth of the driver's time
/// whatever the encoding's speed and the database's. (Keyed on bytes alone, a smaller encoding
/// meant more saves: the binary state, six times smaller than JSON, was saved six times as
/// often; keyed on cost too, a 100,000-element map runs in 181 s instead of 221 s.)
const COSTLY_STATE_BYTES: usize = 256 * 1024;
const SAVE_COST_RATIO: u32 = 4;
const MAX_SAVE_DELAY: Duration = Duration::from_secs(2);
/// Starts refused for infrastructure reasons (an API server hiccup, a full disk) are tried again
/// this many times, backing off from one second, before the attempt fails as a system error:
/// a blip must not use up one of the task's attempts, as in flytepropeller, where such errors
/// retry the round and not the task.
const MAX_START_TRIES: u32 = 5;
const FIRST_START_BACKOFF: Duration = Duration::from_secs(1);

struct Live {
    attempt: Attempt,
    plugin: usize,
    cache_key: Option<String>,
}

pub(crate) struct Driver {
    ctx: Arc<Context>,
    key: ExecutionKey,
    id: WorkflowExecutionIdentifier,
    exec: Execution,
    next_event: i64,
    live: HashMap<AttemptId, Live>,
    /// Array nodes whose whole inputs were written (their elements read them by index).
    whole_inputs_written: HashSet<String>,
    children: Children,
    /// Gates waiting for a signal: node execution id → (signal id, kind).
    signals: HashMap<String, (String, SignalKind)>,
    wake_at: Option<SystemTime>,
    wake_tx: mpsc::UnboundedSender<u64>,
    wake_rx: mpsc::UnboundedReceiver<u64>,
    notices: mpsc::UnboundedReceiver<Notice>,
    /// Decisions not yet saved (and so not yet acted on).
    dirty: bool,
    pending_events: Vec<(i64, Vec<u8>)>,
    to_start: Vec<TaskAttempt>,
    /// Starts that failed transiently, each with when to try again and how often it failed.
    retry_starts: Vec<(Instant, u32, TaskAttempt)>,
    to_abort: Vec<AttemptId>,
    last_save: Instant,
    state_bytes: usize,
    /// How long the last save took, encoding included (zero before the first).
    save_cost: Duration,
    overwrite_cache: bool,
    /// The execution's settings every attempt carries (from its resolved spec).
    attempt_settings: Arc<AttemptSettings>,
    aborting: bool,
    /// The outbox may hold events from before (a previous owner, a failed delivery).
    undelivered: bool,
    /// Terminated before this driver loaded it: abort on the first round.
    pending_abort: bool,
    /// Cache reservations held and attempts waiting for others' (`cache_serialize`).
    reservations: serialize::Reservations,
    /// Log links for the terminal event of the attempt that just ended (node id, retry).
    end_links: Option<(String, u32, Vec<TaskLog>)>,
    /// The execution's task resource defaults and limits, for the tasks dynamic tasks generate.
    task_resources: Option<TaskResourceAttributes>,
}

fn encode_event(event: &Event) -> (i64, Vec<u8>) {
    match event {
        Event::Workflow(e) => (0, e.encode_to_vec()),
        Event::Node(e) => (1, e.encode_to_vec()),
        Event::Task(e) => (2, e.encode_to_vec()),
    }
}

/// How long decisions may wait unsaved after the last save (see `SAVE_BYTES_PER_MICRO`).
fn save_delay(state_bytes: usize, last_save_cost: Duration) -> Duration {
    let by_size = Duration::from_micros((state_bytes / SAVE_BYTES_PER_MICRO) as u64);
    let by_cost = if state_bytes >= COSTLY_STATE_BYTES {
        last_save_cost * SAVE_COST_RATIO
    } else {
        Duration::ZERO
    };
    by_size.max(by_cost).min(MAX_SAVE_DELAY)
}

impl Driver {
    pub(crate) async fn load(
        ctx: Arc<Context>,
        record: RunRecord,
        notices: mpsc::UnboundedReceiver<Notice>,
    ) -> Result<Self, DriveError> {
        let key = record.key.clone();
        let launch = ctx
            .plane
            .launch(&key)
            .await?
            .ok_or_else(|| DriveError::Missing(format!("execution {}", exec_name(&key))))?;
        let alula_plane::Launch {
            spec,
            inputs,
            closure,
            task_resources,
            phase,
        } = launch;
        let id = WorkflowExecutionIdentifier {
            project: key.project.clone(),
            domain: key.domain.clone(),
            name: key.name.clone(),
            org: String::new(),
        };
        let max_parallelism = if spec.max_parallelism > 0 {
            spec.max_parallelism as u32
        } else {
            ctx.config.max_parallelism
        };
        let settings = ExecutionSettings {
            execution_id: id.clone(),
            max_parallelism,
            max_system_retries: ctx.config.max_system_retries,
            record_events: true,
            producer_id: ctx.config.instance_id.clone(),
        };
        let mut exec = if record.state.is_empty() {
            Execution::new(&closure, inputs, settings)?
        } else {
            let state: ExecutionState = alula_engine::state_codec::decode(&record.state)
                .map_err(|e| DriveError::Corrupt(format!("saved {e}")))?;
            Execution::resume(&closure, state, settings, SystemTime::now())?
        };
        if let Some(original) = recovery::reference(&spec) {
            exec.recover_from(recovery::succeeded_nodes(&ctx, &original).await?);
        }
        let (wake_tx, wake_rx) = mpsc::unbounded_channel();
        Ok(Self {
            children: Children::new(ctx.clone(), id.clone()).inheriting(&spec),
            ctx,
            key,
            id,
            exec,
            next_event: record.next_event,
            live: HashMap::new(),
            whole_inputs_written: HashSet::new(),
            signals: HashMap::new(),
            wake_at: None,
            wake_tx,
            wake_rx,
            notices,
            dirty: record.state.is_empty(),
            pending_events: Vec::new(),
            to_start: Vec::new(),
            retry_starts: Vec::new(),
            to_abort: Vec::new(),
            last_save: Instant::now(),
            state_bytes: record.state.len(),
            save_cost: Duration::ZERO,
            overwrite_cache: spec.overwrite_cache,
            attempt_settings: Arc::new(crate::settings::attempt_settings(&spec)),
            aborting: false,
            // A run that saved before may have left events behind; a new one has none.
            undelivered: record.next_event > 0,
            pending_abort: phase == Phase::Aborting,
            reservations: serialize::Reservations::default(),
            end_links: None,
            task_resources,
        })
    }

    /// Runs the execution until it is over (or the lease is lost, or `stop` says so).
    pub(crate) async fn run(mut self) -> Result<(), DriveError> {
        if self.undelivered {
            self.deliver_outbox().await?;
        }
        self.reattach().await?;
        if self.pending_abort {
            self.check_phase().await?;
        }
        let mut last_renew = Instant::now();
        let mut next_poll = Instant::now() + POLL;
        loop {
            let round = Instant::now();
            self.tend_reservations().await?;
            self.advance().await?;
            // Attempts start at once, before the state that records them is saved: every
            // plugin leaves a start marker (a file, a pod named after the attempt), so after a
            // crash the engine's repeated start of the same attempt is refused and the driver
            // re-attaches instead. Saving can then wait (see `save_delay`) without holding up
            // a map over 100,000 elements.
            self.act().await?;
            // Links of the map elements just started, on their array node's task event.
            self.exec.report_array_logs(SystemTime::now());
            self.collect_events();
            if self.save_due() {
                let saved = self.save().await?;
                self.deliver_saved(saved).await?;
            }
            self.ctx.metrics.round(round.elapsed());
            if self.exec.phase().is_terminal()
                && !self.dirty
                && self.to_start.is_empty()
                && self.retry_starts.is_empty()
            {
                self.finish().await?;
                return Ok(());
            }
            let lease_every = self.ctx.config.lease / 3;
            if last_renew.elapsed() >= lease_every {
                let until = self.ctx.lease_until();
                if !self
                    .ctx
                    .plane
                    .renew_run(&self.key, &self.ctx.config.instance_id, until)
                    .await?
                {
                    return Err(DriveError::LeaseLost);
                }
                last_renew = Instant::now();
            }
            if Instant::now() >= next_poll {
                self.poll_outside().await?;
                next_poll = Instant::now() + POLL;
            }
            if self.exec.has_pending_work() {
                // Starting attempts decided something at once (a start refused for good):
                // decide again now rather than after the next wake-up.
                continue;
            }
            // Sleep until something happens: an attempt changes, a notice, a deadline, a
            // pending save, the next poll or the next lease renewal.
            let mut until = next_poll.min(last_renew + lease_every);
            if self.dirty {
                until = until.min(self.last_save + self.save_delay());
            }
            if let Some(t) = self.wake_at {
                let d = t.duration_since(SystemTime::now()).unwrap_or_default();
                until = until.min(Instant::now() + d);
            }
            if let Some(t) = self.retry_starts.iter().map(|(t, _, _)| *t).min() {
                until = until.min(t);
            }
            if let Some(t) = self.reservations.next_due() {
                until = until.min(t);
            }
            tokio::select! {
                Some(attempt) = self.wake_rx.recv() => {
                    self.attempt_changed(attempt).await?;
                    // Take every other wake-up that is already queued before deciding.
                    while let Ok(attempt) = self.wake_rx.try_recv() {
                        self.attempt_changed(attempt).await?;
                    }
                }
                notice = self.notices.recv() => match notice {
                    Some(Notice::Stop) | None => return Ok(()),
                    Some(Notice::Terminated) => self.check_phase().await?,
                    Some(Notice::SignalSet) => { self.check_signals().await?; }
                },
                _ = tokio::time::sleep_until(until.into()) => {}
            }
        }
    }

    fn save_delay(&self) -> Duration {
        save_delay(self.state_bytes, self.save_cost)
    }

    fn save_due(&self) -> bool {
        self.dirty
            && (self.exec.phase().is_terminal() || self.last_save.elapsed() >= self.save_delay())
    }

    /// Lets the engine decide until it has nothing more to decide right now. Cache hits are
    /// answered at once (they need no attempt), everything else waits for the save.
    async fn advance(&mut self) -> Result<(), DriveError> {
        loop {
            let actions = self.exec.poll(SystemTime::now());
            let mut answered = false;
            for action in actions {
                self.dirty = true;
                match action {
                    Action::StartTask(attempt) => {
                        if let Some(outputs) = self.cache_lookup(&attempt).await? {
                            self.exec.task_finished(
                                attempt.id,
                                TaskOutcome::Succeeded {
                                    outputs,
                                    cache_status: CatalogCacheStatus::CacheHit,
                                },
                                SystemTime::now(),
                            )?;
                            answered = true;
                        } else {
                            self.to_start.push(*attempt);
                        }
                    }
                    Action::AbortTask { attempt, .. } => self.to_abort.push(attempt),
                    Action::StartChild {
                        node_execution_id,
                        launch_plan,
                        inputs,
                    } => {
                        self.children
                            .start(&node_execution_id, &launch_plan, inputs)
                            .await?
                    }
                    Action::AbortChild { node_execution_id } => {
                        self.children.abort(&node_execution_id).await
                    }
                    Action::WaitForSignal {
                        node_execution_id,
                        signal_id,
                        kind,
                    } => {
                        self.create_signal(&signal_id, &kind).await?;
                        self.signals.insert(node_execution_id, (signal_id, kind));
                        answered |= self.check_signals().await?;
                    }
                    Action::WakeAt(t) => {
                        self.wake_at = Some(self.wake_at.map_or(t, |w| w.min(t)));
                    }
                }
            }
            self.collect_events();
            if let Some(t) = self.wake_at {
                if t <= SystemTime::now() {
                    self.wake_at = None;
                    continue;
                }
            }
            if !answered && !self.exec.has_pending_work() {
                return Ok(());
            }
        }
    }

    /// Saves the state and the new events in one transaction; returns the events saved (with
    /// the sequence number of the first) for delivery.
    async fn save(&mut self) -> Result<(i64, Vec<(i64, Vec<u8>)>), DriveError> {
        let started = Instant::now();
        let state = alula_engine::state_codec::encode(self.exec.state())
            .map_err(|e| DriveError::Corrupt(e.to_string()))?;
        self.state_bytes = state.len();
        let events = std::mem::take(&mut self.pending_events);
        let save = Save {
            state: &state,
            first_event: self.next_event,
            events: &events,
            lease_until: self.ctx.lease_until(),
            now: alula_plane::now_micros(),
        };
        let saved = self
            .ctx
            .plane
            .save_run(&self.key, &self.ctx.config.instance_id, save)
            .await?;
        if !saved {
            return Err(DriveError::LeaseLost);
        }
        let first = self.next_event;
        self.next_event += events.len() as i64;
        self.dirty = false;
        self.last_save = Instant::now();
        self.save_cost = self.last_save - started;
        Ok((first, events))
    }

    /// Delivers events just saved straight from memory (the outbox holds them should this fail
    /// or the process die), then forgets them.
    async fn deliver_saved(
        &mut self,
        (first, events): (i64, Vec<(i64, Vec<u8>)>),
    ) -> Result<(), DriveError> {
        if events.is_empty() {
            return Ok(());
        }
        if self.undelivered {
            // Older events wait in the outbox: keep the order.
            return self.deliver_outbox().await;
        }
        for (i, (kind, event)) in events.iter().enumerate() {
            if let Err(e) = deliver(&self.ctx, *kind, event).await {
                // Delivered up to i - 1; the rest stays in the outbox for the next try.
                if i > 0 {
                    self.ctx
                        .plane
                        .ack_outbox(&self.key, first + i as i64 - 1)
                        .await?;
                }
                self.undelivered = true;
                return Err(e);
            }
        }
        self.ctx
            .plane
            .ack_outbox(&self.key, first + events.len() as i64 - 1)
            .await?;
        Ok(())
    }

    /// Carries out what the saved state recorded: aborts, then starts.
    async fn act(&mut self) -> Result<(), DriveError> {
        for id in std::mem::take(&mut self.to_abort) {
            // One waiting to be started again is simply not started.
            self.retry_starts.retain(|(_, _, ta)| ta.id != id);
            self.reservations.forget_waiting(id);
            self.release_reservation(id).await;
            if let Some(live) = self.live.remove(&id) {
                let plugin = &self.ctx.registry.plugins()[live.plugin];
                if let Err(e) = plugin.abort(&live.attempt).await {
                    tracing::warn!(attempt = %live.attempt.unique_name(), error = %e, "abort failed");
                }
                let _ = plugin.finalize(&live.attempt).await;
                self.ctx
                    .metrics
                    .attempt_finished(live.plugin, AttemptOutcome::Aborted);
            }
        }
        for attempt in std::mem::take(&mut self.to_start) {
            self.start(attempt, 0).await?;
        }
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retry_starts)
            .into_iter()
            .partition(|(at, _, _)| *at <= now);
        self.retry_starts = later;
        for (_, failures, attempt) in due {
            self.start(attempt, failures).await?;
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), DriveError> {
        if self.undelivered {
            self.deliver_outbox().await?;
        }
        self.ctx
            .plane
            .finish_run(
                &self.key,
                &self.ctx.config.instance_id,
                alula_plane::now_micros(),
            )
            .await?;
        tracing::info!(execution = %exec_name(&self.key), phase = ?self.exec.phase(), "execution finished");
        Ok(())
    }
}

pub(crate) fn exec_name(key: &ExecutionKey) -> String {
    format!("{}/{}/{}", key.project, key.domain, key.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_state_is_saved_at_once_whatever_its_save_cost() {
        assert!(save_delay(2_000, Duration::from_millis(30)) < Duration::from_micros(100));
    }

    #[test]
    fn a_large_state_waits_for_its_size_or_four_times_its_save_cost() {
        // 4.4 MB in binary: 88 ms by size; a save of 100 ms makes it 400 ms.
        let bytes = 4_400_000;
        assert_eq!(save_delay(bytes, Duration::ZERO), Duration::from_millis(88));
        assert_eq!(
            save_delay(bytes, Duration::from_millis(10)),
            Duration::from_millis(88)
        );
        assert_eq!(
            save_delay(bytes, Duration::from_millis(100)),
            Duration::from_millis(400)
        );
        assert_eq!(save_delay(bytes, Duration::from_secs(5)), MAX_SAVE_DELAY);
        assert_eq!(save_delay(1_000_000_000, Duration::ZERO), MAX_SAVE_DELAY);
    }
}
