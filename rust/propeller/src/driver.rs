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

use alula_admin::logs::{log_key, log_url, AttemptLogId};
use alula_admin::store::{ExecutionKey, RunRecord};
use alula_engine::{
    Action, AttemptId, Event, Execution, ExecutionSettings, ExecutionState, SignalKind,
    TaskAttempt, TaskOutcome,
};
use alula_idl::flyteidl::admin::{
    ExecutionClosure, ExecutionSpec, NodeExecutionEventRequest, TaskExecutionEventRequest,
    TaskResourceAttributes, WorkflowExecutionEventRequest,
};
use alula_idl::flyteidl::core::{
    literal_type, workflow_execution::Phase, CatalogCacheStatus, Literal, LiteralMap, LiteralType,
    SimpleType, WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::core::{task_execution, NodeExecutionIdentifier, TaskLog};
use alula_idl::flyteidl::event::{NodeExecutionEvent, TaskExecutionEvent, WorkflowExecutionEvent};
use alula_idl::flyteidl::service::admin_service_server::AdminService;

use crate::plugin::AttemptSettings;
use prost::Message;
use tokio::sync::mpsc;

use crate::children::Children;
use crate::launch::{apply_task_resources, closure_of, task_resources_of};
use crate::metrics::AttemptOutcome;
use crate::plugin::{Attempt, AttemptStatus, LogData, Plugin, PluginError, Waker};
use crate::{Context, DriveError, Notice};

mod log_upload;
mod recovery;
mod serialize;

/// How often children, signals and the execution's own phase are looked at when no notice
/// arrives (another instance's admin, or a lost notice).
const POLL: Duration = Duration::from_millis(500);
/// Bytes of saved state per microsecond of delay between saves: a large state (a map over
/// 100,000 elements) is saved at most every few hundred milliseconds, a small one at once.
const SAVE_BYTES_PER_MICRO: usize = 50;
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

/// The id admin's log route knows an attempt by.
pub(crate) fn log_id(attempt: &Attempt) -> AttemptLogId {
    AttemptLogId {
        project: attempt.execution.project.clone(),
        domain: attempt.execution.domain.clone(),
        name: attempt.execution.name.clone(),
        node_id: attempt.node_id.clone(),
        retry_attempt: attempt.retry_attempt,
        array_index: attempt.array_index,
    }
}

fn encode_event(event: &Event) -> (i64, Vec<u8>) {
    match event {
        Event::Workflow(e) => (0, e.encode_to_vec()),
        Event::Node(e) => (1, e.encode_to_vec()),
        Event::Task(e) => (2, e.encode_to_vec()),
    }
}

impl Driver {
    pub(crate) async fn load(
        ctx: Arc<Context>,
        record: RunRecord,
        notices: mpsc::UnboundedReceiver<Notice>,
    ) -> Result<Self, DriveError> {
        let key = record.key.clone();
        let row = ctx
            .store
            .get_execution(&key)
            .await?
            .ok_or_else(|| DriveError::Missing(format!("execution {}", exec_name(&key))))?;
        let spec = ExecutionSpec::decode(row.spec.as_slice())
            .map_err(|e| DriveError::Corrupt(format!("execution spec: {e}")))?;
        let inputs = alula_admin::literals::execution_inputs(&ctx.config.storage, &row).await?;
        let task_resources = task_resources_of(ctx.layout.storage(), &row).await?;
        let closure = closure_of(&ctx.store, task_resources.as_ref(), &row).await?;
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
            let state: ExecutionState = serde_json::from_slice(&record.state)
                .map_err(|e| DriveError::Corrupt(format!("saved engine state: {e}")))?;
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
            overwrite_cache: spec.overwrite_cache,
            attempt_settings: Arc::new(crate::settings::attempt_settings(&spec)),
            aborting: false,
            // A run that saved before may have left events behind; a new one has none.
            undelivered: record.next_event > 0,
            pending_abort: row.phase == Phase::Aborting.as_str_name(),
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
                    .store
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
        Duration::from_micros((self.state_bytes / SAVE_BYTES_PER_MICRO) as u64).min(MAX_SAVE_DELAY)
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
        let state = serde_json::to_vec(self.exec.state())
            .map_err(|e| DriveError::Corrupt(format!("engine state: {e}")))?;
        self.state_bytes = state.len();
        let events = std::mem::take(&mut self.pending_events);
        let saved = self
            .ctx
            .store
            .save_run(
                &self.key,
                &self.ctx.config.instance_id,
                state,
                self.next_event,
                &events,
                self.ctx.lease_until(),
                alula_admin::store::now_micros(),
            )
            .await?;
        if !saved {
            return Err(DriveError::LeaseLost);
        }
        let first = self.next_event;
        self.next_event += events.len() as i64;
        self.dirty = false;
        self.last_save = Instant::now();
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
                        .store
                        .ack_outbox(&self.key, first + i as i64 - 1)
                        .await?;
                }
                self.undelivered = true;
                return Err(e);
            }
        }
        self.ctx
            .store
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

    fn plugin_for(&self, attempt: &TaskAttempt) -> Result<usize, crate::registry::Refusal> {
        self.ctx.registry.select(&attempt.task)
    }

    /// The plugin's view of an engine attempt, with its inputs written.
    async fn prepare(
        &mut self,
        ta: &TaskAttempt,
        plugin: &dyn Plugin,
    ) -> Result<Attempt, DriveError> {
        let layout = &self.ctx.layout;
        let node = ta.node_execution_id.as_str();
        let mut env = std::collections::BTreeMap::new();
        let task_id = ta.task.id.clone().unwrap_or_default();
        for (k, v) in [
            ("FLYTE_INTERNAL_EXECUTION_ID", self.id.name.as_str()),
            ("FLYTE_INTERNAL_EXECUTION_PROJECT", self.id.project.as_str()),
            ("FLYTE_INTERNAL_EXECUTION_DOMAIN", self.id.domain.as_str()),
            ("FLYTE_INTERNAL_TASK_PROJECT", task_id.project.as_str()),
            ("FLYTE_INTERNAL_TASK_DOMAIN", task_id.domain.as_str()),
            ("FLYTE_INTERNAL_TASK_NAME", task_id.name.as_str()),
            ("FLYTE_INTERNAL_TASK_VERSION", task_id.version.as_str()),
            ("FLYTE_INTERNAL_NODE_ID", node),
        ] {
            env.insert(k.to_string(), v.to_string());
        }
        env.insert("FLYTE_ATTEMPT_NUMBER".into(), ta.retry_attempt.to_string());
        let whole = ta.array_index.is_some() && plugin.whole_array_inputs();
        let (inputs_path, inputs) = if whole {
            // Flyte's way for map tasks: every element reads the array node's inputs and picks
            // its own by index.
            let key = layout.inputs(&self.id, node, None);
            if !self.whole_inputs_written.contains(node) {
                let whole_inputs = self
                    .exec
                    .node_execution_inputs(node)
                    .cloned()
                    .unwrap_or_default();
                write_object(layout, &key, whole_inputs.encode_to_vec()).await?;
                self.whole_inputs_written.insert(node.to_string());
            }
            let index = ta.array_index.unwrap_or_default();
            env.insert(
                "BATCH_JOB_ARRAY_INDEX_VAR_NAME".into(),
                "FLYTE_K8S_ARRAY_INDEX".into(),
            );
            env.insert("FLYTE_K8S_ARRAY_INDEX".into(), index.to_string());
            (key, ta.inputs.clone())
        } else {
            let key = layout.inputs(&self.id, node, ta.array_index);
            write_object(layout, &key, ta.inputs.encode_to_vec()).await?;
            (key, ta.inputs.clone())
        };
        let output_prefix = layout.output_prefix(&self.id, node, ta.array_index, ta.retry_attempt);
        let prev = ta.retry_attempt.checked_sub(1).map(|r| {
            let prefix = layout.output_prefix(&self.id, node, ta.array_index, r);
            layout.location(&format!("{prefix}/_flytecheckpoints"))
        });
        Ok(Attempt {
            execution: self.id.clone(),
            node_id: node.to_string(),
            retry_attempt: ta.retry_attempt,
            array_index: ta.array_index,
            task: ta.task.clone(),
            overrides: ta.overrides.clone(),
            inputs: Arc::new(inputs),
            inputs_path: layout.location(&inputs_path),
            checkpoint_prefix: layout.location(&format!("{output_prefix}/_flytecheckpoints")),
            output_prefix: layout.location(&output_prefix),
            raw_output_prefix: layout.raw_location(
                self.attempt_settings.raw_output_prefix.as_deref(),
                &self.id,
                node,
                ta.array_index,
                ta.retry_attempt,
            ),
            prev_checkpoint_prefix: prev,
            env,
            settings: self.attempt_settings.clone(),
        })
    }

    fn waker(&self, id: AttemptId) -> Waker {
        Waker::new(self.wake_tx.clone(), id)
    }

    /// Starts an attempt whose start already failed transiently `failures` times.
    async fn start(&mut self, ta: TaskAttempt, failures: u32) -> Result<(), DriveError> {
        if failures == 0 && !self.may_start(&ta).await? {
            return Ok(());
        }
        let plugin_ix = match self.plugin_for(&ta) {
            Ok(ix) => ix,
            Err(refusal) => {
                return self.finished(
                    ta.id,
                    TaskOutcome::FailedPermanently(crate::outcome::error(
                        "NoPlugin",
                        alula_idl::flyteidl::core::execution_error::ErrorKind::User,
                        refusal.to_string(),
                    )),
                )
            }
        };
        let plugin = self.ctx.registry.plugins()[plugin_ix].clone();
        let attempt = self.prepare(&ta, plugin.as_ref()).await?;
        let cache_key = self.cache_key(&ta);
        let result = plugin.start(&attempt, self.waker(ta.id)).await;
        let id = ta.id;
        self.live.insert(
            id,
            Live {
                attempt,
                plugin: plugin_ix,
                cache_key,
            },
        );
        if result.is_ok() {
            self.report_log_links(plugin.as_ref(), id);
        }
        match &result {
            Ok(()) => self.ctx.metrics.attempt_started(plugin_ix),
            Err(PluginError::AlreadyStarted(_)) => {}
            Err(_) => self.ctx.metrics.attempt_start_failed(plugin_ix),
        }
        match result {
            Ok(()) => Ok(()),
            // Started before a crash: its marker is there, so look at it instead.
            Err(PluginError::AlreadyStarted(_)) => self.attempt_changed(id).await,
            Err(PluginError::Invalid(message)) => {
                self.live.remove(&id);
                self.finished(
                    id,
                    TaskOutcome::FailedPermanently(crate::outcome::error(
                        "InvalidTask",
                        alula_idl::flyteidl::core::execution_error::ErrorKind::User,
                        message,
                    )),
                )
            }
            Err(PluginError::Transient(message)) if failures + 1 < MAX_START_TRIES => {
                self.live.remove(&id);
                let delay = FIRST_START_BACKOFF * 2u32.pow(failures);
                tracing::warn!(
                    execution = %exec_name(&self.key),
                    node = %ta.node_execution_id,
                    error = %message,
                    retry_in = ?delay,
                    "starting the attempt failed; trying again"
                );
                self.retry_starts
                    .push((Instant::now() + delay, failures + 1, ta));
                Ok(())
            }
            Err(PluginError::Transient(message)) => {
                self.live.remove(&id);
                self.finished(
                    id,
                    TaskOutcome::Failed(crate::outcome::error(
                        "PluginError",
                        alula_idl::flyteidl::core::execution_error::ErrorKind::System,
                        message,
                    )),
                )
            }
        }
    }

    /// After a resume: find what became of every attempt the saved state says is running.
    async fn reattach(&mut self) -> Result<(), DriveError> {
        let ids: Vec<AttemptId> = self.exec.running_attempts().map(|(a, _, _)| a).collect();
        for id in ids {
            let Some(ta) = self.exec.running_attempt(id) else {
                continue;
            };
            let Ok(plugin_ix) = self.plugin_for(&ta) else {
                // `start` fails it with the refusal.
                self.to_start.push(ta);
                continue;
            };
            let plugin = self.ctx.registry.plugins()[plugin_ix].clone();
            let attempt = self.prepare(&ta, plugin.as_ref()).await?;
            let status = plugin.check(&attempt, self.waker(id)).await;
            match status {
                Ok(AttemptStatus::NotStarted) => self.to_start.push(ta),
                Ok(_) | Err(_) => {
                    self.resume_reservation(&ta).await?;
                    if attempt.array_index.is_some() {
                        // Links are not saved: hand them in again.
                        let links = self.log_links(plugin.as_ref(), &attempt);
                        self.exec.set_attempt_logs(id, links);
                    }
                    let cache_key = self.cache_key(&ta);
                    self.live.insert(
                        id,
                        Live {
                            attempt,
                            plugin: plugin_ix,
                            cache_key,
                        },
                    );
                    self.attempt_changed(id).await?;
                }
            }
        }
        if !self.to_start.is_empty() {
            // Starting them needs no new save: the saved state already records them.
            self.act().await?;
        }
        Ok(())
    }

    /// An attempt may have changed: ask its plugin, and tell the engine if it ended.
    async fn attempt_changed(&mut self, id: AttemptId) -> Result<(), DriveError> {
        let Some(live) = self.live.get(&id) else {
            return Ok(()); // ended or aborted already
        };
        let plugin = self.ctx.registry.plugins()[live.plugin].clone();
        let status = match plugin.check(&live.attempt, self.waker(id)).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(attempt = %live.attempt.unique_name(), error = %e, "check failed; will retry");
                return Ok(());
            }
        };
        let outcome = match status {
            AttemptStatus::Running => return Ok(()),
            AttemptStatus::NotStarted => AttemptStatus::Lost {
                message: "the attempt disappeared before it started".into(),
            },
            other => other,
        };
        let Some(live) = self.live.remove(&id) else {
            return Ok(());
        };
        let lost = matches!(outcome, AttemptStatus::Lost { .. });
        let a = &live.attempt;
        let output_prefix =
            self.ctx
                .layout
                .output_prefix(&self.id, &a.node_id, a.array_index, a.retry_attempt);
        let mut result = crate::outcome::read_outcome(
            self.ctx.layout.storage(),
            &output_prefix,
            &a.task,
            &outcome,
        )
        .await;
        if let TaskOutcome::Dynamic(spec) = &mut result {
            // Generated tasks get the execution's resources as its registered ones did.
            apply_task_resources(&mut spec.tasks, self.task_resources.as_ref());
        }
        if let (
            TaskOutcome::Succeeded {
                outputs,
                cache_status,
            },
            Some(key),
        ) = (&mut result, &live.cache_key)
        {
            self.ctx
                .store
                .put_cached_outputs(
                    key,
                    outputs.encode_to_vec(),
                    &live.attempt.unique_name(),
                    alula_admin::store::now_micros(),
                )
                .await?;
            *cache_status = CatalogCacheStatus::CachePopulated;
        }
        self.store_logs(plugin.as_ref(), &live.attempt).await;
        let links = self.log_links(plugin.as_ref(), &live.attempt);
        if live.attempt.array_index.is_some() {
            // Before the engine hears of the end: the array node's terminal event may follow.
            self.exec.set_attempt_logs(id, links);
        } else {
            self.end_links = Some((a.node_id.clone(), a.retry_attempt, links));
        }
        // After the outputs are in the cache: a waiter that looks next finds them.
        self.release_reservation(id).await;
        if let Err(e) = plugin.finalize(&live.attempt).await {
            tracing::warn!(attempt = %live.attempt.unique_name(), error = %e, "finalize failed");
        }
        let counted = match &result {
            _ if lost => AttemptOutcome::Lost,
            TaskOutcome::Succeeded { .. } | TaskOutcome::Dynamic(_) => AttemptOutcome::Succeeded,
            TaskOutcome::Failed(_) | TaskOutcome::FailedPermanently(_) => AttemptOutcome::Failed,
        };
        self.ctx.metrics.attempt_finished(live.plugin, counted);
        self.finished(id, result)
    }

    fn finished(&mut self, id: AttemptId, outcome: TaskOutcome) -> Result<(), DriveError> {
        self.dirty = true;
        match self.exec.task_finished(id, outcome, SystemTime::now()) {
            // Aborted or timed out meanwhile: the engine has moved on.
            Err(alula_engine::EngineError::UnknownAttempt(_)) => {}
            other => other?,
        }
        // Taken now, not at the next advance: an attempt that fails while being started (no
        // plugin, a command that does not exist) may end the execution before another advance,
        // and its terminal events must be saved with the state that records the end.
        self.collect_events();
        Ok(())
    }

    /// Moves the events the engine recorded into the ones the next save writes to the outbox.
    fn collect_events(&mut self) {
        let mut events = self.exec.take_events();
        if let Some((node, retry, links)) = self.end_links.take() {
            for event in &mut events {
                if let Event::Task(t) = event {
                    let of_attempt = t.retry_attempt == retry
                        && t.task_type != "k8s-array"
                        && t.parent_node_execution_id
                            .as_ref()
                            .is_some_and(|p| p.node_id == node);
                    if of_attempt {
                        t.logs = links.clone();
                    }
                }
            }
        }
        if !events.is_empty() {
            self.dirty = true;
            self.pending_events.extend(events.iter().map(encode_event));
        }
    }

    /// Links of an attempt's logs: admin's log route for each log its plugin keeps, then the
    /// plugin's own links.
    fn log_links(&self, plugin: &dyn Plugin, attempt: &Attempt) -> Vec<TaskLog> {
        let mut links = Vec::new();
        if let Some(base) = &self.ctx.config.log_base_url {
            let id = log_id(attempt);
            links.extend(plugin.log_streams().iter().map(|stream| TaskLog {
                uri: log_url(base, &id, stream),
                name: (*stream).to_string(),
                ..Default::default()
            }));
        }
        links.extend(plugin.log_links(attempt));
        links
    }

    /// Tells admin where a just-started attempt's logs are: a RUNNING event of the next phase
    /// version (flytepropeller reports new logs of a phase so), after the engine's own RUNNING
    /// event in the outbox. Array elements are reported by their array node's event instead:
    /// the engine is handed their links.
    fn report_log_links(&mut self, plugin: &dyn Plugin, id: AttemptId) {
        let Some(live) = self.live.get(&id) else {
            return;
        };
        let a = &live.attempt;
        let logs = self.log_links(plugin, a);
        if a.array_index.is_some() {
            self.exec.set_attempt_logs(id, logs);
            return;
        }
        if logs.is_empty() {
            return;
        }
        let since_epoch = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let now = Some(alula_idl::wkt::Timestamp {
            seconds: since_epoch.as_secs() as i64,
            nanos: since_epoch.subsec_nanos() as i32,
        });
        let event = TaskExecutionEvent {
            task_id: a.task.id.clone(),
            parent_node_execution_id: Some(NodeExecutionIdentifier {
                node_id: a.node_id.clone(),
                execution_id: Some(self.id.clone()),
            }),
            retry_attempt: a.retry_attempt,
            phase: task_execution::Phase::Running as i32,
            phase_version: 1,
            producer_id: self.ctx.config.instance_id.clone(),
            logs,
            occurred_at: now,
            task_type: a.task.r#type.clone(),
            event_version: 1,
            reported_at: now,
            ..Default::default()
        };
        self.dirty = true;
        self.pending_events
            .push(encode_event(&Event::Task(Box::new(event))));
    }

    /// Stores the ended attempt's logs under its output prefix (`logs/<stream>.txt`), where
    /// admin's log route reads them. A log that cannot be stored is not worth failing the task.
    async fn store_logs(&self, plugin: &dyn Plugin, attempt: &Attempt) {
        let id = log_id(attempt);
        for (stream, data) in plugin.logs(attempt).await {
            let key = log_key(&id, stream);
            let storage = self.ctx.layout.storage();
            let stored = match data {
                // Written in place (local storage): nothing to copy.
                LogData::File(path) if path == self.ctx.layout.location(&key) => continue,
                LogData::File(path) => log_upload::store_log_file(storage, &key, &path).await,
                LogData::Bytes(bytes) => storage
                    .put(&key, bytes.into())
                    .await
                    .map_err(|e| e.to_string()),
            };
            if let Err(e) = stored {
                tracing::warn!(key, error = %e, "cannot store a task log");
            }
        }
    }

    fn cache_key(&self, ta: &TaskAttempt) -> Option<String> {
        let key = alula_core::cache::cache_key(&ta.task, &ta.inputs)?;
        Some(format!(
            "{}/{}/{}",
            self.id.project,
            self.id.domain,
            key.digest()
        ))
    }

    async fn cache_lookup(&self, ta: &TaskAttempt) -> Result<Option<LiteralMap>, DriveError> {
        if self.overwrite_cache {
            return Ok(None);
        }
        let Some(key) = self.cache_key(ta) else {
            return Ok(None);
        };
        let Some(bytes) = self.ctx.store.get_cached_outputs(&key).await? else {
            return Ok(None);
        };
        Ok(LiteralMap::decode(bytes.as_slice()).ok())
    }

    async fn create_signal(&self, signal_id: &str, kind: &SignalKind) -> Result<(), DriveError> {
        use alula_idl::flyteidl::admin::SignalGetOrCreateRequest;
        use alula_idl::flyteidl::core::SignalIdentifier;
        use alula_idl::flyteidl::service::signal_service_server::SignalService;
        let r#type = match kind {
            SignalKind::Approve => LiteralType {
                r#type: Some(literal_type::Type::Simple(SimpleType::Boolean as i32)),
                ..Default::default()
            },
            SignalKind::Value { r#type, .. } => r#type.as_deref().cloned().unwrap_or_default(),
        };
        let req = SignalGetOrCreateRequest {
            id: Some(SignalIdentifier {
                signal_id: signal_id.to_string(),
                execution_id: Some(self.id.clone()),
            }),
            r#type: Some(r#type),
        };
        SignalService::get_or_create_signal(&self.ctx.api, tonic::Request::new(req))
            .await
            .map_err(|s| DriveError::Admin(s.message().to_string()))?;
        Ok(())
    }

    /// Delivers set signals to the gates waiting for them. Returns whether one was delivered.
    async fn check_signals(&mut self) -> Result<bool, DriveError> {
        let mut delivered = false;
        let waiting: Vec<(String, String)> = self
            .signals
            .iter()
            .map(|(node, (signal, _))| (node.clone(), signal.clone()))
            .collect();
        for (node, signal_id) in waiting {
            let Some(row) = self.ctx.store.get_signal(&self.key, &signal_id).await? else {
                continue;
            };
            if row.value.is_empty() {
                continue;
            }
            let value = Literal::decode(row.value.as_slice())
                .map_err(|e| DriveError::Corrupt(format!("signal {signal_id}: {e}")))?;
            self.signals.remove(&node);
            self.dirty = true;
            if let Err(e) = self.exec.signal(&node, value, SystemTime::now()) {
                tracing::warn!(node = %node, error = %e, "signal refused");
            }
            delivered = true;
        }
        Ok(delivered)
    }

    /// Reacts to TerminateExecution: aborts everything (once).
    async fn check_phase(&mut self) -> Result<(), DriveError> {
        if self.aborting || self.exec.phase().is_terminal() {
            return Ok(());
        }
        let Some(row) = self.ctx.store.get_execution(&self.key).await? else {
            return Ok(());
        };
        if row.phase != Phase::Aborting.as_str_name() && row.phase != Phase::Aborted.as_str_name() {
            return Ok(());
        }
        let cause = ExecutionClosure::decode(row.closure.as_slice())
            .ok()
            .and_then(|c| match c.output_result {
                Some(
                    alula_idl::flyteidl::admin::execution_closure::OutputResult::AbortMetadata(m),
                ) => Some(m.cause),
                _ => None,
            })
            .unwrap_or_else(|| "terminated".into());
        self.aborting = true;
        self.dirty = true;
        let actions = self.exec.abort(&cause, SystemTime::now());
        for action in actions {
            match action {
                Action::AbortTask { attempt, .. } => self.to_abort.push(attempt),
                Action::AbortChild { node_execution_id } => {
                    self.children.abort(&node_execution_id).await
                }
                _ => {}
            }
        }
        // Attempts that were about to start never will.
        self.to_start.clear();
        self.retry_starts.clear();
        self.drop_reservations().await;
        for event in self.exec.take_events() {
            self.pending_events.push(encode_event(&event));
        }
        Ok(())
    }

    /// The periodic look outside: children, signals and TerminateExecution from another admin.
    async fn poll_outside(&mut self) -> Result<(), DriveError> {
        for (node, result) in self.children.poll().await? {
            self.dirty = true;
            if let Err(e) = self.exec.child_finished(&node, result, SystemTime::now()) {
                tracing::warn!(node = %node, error = %e, "child result refused");
            }
        }
        if !self.signals.is_empty() {
            self.check_signals().await?;
        }
        self.check_phase().await
    }

    /// Delivers the outbox to admin's event ingestion, in order.
    async fn deliver_outbox(&mut self) -> Result<(), DriveError> {
        loop {
            let batch = self.ctx.store.outbox(&self.key, 256).await?;
            let Some(last) = batch.last().map(|e| e.seq) else {
                self.undelivered = false;
                return Ok(());
            };
            for event in &batch {
                deliver(&self.ctx, event.kind, &event.event).await?;
            }
            self.ctx.store.ack_outbox(&self.key, last).await?;
            if batch.len() < 256 {
                self.undelivered = false;
                return Ok(());
            }
        }
    }

    async fn finish(&mut self) -> Result<(), DriveError> {
        if self.undelivered {
            self.deliver_outbox().await?;
        }
        self.ctx
            .store
            .finish_run(
                &self.key,
                &self.ctx.config.instance_id,
                alula_admin::store::now_micros(),
            )
            .await?;
        tracing::info!(execution = %exec_name(&self.key), phase = ?self.exec.phase(), "execution finished");
        Ok(())
    }
}

