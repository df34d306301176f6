//! Launch-plan schedules, as Flyte's native scheduler runs them: a launch plan version with a
//! `CronSchedule` or `FixedRate` ticks while it is the active version of its name. Activating
//! it (`UpdateLaunchPlan ACTIVE`) writes its row in the `schedules` table; deactivating it, or
//! activating another version, removes or replaces that row. Each tick launches one execution
//! of the launch plan with mode SCHEDULED, `scheduled_at` and, when the schedule names a
//! `kickoff_time_input_arg`, that input set to the tick's time.
//!
//! Exactly one execution per tick, across restarts and replicas: a scheduler takes a tick
//! under a lease in its row (a conditional update, so one instance wins), launches it under a
//! name derived from the launch plan and the tick time (so a second launch of the same tick,
//! by an instance whose lease expired mid-launch or by one that crashed after launching and
//! before moving the row on, is refused as AlreadyExists and changes nothing), then moves the
//! row's pending tick on.
//!
//! Missed ticks: Flyte 1's native scheduler launches every tick missed while it was down, in
//! one burst at start (flyteorg/flyte issue 4538 asks to cap it after it overloaded a
//! database). Alula launches only the latest missed tick and skips the earlier ones (logged
//! with their count): a schedule that missed its daily run still runs once, and a minutely
//! schedule after a day of downtime does not launch 1,440 executions.

pub mod clock;
pub mod spec;
pub mod ticks;

use std::future::Future;
use std::sync::Arc;

use alula_idl::flyteidl::admin::{
    execution_metadata::ExecutionMode, ExecutionCreateRequest, ExecutionMetadata, ExecutionSpec,
    LaunchPlanState, Schedule,
};
use alula_idl::flyteidl::core::{
    literal, literal_type, parameter, primitive, scalar, Identifier, Literal, LiteralMap,
    ParameterMap, Primitive, ResourceType, Scalar, SimpleType,
};
use alula_idl::wkt::Timestamp;
use chrono::{DateTime, TimeDelta, Utc};
use prost::Message;
use sha2::{Digest, Sha256};

pub use clock::{Clock, ManualClock, SystemClock};
pub use spec::{Cadence, ParsedSchedule, ScheduleError};

use crate::error::{AdminError, AdminResult};
use crate::store::{Entity, EntityKey, ScheduleRow};
use crate::AdminApi;

/// How long a scheduler holds a tick before another instance may take it over: a launch takes
/// milliseconds, so this only matters when the holder died.
pub const LEASE: TimeDelta = TimeDelta::seconds(60);
/// How often the loop looks for due ticks: ticks are whole minutes at the finest.
pub const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
/// Who scheduled executions are launched by (their `metadata.principal`).
pub const PRINCIPAL: &str = "flyte-scheduler";
/// Due schedules handled per round; the rest wait for the next round.
const BATCH: i64 = 100;

/// Checks a launch plan's schedule at registration, as flyteadmin's `validateSchedule`: the
/// expression parses and ticks, every input but the kickoff one is bound (a scheduled run has
/// nobody to supply it), and the kickoff input is a DATETIME the launch plan leaves open.
pub fn validate(
    schedule: &Schedule,
    expected_inputs: &ParameterMap,
    fixed_inputs: &LiteralMap,
) -> Result<ParsedSchedule, String> {
    let parsed = spec::parse(schedule).map_err(|e| e.to_string())?;
    if ticks::first_tick(&parsed.cadence, Utc::now()).is_none() {
        return Err("the schedule never ticks (a cron expression matching no date)".to_string());
    }
    let kickoff = parsed.kickoff_time_input_arg.as_deref();
    if let Some(arg) = kickoff {
        if fixed_inputs.literals.contains_key(arg) {
            return Err(format!(
                "kickoff_time_input_arg {arg:?} is a fixed input: the scheduler could not set it"
            ));
        }
        let param = expected_inputs.parameters.get(arg).ok_or_else(|| {
            format!("kickoff_time_input_arg {arg:?} is not an input of the launch plan")
        })?;
        let simple = param
            .var
            .as_ref()
            .and_then(|v| v.r#type.as_ref())
            .and_then(|t| match t.r#type {
                Some(literal_type::Type::Simple(s)) => Some(s),
                _ => None,
            });
        if simple != Some(SimpleType::Datetime as i32) {
            return Err(format!(
                "kickoff_time_input_arg {arg:?} must be a datetime input"
            ));
        }
    }
    let mut unbound: Vec<&str> = expected_inputs
        .parameters
        .iter()
        .filter(|(name, p)| {
            Some(name.as_str()) != kickoff
                && matches!(p.behavior, Some(parameter::Behavior::Required(true)))
        })
        .map(|(name, _)| name.as_str())
        .collect();
    unbound.sort_unstable();
    if !unbound.is_empty() {
        return Err(format!(
            "input(s) {} have no default or fixed value: a scheduled launch plan must bind every \
             input except its kickoff_time_input_arg",
            unbound.join(", ")
        ));
    }
    Ok(parsed)
}

