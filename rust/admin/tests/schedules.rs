//! Launch-plan schedules (issue 16): ticks of fixed rates and cron expressions launch exactly
//! one execution each, with the kickoff input, under a fake clock; deactivation stops them; a
//! restarted scheduler and two schedulers on one database launch no tick twice; after downtime
//! only the latest missed tick runs; bad schedules are refused at registration.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use alula_admin::schedule::{
    self, spec, ticks, Cadence, Clock, Fired, ManualClock, Scheduler, LEASE,
};
use alula_admin::{AdminApi, AdminConfig, Store};
use alula_idl::flyteidl::admin::{
    execution_metadata::ExecutionMode, schedule::ScheduleExpression, CronSchedule,
    ExecutionCreateRequest, ExecutionSpec, FixedRate, FixedRateUnit, LaunchPlanCreateRequest,
    LaunchPlanMetadata, LaunchPlanSpec, LaunchPlanState, LaunchPlanUpdateRequest,
    NamedEntityIdentifier, ResourceListRequest, Schedule, WorkflowCreateRequest,
    WorkflowExecutionGetDataRequest, WorkflowSpec,
};
use alula_idl::flyteidl::core::{
    literal, primitive, scalar, Identifier, ParameterMap, ResourceType, SimpleType, TaskTemplate,
    WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use chrono::{DateTime, DurationRound, TimeDelta, TimeZone, Utc};
use common::builders::*;
use proptest::prelude::*;
use tonic::{Code, Request};

const KICKOFF: &str = "x";

fn api(store: &Store) -> AdminApi {
    let storage = std::env::temp_dir().join(format!("alula-schedules-{:x}", rand::random::<u64>()));
    let config = AdminConfig::new(storage, "http://127.0.0.1:1".into(), b"test-key".to_vec());
    AdminApi::new(store.clone(), Arc::new(config))
}

fn rate(value: u32, unit: FixedRateUnit) -> Schedule {
    Schedule {
        schedule_expression: Some(ScheduleExpression::Rate(FixedRate {
            value,
            unit: unit as i32,
        })),
        kickoff_time_input_arg: KICKOFF.into(),
    }
}

fn cron(expr: &str) -> Schedule {
    Schedule {
        schedule_expression: Some(ScheduleExpression::CronSchedule(CronSchedule {
            schedule: expr.into(),
            offset: String::new(),
        })),
        kickoff_time_input_arg: KICKOFF.into(),
    }
}

/// Registers task `t`, workflow `wf(x: datetime)` and nothing else (once per database).
async fn register_workflow(api: &AdminApi) -> Identifier {
    api.ensure_default_projects()
        .await
        .expect("the default project");
    let mut task: TaskTemplate = int_task("t", "v1", "img:1");
    task.interface = Some(interface(
        &[("a", SimpleType::Datetime)],
        &[("o0", SimpleType::Integer)],
    ));
    let task_id = task.id.clone().expect("task id");
    api.create_task(Request::new(task_create_request(task)))
        .await
        .expect("task registers");
    let wf = one_node_workflow("wf", "v1", &task_id, SimpleType::Datetime);
    let wf_id = wf.id.clone().expect("workflow id");
    api.create_workflow(Request::new(WorkflowCreateRequest {
        id: wf.id.clone(),
        spec: Some(WorkflowSpec {
            template: Some(wf),
            ..Default::default()
        }),
    }))
    .await
    .expect("workflow registers");
    wf_id
}

async fn create_launch_plan(
    api: &AdminApi,
    workflow: &Identifier,
    name: &str,
    version: &str,
    schedule: Option<Schedule>,
    default_inputs: ParameterMap,
) -> Result<Identifier, tonic::Status> {
    let lp_id = id(ResourceType::LaunchPlan, name, version);
    api.create_launch_plan(Request::new(LaunchPlanCreateRequest {
        id: Some(lp_id.clone()),
        spec: Some(LaunchPlanSpec {
            workflow_id: Some(workflow.clone()),
            entity_metadata: Some(LaunchPlanMetadata {
                schedule,
                ..Default::default()
            }),
            default_inputs: Some(default_inputs),
            ..Default::default()
        }),
    }))
    .await?;
    Ok(lp_id)
}

async fn set_state(api: &AdminApi, lp: &Identifier, state: LaunchPlanState) {
    api.update_launch_plan(Request::new(LaunchPlanUpdateRequest {
        id: Some(lp.clone()),
        state: state as i32,
    }))
    .await
    .expect("launch plan state changes");
}

/// Registers and activates launch plan `name@version` with `schedule`.
async fn scheduled(api: &AdminApi, name: &str, version: &str, schedule: Schedule) -> Identifier {
    let wf = id(ResourceType::Workflow, "wf", "v1");
    let lp = create_launch_plan(
        api,
        &wf,
        name,
        version,
        Some(schedule),
        ParameterMap::default(),
    )
    .await
    .expect("scheduled launch plan registers");
    set_state(api, &lp, LaunchPlanState::Active).await;
    lp
}

/// The pending tick of `name`'s schedule, or `None` when it has none.
async fn pending_tick(store: &Store, name: &str) -> Option<DateTime<Utc>> {
    store
        .get_schedule(PROJECT, DOMAIN, name)
        .await
        .expect("schedule row reads")
        .map(|row| DateTime::from_timestamp_micros(row.next_tick).expect("tick in range"))
}

/// A clock at the present (activations read the system clock, so the fake one starts there).
fn clock_now() -> ManualClock {
    ManualClock::new(Utc::now())
}

fn datetime(t: DateTime<Utc>) -> alula_idl::flyteidl::core::Literal {
    alula_idl::flyteidl::core::Literal {
        value: Some(literal::Value::Scalar(Box::new(
            alula_idl::flyteidl::core::Scalar {
                value: Some(scalar::Value::Primitive(
                    alula_idl::flyteidl::core::Primitive {
                        value: Some(primitive::Value::Datetime(alula_idl::wkt::Timestamp {
                            seconds: t.timestamp(),
                            nanos: i32::try_from(t.timestamp_subsec_nanos()).expect("nanos"),
                        })),
                    },
                )),
            },
        ))),
        ..Default::default()
    }
}

fn scheduler(api: &AdminApi, clock: &ManualClock, instance: &str) -> Scheduler {
    Scheduler::new(api.clone(), Arc::new(clock.clone()), instance)
}

fn launched(fired: &[Fired]) -> Vec<String> {
    fired
        .iter()
        .filter_map(|f| match f {
            Fired::Launched(name) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

/// Every execution of the test project, by name: (mode, scheduled_at, launch plan name).
async fn executions(api: &AdminApi) -> BTreeMap<String, (i32, Option<DateTime<Utc>>, String)> {
    let list = api
        .list_executions(Request::new(ResourceListRequest {
            id: Some(NamedEntityIdentifier {
                project: PROJECT.into(),
                domain: DOMAIN.into(),
                ..Default::default()
            }),
            limit: 1000,
            ..Default::default()
        }))
        .await
        .expect("executions list")
        .into_inner();
    list.executions
        .into_iter()
        .map(|e| {
            let id = e.id.expect("execution id");
            let spec = e.spec.unwrap_or_default();
            let metadata = spec.metadata.unwrap_or_default();
            let at = metadata.scheduled_at.map(|t| {
                Utc.timestamp_opt(t.seconds, u32::try_from(t.nanos).expect("nanos"))
                    .single()
                    .expect("scheduled_at in range")
            });
            let lp = spec.launch_plan.map(|l| l.name).unwrap_or_default();
            (id.name, (metadata.mode, at, lp))
        })
        .collect()
}

/// The datetime the execution got as its kickoff input.
async fn kickoff_input(api: &AdminApi, name: &str) -> DateTime<Utc> {
    let data = api
        .get_execution_data(Request::new(WorkflowExecutionGetDataRequest {
            id: Some(WorkflowExecutionIdentifier {
                project: PROJECT.into(),
                domain: DOMAIN.into(),
                name: name.into(),
                org: String::new(),
            }),
        }))
        .await
        .expect("execution data")
        .into_inner();
    let literal = data
        .full_inputs
        .and_then(|m| m.literals.get(KICKOFF).cloned())
        .expect("kickoff input set");
    match literal.value {
        Some(literal::Value::Scalar(s)) => match s.value {
            Some(scalar::Value::Primitive(p)) => match p.value {
                Some(primitive::Value::Datetime(t)) => Utc
                    .timestamp_opt(t.seconds, u32::try_from(t.nanos).expect("nanos"))
                    .single()
                    .expect("datetime in range"),
                other => panic!("kickoff input is not a datetime: {other:?}"),
            },
            other => panic!("kickoff input is not a primitive: {other:?}"),
        },
        other => panic!("kickoff input is not a scalar: {other:?}"),
    }
}

/// Checks that `name` is the scheduled execution of `lp`'s tick `tick` with the tick as input.
async fn assert_tick_execution(api: &AdminApi, lp: &str, tick: DateTime<Utc>) {
    let name = schedule::tick_execution_name(PROJECT, DOMAIN, lp, tick);
    let all = executions(api).await;
    let (mode, at, launch_plan) = all
        .get(&name)
        .unwrap_or_else(|| panic!("no execution {name} for tick {tick}; have {all:?}"));
    assert_eq!(*mode, ExecutionMode::Scheduled as i32, "mode of {name}");
    assert_eq!(*at, Some(tick), "scheduled_at of {name}");
    assert_eq!(launch_plan, lp);
    assert_eq!(
        kickoff_input(api, &name).await,
        tick,
        "kickoff input of {name}"
    );
}

async fn fixed_rate_launches_one_execution_per_tick(store: Store) {
    let api = api(&store);
    register_workflow(&api).await;
    scheduled(&api, "every5", "v1", rate(5, FixedRateUnit::Minute)).await;
    let clock = clock_now();
    let s = scheduler(&api, &clock, "a");
    let first = pending_tick(&store, "every5").await.expect("schedule row");
    assert!(
        first > clock.now(),
        "the first tick is after the activation"
    );
    assert!(first <= clock.now() + TimeDelta::minutes(5));

    assert!(launched(&s.run_once().await.expect("round")).is_empty());
    clock.set(first - TimeDelta::seconds(1));
    assert!(launched(&s.run_once().await.expect("round")).is_empty());
    clock.set(first);
    assert_eq!(launched(&s.run_once().await.expect("round")).len(), 1);
    // The same tick again: nothing.
    assert!(launched(&s.run_once().await.expect("round")).is_empty());
    clock.advance(TimeDelta::minutes(4));
    assert!(launched(&s.run_once().await.expect("round")).is_empty());
    clock.advance(TimeDelta::minutes(1));
    assert_eq!(launched(&s.run_once().await.expect("round")).len(), 1);

    assert_eq!(executions(&api).await.len(), 2);
    assert_tick_execution(&api, "every5", first).await;
    assert_tick_execution(&api, "every5", first + TimeDelta::minutes(5)).await;
    assert_eq!(
        pending_tick(&store, "every5").await,
        Some(first + TimeDelta::minutes(10))
    );
}

async fn cron_schedule_launches_at_matching_minutes(store: Store) {
    let api = api(&store);
    register_workflow(&api).await;
    scheduled(&api, "quarterly", "v1", cron("*/15 * * * *")).await;
    let clock = clock_now();
    let s = scheduler(&api, &clock, "a");
    let first = pending_tick(&store, "quarterly")
        .await
        .expect("schedule row");
    // Minute by minute over an hour and a half, as a live scheduler polls.
    let mut names = Vec::new();
    for _ in 0..90 {
        clock.advance(TimeDelta::minutes(1));
        names.extend(launched(&s.run_once().await.expect("round")));
    }
    let quarter = TimeDelta::minutes(15);
    let mut expected = Vec::new();
    assert_eq!(first.duration_trunc(quarter).expect("truncates"), first);
    assert!(
        first > clock.now() - TimeDelta::minutes(90)
            && first <= clock.now() - TimeDelta::minutes(75)
    );
    let mut t = first;
    while t <= clock.now() {
        expected.push(t);
        t += quarter;
    }
    assert_eq!(expected.len(), 6);
    assert_eq!(names.len(), expected.len(), "launched {names:?}");
    for tick in expected {
        assert_tick_execution(&api, "quarterly", tick).await;
    }

    // An alias, as Flyte accepts it: the next whole hour.
    let before = Utc::now();
    scheduled(&api, "hourly", "v1", cron("@hourly")).await;
    let next = pending_tick(&store, "hourly").await.expect("schedule row");
    assert_eq!(
        next.duration_trunc(TimeDelta::hours(1)).expect("truncates"),
        next
    );
    assert!(next > before && next <= before + TimeDelta::hours(1));
}

async fn deactivation_stops_the_ticks(store: Store) {
    let api = api(&store);
    register_workflow(&api).await;
    let lp = scheduled(&api, "stopped", "v1", rate(1, FixedRateUnit::Minute)).await;
    let clock = clock_now();
    let s = scheduler(&api, &clock, "a");
    clock.advance(TimeDelta::minutes(1));
    assert_eq!(launched(&s.run_once().await.expect("round")).len(), 1);

    set_state(&api, &lp, LaunchPlanState::Inactive).await;
    assert_eq!(pending_tick(&store, "stopped").await, None);
    clock.advance(TimeDelta::hours(2));
    assert!(s.run_once().await.expect("round").is_empty());

    // Activating again starts it again; activating another version without a schedule stops it.
    set_state(&api, &lp, LaunchPlanState::Active).await;
    assert!(pending_tick(&store, "stopped").await.is_some());
    let wf = id(ResourceType::Workflow, "wf", "v1");
    let v2 = create_launch_plan(&api, &wf, "stopped", "v2", None, ParameterMap::default())
        .await
        .expect("unscheduled version registers");
    set_state(&api, &v2, LaunchPlanState::Active).await;
    assert_eq!(pending_tick(&store, "stopped").await, None);
    clock.set(Utc::now() + TimeDelta::hours(3));
    assert!(s.run_once().await.expect("round").is_empty());
    assert_eq!(executions(&api).await.len(), 1);

    // Re-activating the active version (as every `--activate-launchplans` registration does)
    // keeps the pending tick: no tick is skipped or repeated.
    let lp3 = scheduled(&api, "kept", "v1", rate(1, FixedRateUnit::Hour)).await;
    let before = pending_tick(&store, "kept").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    set_state(&api, &lp3, LaunchPlanState::Active).await;
    assert_eq!(pending_tick(&store, "kept").await, before);
}

/// A scheduler that launched a tick and died before moving the schedule on (its lease still
/// held): the next instance waits out the lease, finds the execution and moves on.
async fn a_restart_launches_no_tick_twice(store: Store) {
    let api1 = api(&store);
    register_workflow(&api1).await;
    let lp = scheduled(&api1, "restarted", "v1", rate(10, FixedRateUnit::Minute)).await;
    let clock = clock_now();
    let first = pending_tick(&store, "restarted")
        .await
        .expect("schedule row");
    clock.set(first);
    assert_eq!(
        launched(
            &scheduler(&api1, &clock, "one")
                .run_once()
                .await
                .expect("round")
        )
        .len(),
        1
    );

    // The second tick: "one" leases it and launches it, then the process dies.
    let second = first + TimeDelta::minutes(10);
    clock.set(second);
    let row = store
        .get_schedule(PROJECT, DOMAIN, "restarted")
        .await
        .expect("reads")
        .expect("row");
    let now = second.timestamp_micros();
    assert!(store
        .lease_schedule(&row, "one", now, (second + LEASE).timestamp_micros())
        .await
        .expect("lease"));
    let name = schedule::tick_execution_name(PROJECT, DOMAIN, "restarted", second);
    api1.create_execution(Request::new(ExecutionCreateRequest {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.clone(),
        spec: Some(ExecutionSpec {
            launch_plan: Some(lp.clone()),
            ..Default::default()
        }),
        inputs: Some(literals(&[(KICKOFF, datetime(second))])),
        org: String::new(),
    }))
    .await
    .expect("the dead instance's launch");
    let restarted_api = api(&store);
    let two = scheduler(&restarted_api, &clock, "two");
    clock.advance(TimeDelta::seconds(30));
    assert!(
        two.run_once().await.expect("round").is_empty(),
        "the dead instance's lease still holds"
    );
    clock.set(second + LEASE + TimeDelta::seconds(1));
    let fired = two.run_once().await.expect("round");
    assert_eq!(fired, vec![Fired::AlreadyLaunched(name.clone())]);
    let before = executions(&restarted_api).await;
    let of_second: Vec<_> = before.keys().filter(|n| **n == name).collect();
    assert_eq!(of_second.len(), 1, "tick {second} once: {fired:?}");
    assert_eq!(before.len(), 2);
    assert_eq!(
        pending_tick(&store, "restarted").await,
        Some(second + TimeDelta::minutes(10))
    );

    // And a plain restart between ticks: the new instance launches the next one, once.
    clock.set(second + TimeDelta::minutes(10));
    let three = scheduler(&api(&store), &clock, "three");
    assert_eq!(launched(&three.run_once().await.expect("round")).len(), 1);
    assert!(launched(&two.run_once().await.expect("round")).is_empty());
    assert_eq!(executions(&restarted_api).await.len(), 3);
}

/// Two instances (two admins with their own scheduler) polling the same database at the same
/// moments launch every tick once.
async fn two_schedulers_launch_each_tick_once(store: Store) {
    let a_api = api(&store);
    register_workflow(&a_api).await;
    scheduled(&a_api, "shared", "v1", rate(1, FixedRateUnit::Minute)).await;
    let b_api = api(&store);
    let clock = clock_now();
    let a = scheduler(&a_api, &clock, "replica-a");
    let b = scheduler(&b_api, &clock, "replica-b");
    let first = pending_tick(&store, "shared").await.expect("schedule row");
    let mut total = 0;
    for i in 0..8 {
        clock.set(first + TimeDelta::minutes(i));
        let (x, y) = tokio::join!(a.run_once(), b.run_once());
        let n = launched(&x.expect("round a")).len() + launched(&y.expect("round b")).len();
        assert_eq!(n, 1, "tick {i} launched {n} times");
        total += n;
    }
    assert_eq!(total, 8);
    let all = executions(&a_api).await;
    assert_eq!(all.len(), 8);
    for i in 0..8 {
        assert_tick_execution(&a_api, "shared", first + TimeDelta::minutes(i)).await;
    }
}

/// Downtime of ten ticks: one execution, for the latest missed tick; then back to the cadence.
async fn after_downtime_only_the_latest_missed_tick_runs(store: Store) {
    let api = api(&store);
    register_workflow(&api).await;
    scheduled(&api, "caught", "v1", rate(1, FixedRateUnit::Minute)).await;
    let clock = clock_now();
    let s = scheduler(&api, &clock, "a");
    let first = pending_tick(&store, "caught").await.expect("schedule row");
    clock.set(first);
    assert_eq!(launched(&s.run_once().await.expect("round")).len(), 1);

    clock.set(first + TimeDelta::minutes(10) + TimeDelta::seconds(30));
    assert_eq!(launched(&s.run_once().await.expect("round")).len(), 1);
    assert!(launched(&s.run_once().await.expect("round")).is_empty());
    assert_eq!(executions(&api).await.len(), 2);
    assert_tick_execution(&api, "caught", first + TimeDelta::minutes(10)).await;
    assert_eq!(
        pending_tick(&store, "caught").await,
        Some(first + TimeDelta::minutes(11))
    );

    // A cron schedule after a day down: the latest matching minute only.
    scheduled(&api, "daily", "v1", cron("0 6 * * *")).await;
    let next = pending_tick(&store, "daily").await.expect("schedule row");
    clock.set(next + TimeDelta::days(3) + TimeDelta::hours(2));
    let names = launched(&s.run_once().await.expect("round"));
    let daily: Vec<_> = executions(&api)
        .await
        .into_values()
        .filter(|(_, _, lp)| lp == "daily")
        .collect();
    assert_eq!(daily.len(), 1, "launched {names:?}");
    assert_tick_execution(&api, "daily", next + TimeDelta::days(3)).await;
}

async fn bad_schedules_are_refused_at_registration(store: Store) {
    let api = api(&store);
    let wf = register_workflow(&api).await;
    let refused = |schedule: Schedule, defaults: ParameterMap, expect: &'static str| {
        let api = api.clone();
        let wf = wf.clone();
        async move {
            let err = create_launch_plan(&api, &wf, "bad", "v1", Some(schedule.clone()), defaults)
                .await
                .expect_err("a bad schedule is refused");
            assert_eq!(err.code(), Code::InvalidArgument, "{schedule:?}: {err:?}");
            assert!(
                err.message().contains(expect) && err.message().contains("bad"),
                "{schedule:?}: {:?} lacks {expect:?}",
                err.message()
            );
        }
    };
    refused(
        cron("* * * *"),
        ParameterMap::default(),
        "has 4 fields, not 5",
    )
    .await;
    refused(
        cron("0 0 * * * *"),
        ParameterMap::default(),
        "has 6 fields, not 5",
    )
    .await;
    refused(
        cron("61 * * * *"),
        ParameterMap::default(),
        "\"61 * * * *\"",
    )
    .await;
    refused(
        cron("0 0 L * *"),
        ParameterMap::default(),
        "'L' is not supported",
    )
    .await;
    refused(
        cron("@fortnightly"),
        ParameterMap::default(),
        "unknown descriptor",
    )
    .await;
    refused(cron(""), ParameterMap::default(), "it is empty").await;
    refused(cron("0 0 30 2 *"), ParameterMap::default(), "never ticks").await;
    refused(
        rate(0, FixedRateUnit::Minute),
        ParameterMap::default(),
        "at least 1",
    )
    .await;
    let mut bad_unit = rate(1, FixedRateUnit::Minute);
    if let Some(ScheduleExpression::Rate(r)) = &mut bad_unit.schedule_expression {
        r.unit = 7;
    }
    refused(bad_unit, ParameterMap::default(), "unit 7 is unknown").await;
    let mut no_kickoff = rate(1, FixedRateUnit::Minute);
    no_kickoff.kickoff_time_input_arg = String::new();
    refused(
        no_kickoff,
        ParameterMap::default(),
        "input(s) x have no default",
    )
    .await;
    let mut wrong_arg = rate(1, FixedRateUnit::Minute);
    wrong_arg.kickoff_time_input_arg = "when".into();
    refused(
        wrong_arg,
        ParameterMap::default(),
        "\"when\" is not an input",
    )
    .await;
    let offset = Schedule {
        schedule_expression: Some(ScheduleExpression::CronSchedule(CronSchedule {
            schedule: "@daily".into(),
            offset: "PT1H".into(),
        })),
        kickoff_time_input_arg: KICKOFF.into(),
    };
    refused(
        offset,
        ParameterMap::default(),
        "offset \"PT1H\" is not supported",
    )
    .await;
    refused(
        Schedule {
            schedule_expression: None,
            kickoff_time_input_arg: KICKOFF.into(),
        },
        ParameterMap::default(),
        "no expression",
    )
    .await;

    // The good ones Flyte users write register.
    for (i, expr) in [
        "0 * * * *",
        "*/5 * * * *",
        "@hourly",
        "@daily",
        "0 9 * * MON-FRI",
        "@annually",
    ]
    .iter()
    .enumerate()
    {
        create_launch_plan(
            &api,
            &wf,
            "good",
            &format!("v{i}"),
            Some(cron(expr)),
            ParameterMap::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{expr:?} is refused: {e:?}"));
    }
}

on_both_backends!(
    fixed_rate_launches_one_execution_per_tick,
    cron_schedule_launches_at_matching_minutes,
    deactivation_stops_the_ticks,
    a_restart_launches_no_tick_twice,
    two_schedulers_launch_each_tick_once,
    after_downtime_only_the_latest_missed_tick_runs,
    bad_schedules_are_refused_at_registration,
);

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test time")
        .with_timezone(&Utc)
}

fn cadence(expr: &str) -> Cadence {
    Cadence::Cron(Box::new(spec::parse_cron(expr).expect("parses")))
}

#[test]
fn flyte_cron_expressions_tick_where_robfig_cron_does() {
    let t = at("2026-03-11T10:03:27Z"); // a Wednesday
    let cases = [
        ("0 * * * *", "2026-03-11T11:00:00Z"),
        ("*/5 * * * *", "2026-03-11T10:05:00Z"),
        ("@hourly", "2026-03-11T11:00:00Z"),
        ("@daily", "2026-03-12T00:00:00Z"),
        ("@midnight", "2026-03-12T00:00:00Z"),
        ("@weekly", "2026-03-15T00:00:00Z"),
        ("@monthly", "2026-04-01T00:00:00Z"),
        ("@yearly", "2027-01-01T00:00:00Z"),
        ("@annually", "2027-01-01T00:00:00Z"),
        ("30 9 * * MON-FRI", "2026-03-12T09:30:00Z"),
        ("0 0 1 JAN *", "2027-01-01T00:00:00Z"),
        // Day of month OR day of week, as Vixie cron and robfig/cron read both restricted.
        ("0 0 13 * FRI", "2026-03-13T00:00:00Z"),
    ];
    for (expr, next) in cases {
        assert_eq!(
            ticks::first_tick(&cadence(expr), t),
            Some(at(next)),
            "{expr}"
        );
    }
    let hours = Cadence::Rate(spec::parse_rate(2, FixedRateUnit::Hour as i32).expect("rate"));
    assert_eq!(
        ticks::first_tick(&hours, t),
        Some(at("2026-03-11T12:03:27Z"))
    );
    assert_eq!(
        ticks::latest_due(
            &hours,
            at("2026-03-11T12:03:27Z"),
            at("2026-03-11T17:00:00Z")
        ),
        Some(at("2026-03-11T16:03:27Z"))
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Five valid fields parse, and every tick is a whole minute matching the minute and hour
    /// fields, strictly after the time asked about, and the latest due tick is a tick.
    #[test]
    fn valid_five_field_expressions_tick_on_matching_minutes(
        minute in prop_oneof![Just(None), (0u32..60).prop_map(Some)],
        step in 1u32..30,
        hour in prop_oneof![Just(None), (0u32..24).prop_map(Some)],
        from in 0i64..4_000_000_000,
        later in 0i64..10_000_000,
    ) {
        let minute_field = minute.map_or(format!("*/{step}"), |m| m.to_string());
        let hour_field = hour.map_or("*".to_string(), |h| h.to_string());
        let expr = format!("{minute_field} {hour_field} * * *");
        let c = cadence(&expr);
        let t = DateTime::from_timestamp(from, 0).expect("in range");
        let tick = ticks::first_tick(&c, t).expect("ticks");
        prop_assert!(tick > t);
        prop_assert_eq!(tick.timestamp() % 60, 0);
        let m = u32::try_from(tick.timestamp().rem_euclid(3600) / 60).expect("minute");
        let h = u32::try_from(tick.timestamp().rem_euclid(86_400) / 3600).expect("hour");
        match minute {
            Some(want) => prop_assert_eq!(m, want),
            None => prop_assert_eq!(m % step, 0),
        }
        if let Some(want) = hour {
            prop_assert_eq!(h, want);
        }
        let now = tick + TimeDelta::seconds(later);
        let due = ticks::latest_due(&c, tick, now).expect("due");
        prop_assert!(due >= tick && due <= now);
        prop_assert_eq!(ticks::first_tick(&c, due - TimeDelta::seconds(1)), Some(due));
        prop_assert!(ticks::next_tick(&c, due).expect("next") > now);
    }

    /// Anything else is refused with a message naming the expression, never a panic.
    #[test]
    fn arbitrary_expressions_never_panic(expr in "[ -~]{0,40}") {
        if let Err(e) = spec::parse_cron(&expr) {
            let quoted = format!("{:?}", expr);
            prop_assert!(e.to_string().contains(&quoted));
        }
    }

    /// A fixed rate's period is its value in minutes, hours or days; the latest due tick is on
    /// the cadence and never in the future.
    #[test]
    fn fixed_rates_keep_their_cadence(
        value in 1u32..1000,
        unit in 0i32..3,
        behind in 0i64..100_000_000,
    ) {
        let period = spec::parse_rate(value, unit).expect("valid rate");
        let minutes = [1, 60, 1440][usize::try_from(unit).expect("unit")];
        prop_assert_eq!(period.num_minutes(), i64::from(value) * minutes);
        let c = Cadence::Rate(period);
        let start = at("2026-01-01T00:00:00Z");
        let due = ticks::latest_due(&c, start, start + TimeDelta::seconds(behind)).expect("due");
        prop_assert_eq!((due - start).num_seconds() % period.num_seconds(), 0);
        prop_assert!(due + period > start + TimeDelta::seconds(behind));
    }
}