/// Writes an object the driver hands to a task (its inputs); the error names the object.
async fn write_object(layout: &crate::Layout, key: &str, bytes: Vec<u8>) -> Result<(), DriveError> {
    layout
        .storage()
        .put(key, bytes.into())
        .await
        .map_err(|e| DriveError::Storage(e.to_string()))
}

pub(crate) fn exec_name(key: &ExecutionKey) -> String {
    format!("{}/{}/{}", key.project, key.domain, key.name)
}

/// One event into admin's ingestion. Refusals that mean "already recorded" or "the execution
/// is over" are final answers, not failures: the event is dropped, as flytepropeller does.
pub(crate) async fn deliver(ctx: &Context, kind: i64, bytes: &[u8]) -> Result<(), DriveError> {
    let corrupt = |e: prost::DecodeError| DriveError::Corrupt(format!("outbox event: {e}"));
    let result = match kind {
        0 => {
            let event = WorkflowExecutionEvent::decode(bytes).map_err(corrupt)?;
            AdminService::create_workflow_event(
                &ctx.api,
                tonic::Request::new(WorkflowExecutionEventRequest {
                    request_id: String::new(),
                    event: Some(event),
                }),
            )
            .await
            .map(|_| ())
        }
        1 => {
            let event = NodeExecutionEvent::decode(bytes).map_err(corrupt)?;
            tracing::debug!(
                node = event
                    .id
                    .as_ref()
                    .map(|i| i.node_id.as_str())
                    .unwrap_or_default(),
                phase = event.phase,
                "delivering node event"
            );
            AdminService::create_node_event(
                &ctx.api,
                tonic::Request::new(NodeExecutionEventRequest {
                    request_id: String::new(),
                    event: Some(event),
                }),
            )
            .await
            .map(|_| ())
        }
        _ => {
            let event = TaskExecutionEvent::decode(bytes).map_err(corrupt)?;
            AdminService::create_task_event(
                &ctx.api,
                tonic::Request::new(TaskExecutionEventRequest {
                    request_id: String::new(),
                    event: Some(event),
                }),
            )
            .await
            .map(|_| ())
        }
    };
    match result {
        Ok(()) => Ok(()),
        Err(status)
            if matches!(
                status.code(),
                tonic::Code::AlreadyExists
                    | tonic::Code::FailedPrecondition
                    | tonic::Code::InvalidArgument
            ) =>
        {
            tracing::debug!(code = ?status.code(), message = status.message(), "event not recorded");
            Ok(())
        }
        Err(status) => Err(DriveError::Admin(status.message().to_string())),
    }
}