/// The name of the execution of launch plan `project/domain/name`'s tick at `tick`: the same
/// for every scheduler instance, whatever the version, so a tick launched twice is refused as
/// AlreadyExists. 20 characters, a letter first, lowercase: an execution name flytekit and
/// Kubernetes accept.
pub fn tick_execution_name(project: &str, domain: &str, name: &str, tick: DateTime<Utc>) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let digest = Sha256::digest(format!(
        "{project}\n{domain}\n{name}\n{}",
        tick.timestamp_micros()
    ));
    let mut out = String::from("s");
    out.extend(
        digest
            .iter()
            .take(19)
            .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])),
    );
    out
}

/// The row activating `version` of a launch plan with `schedule` at `now` writes.
pub fn activation_row(
    key: &EntityKey,
    schedule: &Schedule,
    now: DateTime<Utc>,
) -> Result<ScheduleRow, ScheduleError> {
    let parsed = spec::parse(schedule)?;
    let first = ticks::first_tick(&parsed.cadence, now).unwrap_or(DateTime::<Utc>::MAX_UTC);
    Ok(ScheduleRow {
        project: key.project.clone(),
        domain: key.domain.clone(),
        name: key.name.clone(),
        version: key.version.clone(),
        schedule: schedule.encode_to_vec(),
        next_tick: first.timestamp_micros(),
        lease_owner: String::new(),
        lease_expires_at: 0,
    })
}

fn timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn datetime_literal(t: DateTime<Utc>) -> Literal {
    Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::Primitive(Primitive {
                value: Some(primitive::Value::Datetime(timestamp(t))),
            })),
        }))),
        ..Default::default()
    }
}

fn from_micros(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// What became of one due schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fired {
    /// The tick's execution was created under this name.
    Launched(String),
    /// The tick's execution existed already (launched before a restart, or by another
    /// instance); the schedule moved on.
    AlreadyLaunched(String),
    /// Another instance holds the tick, the launch plan is no longer active, or the tick was
    /// refused (logged).
    Nothing,
}

/// The scheduler of one server instance. Several may run on one database.
#[derive(Clone)]
pub struct Scheduler {
    api: AdminApi,
    clock: Arc<dyn Clock>,
    instance: String,
}

impl Scheduler {
    /// `instance` names this scheduler in the leases it takes: unique per running instance.
    pub fn new(api: AdminApi, clock: Arc<dyn Clock>, instance: impl Into<String>) -> Self {
        Self {
            api,
            clock,
            instance: instance.into(),
        }
    }

    /// Launches due ticks every [`POLL_INTERVAL`] until `shutdown` resolves. A round that fails
    /// (the database away) is logged and tried again at the next one.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "scheduler round failed; trying again");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
    }

    /// One round: every schedule due at the clock's now launches its latest due tick.
    pub async fn run_once(&self) -> AdminResult<Vec<Fired>> {
        let now = self.clock.now();
        let due = self
            .api
            .store()
            .due_schedules(now.timestamp_micros(), BATCH)
            .await?;
        let mut fired = Vec::with_capacity(due.len());
        for row in due {
            fired.push(self.fire(&row, now).await?);
        }
        Ok(fired)
    }

    async fn fire(&self, row: &ScheduleRow, now: DateTime<Utc>) -> AdminResult<Fired> {
        let store = self.api.store();
        let now_us = now.timestamp_micros();
        let until = (now + LEASE).timestamp_micros();
        if !store
            .lease_schedule(row, &self.instance, now_us, until)
            .await?
        {
            return Ok(Fired::Nothing);
        }
        let key = EntityKey {
            project: row.project.clone(),
            domain: row.domain.clone(),
            name: row.name.clone(),
            version: row.version.clone(),
        };
        let parsed = Schedule::decode(row.schedule.as_slice())
            .map_err(|e| e.to_string())
            .and_then(|s| spec::parse(&s).map_err(|e| e.to_string()));
        let active = store
            .get_entity(Entity::LaunchPlan, &key)
            .await?
            .is_some_and(|lp| lp.state == LaunchPlanState::Active as i64);
        let parsed = match parsed {
            // A row left by a deactivation that stopped half-way (the state changed, the row
            // stayed): the launch plan is not active, so its ticks stop here.
            Ok(_) if !active => {
                store
                    .delete_schedule(&row.project, &row.domain, &row.name, Some(&row.version))
                    .await?;
                return Ok(Fired::Nothing);
            }
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::error!(launch_plan = %lp_name(&key), error = %e,
                    "stored schedule cannot be read; the launch plan's schedule stops");
                store
                    .delete_schedule(&row.project, &row.domain, &row.name, Some(&row.version))
                    .await?;
                return Ok(Fired::Nothing);
            }
        };
        let pending = from_micros(row.next_tick);
        let Some(tick) = ticks::latest_due(&parsed.cadence, pending, now) else {
            store.release_schedule(row, &self.instance, now_us).await?;
            return Ok(Fired::Nothing);
        };
        if tick > pending {
            tracing::warn!(
                launch_plan = %lp_name(&key),
                skipped = ticks::ticks_between(&parsed.cadence, pending, tick),
                from = %pending,
                launching = %tick,
                "missed ticks skipped: only the latest runs"
            );
        }
        let name = tick_execution_name(&row.project, &row.domain, &row.name, tick);
        let fired = match self.launch(&key, &parsed, tick, &name).await {
            Ok(()) => {
                tracing::info!(launch_plan = %lp_name(&key), execution = %name, %tick,
                    "scheduled execution launched");
                Fired::Launched(name)
            }
            Err(AdminError::AlreadyExists(_)) => Fired::AlreadyLaunched(name),
            // The client's kind of error: trying again gives the same answer, so the tick is
            // skipped (a later registration fixes the launch plan).
            Err(
                e @ (AdminError::InvalidArgument(_)
                | AdminError::NotFound(_)
                | AdminError::FailedPrecondition(_)
                | AdminError::Compile { .. }),
            ) => {
                tracing::error!(launch_plan = %lp_name(&key), %tick, error = %e,
                    "scheduled execution refused; tick skipped");
                Fired::Nothing
            }
            Err(e) => {
                // Retried at the next round (the row keeps its tick).
                store.release_schedule(row, &self.instance, now_us).await?;
                return Err(e);
            }
        };
        match ticks::next_tick(&parsed.cadence, tick) {
            Some(next) => {
                store
                    .advance_schedule(row, &self.instance, next.timestamp_micros(), now_us)
                    .await?;
            }
            None => {
                store
                    .delete_schedule(&row.project, &row.domain, &row.name, Some(&row.version))
                    .await?;
            }
        }
        Ok(fired)
    }

    async fn launch(
        &self,
        key: &EntityKey,
        parsed: &ParsedSchedule,
        tick: DateTime<Utc>,
        name: &str,
    ) -> AdminResult<()> {
        let inputs = LiteralMap {
            literals: parsed
                .kickoff_time_input_arg
                .iter()
                .map(|arg| (arg.clone(), datetime_literal(tick)))
                .collect(),
        };
        let request = ExecutionCreateRequest {
            project: key.project.clone(),
            domain: key.domain.clone(),
            name: name.to_string(),
            spec: Some(ExecutionSpec {
                launch_plan: Some(Identifier {
                    resource_type: ResourceType::LaunchPlan as i32,
                    project: key.project.clone(),
                    domain: key.domain.clone(),
                    name: key.name.clone(),
                    version: key.version.clone(),
                    org: String::new(),
                }),
                metadata: Some(ExecutionMetadata {
                    mode: ExecutionMode::Scheduled as i32,
                    principal: PRINCIPAL.to_string(),
                    scheduled_at: Some(timestamp(tick)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            inputs: Some(inputs),
            org: String::new(),
        };
        self.api.create_execution(request).await.map(|_| ())
    }
}

fn lp_name(key: &EntityKey) -> String {
    format!(
        "{}/{}/{}@{}",
        key.project, key.domain, key.name, key.version
    )
}
