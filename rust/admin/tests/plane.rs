//! The data plane's interface as admin implements it, on SQLite and on PostgreSQL, two ways:
//! in process ([`ControlPlane`] for `AdminApi`) and across the network (admin's
//! `alula.plane.v1.ControlPlaneService` through `GrpcPlane`, as a propeller in another process
//! reaches it). Everything propeller asks of admin goes through these calls, so one suite checks
//! them through the trait object propeller holds, not through the store underneath.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use std::sync::Arc;

use alula_admin::{AdminApi, AdminConfig, Store};
use alula_idl::flyteidl::admin::{
    self as admin, SignalGetOrCreateRequest, SignalSetRequest, TaskCreateRequest, TaskSpec,
};
use alula_idl::flyteidl::core::{
    node, workflow_execution::Phase, ResourceType, SignalIdentifier, SimpleType,
    WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::event::WorkflowExecutionEvent;
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_idl::flyteidl::service::signal_service_server::SignalService;
use alula_plane::client::GrpcPlane;
use alula_plane::{ControlPlane, ExecutionEvent, ExecutionKey, ExecutionNotice, Save};
use common::builders::*;
use common::server::TestServer;
use tonic::Code;

struct Plane {
    /// Admin itself, for what a client (not the data plane) does: register, launch, signal.
    api: AdminApi,
    /// The data plane's view of it.
    plane: Arc<dyn ControlPlane>,
    /// Whether `plane` pushes notices (in process only; across the network propeller polls).
    pushes: bool,
    _storage: tempfile::TempDir,
    _server: Option<TestServer>,
}

fn admin(store: Store) -> (AdminApi, tempfile::TempDir) {
    let storage = tempfile::tempdir().unwrap();
    let config = AdminConfig::new(
        storage.path().to_path_buf(),
        "http://127.0.0.1:1".into(),
        b"test-key".to_vec(),
    );
    (AdminApi::new(store, Arc::new(config)), storage)
}

async fn in_process(store: Store) -> Plane {
    let (api, storage) = admin(store);
    api.ensure_default_projects().await.unwrap();
    Plane {
        plane: Arc::new(api.clone()),
        api,
        pushes: true,
        _storage: storage,
        _server: None,
    }
}

/// Admin served on a port (authentication off, on loopback) and the gRPC client propeller uses.
async fn over_grpc(store: Store) -> Plane {
    let server = TestServer::start(store.clone()).await;
    let (api, storage) = admin(store);
    api.ensure_default_projects().await.unwrap();
    let channel = tonic::transport::Endpoint::from_shared(server.grpc_url.clone())
        .unwrap()
        .connect_lazy();
    Plane {
        plane: Arc::new(GrpcPlane::new(channel, None)),
        api,
        pushes: false,
        _storage: storage,
        _server: Some(server),
    }
}

fn key(name: &str) -> ExecutionKey {
    ExecutionKey {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
    }
}

/// Registers task `t@v1` and creates execution `name` of it with `a = 7`.
async fn task_execution(api: &AdminApi, name: &str) {
    let task = int_task("t", "v1", "img:1");
    let created = AdminService::create_task(
        api,
        tonic::Request::new(TaskCreateRequest {
            id: task.id.clone(),
            spec: Some(TaskSpec {
                template: Some(task.clone()),
                description: None,
            }),
        }),
    )
    .await;
    if let Err(e) = created {
        assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    }
    AdminService::create_execution(api, tonic::Request::new(create(name, &task.id)))
        .await
        .unwrap();
}

fn create(
    name: &str,
    launch: &Option<alula_idl::flyteidl::core::Identifier>,
) -> admin::ExecutionCreateRequest {
    admin::ExecutionCreateRequest {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        spec: Some(admin::ExecutionSpec {
            launch_plan: launch.clone(),
            ..Default::default()
        }),
        inputs: Some(literals(&[("a", int_literal(7))])),
        org: String::new(),
    }
}

async fn a_task_execution_launches_as_one_node_workflow(p: Plane) {
    assert_eq!(p.plane.notices().is_some(), p.pushes);
    let mut notices = ControlPlane::notices(&p.api).expect("admin pushes notices in process");
    task_execution(&p.api, "e1").await;
    assert_eq!(
        notices.recv().await.unwrap(),
        ExecutionNotice::Created(key("e1"))
    );

    let launch = p.plane.launch(&key("e1")).await.unwrap().unwrap();
    assert_eq!(launch.phase, Phase::Queued);
    assert_eq!(launch.inputs, literals(&[("a", int_literal(7))]));
    assert_eq!(
        launch.spec.launch_plan.as_ref().map(|i| i.name.as_str()),
        Some("t")
    );
    let primary = launch.closure.primary.unwrap().template.unwrap();
    // The compiled wrapper: its start and end nodes around the one task node `n0`.
    let tasks: Vec<&str> = primary
        .nodes
        .iter()
        .filter(|n| matches!(n.target, Some(node::Target::TaskNode(_))))
        .map(|n| n.id.as_str())
        .collect();
    assert_eq!(tasks, ["n0"]);
    assert_eq!(launch.closure.tasks.len(), 1);
    assert!(launch.task_resources.is_none());

    assert!(p.plane.launch(&key("nosuch")).await.unwrap().is_none());
    assert!(p.plane.status(&key("nosuch")).await.unwrap().is_none());
}

async fn the_work_queue_leases_saves_and_delivers(p: Plane) {
    task_execution(&p.api, "e1").await;
    let now = alula_plane::now_micros();
    let lease = now + 30_000_000;
    let claimed = p.plane.claim_runs("a", now, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].key, key("e1"));
    assert!(claimed[0].state.is_empty());
    assert_eq!(p.plane.count_open_runs().await.unwrap(), 1);
    // Held: another instance gets nothing.
    assert!(p
        .plane
        .claim_runs("b", now, lease, 10)
        .await
        .unwrap()
        .is_empty());

    let events = vec![(0, b"one".to_vec()), (1, b"two".to_vec())];
    let save = |state: &'static [u8]| Save {
        state,
        first_event: 0,
        events: &events,
        lease_until: lease,
        now,
    };
    assert!(p
        .plane
        .save_run(&key("e1"), "a", save(b"s1"))
        .await
        .unwrap());
    // Not the owner: nothing is written.
    assert!(!p
        .plane
        .save_run(&key("e1"), "b", save(b"s2"))
        .await
        .unwrap());
    assert!(!p.plane.renew_run(&key("e1"), "b", lease).await.unwrap());
    assert!(p.plane.renew_run(&key("e1"), "a", lease).await.unwrap());
    let outbox = p.plane.outbox(&key("e1"), 10).await.unwrap();
    let bodies: Vec<&[u8]> = outbox.iter().map(|e| e.event.as_slice()).collect();
    assert_eq!(bodies, [b"one".as_slice(), b"two".as_slice()]);
    p.plane.ack_outbox(&key("e1"), outbox[0].seq).await.unwrap();
    assert_eq!(p.plane.outbox(&key("e1"), 10).await.unwrap().len(), 1);

    // Released, the run is claimed again with the state saved.
    assert_eq!(p.plane.release_runs("a").await.unwrap(), 1);
    let again = p.plane.claim_runs("b", now, lease, 10).await.unwrap();
    assert_eq!(again[0].state, b"s1");
    assert_eq!(again[0].next_event, 2);
    p.plane.finish_run(&key("e1"), "b", now).await.unwrap();
    assert_eq!(p.plane.count_open_runs().await.unwrap(), 0);
}

async fn events_are_recorded_and_refusals_carry_their_code(p: Plane) {
    task_execution(&p.api, "e1").await;
    let event = |name: &str, phase: Phase| {
        ExecutionEvent::Workflow(Box::new(WorkflowExecutionEvent {
            execution_id: Some(WorkflowExecutionIdentifier {
                project: PROJECT.into(),
                domain: DOMAIN.into(),
                name: name.into(),
                org: String::new(),
            }),
            producer_id: "propeller".into(),
            phase: phase as i32,
            occurred_at: Some(alula_idl::wkt::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            output_result: None,
        }))
    };
    p.plane
        .record_event(event("e1", Phase::Running))
        .await
        .unwrap();
    let status = p.plane.status(&key("e1")).await.unwrap().unwrap();
    assert_eq!(status.phase, Phase::Running);
    let refused = p
        .plane
        .record_event(event("nosuch", Phase::Running))
        .await
        .unwrap_err();
    assert!(
        matches!(refused.code(), Some(c) if c != Code::Ok && c != Code::Unknown),
        "{refused:?}"
    );
}

async fn a_child_is_created_once(p: Plane) {
    task_execution(&p.api, "parent").await;
    let task = id(ResourceType::Task, "t", "v1");
    p.plane
        .create_execution(create("child", &Some(task.clone())))
        .await
        .unwrap();
    let again = p
        .plane
        .create_execution(create("child", &Some(task)))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some(Code::AlreadyExists));
    let unknown = p
        .plane
        .create_execution(create(
            "orphan",
            &Some(id(ResourceType::LaunchPlan, "nosuch", "v1")),
        ))
        .await
        .unwrap_err();
    assert!(
        unknown.code().is_some(),
        "a refusal, not an outage: {unknown:?}"
    );
    p.plane
        .terminate_execution(key("child").id(), "parent aborted".into())
        .await
        .unwrap();
    let status = p.plane.status(&key("child")).await.unwrap().unwrap();
    assert!(matches!(status.phase, Phase::Aborting | Phase::Aborted));
}

async fn a_gate_reads_its_signal_once_set(p: Plane) {
    task_execution(&p.api, "gated").await;
    let id = SignalIdentifier {
        signal_id: "approve".into(),
        execution_id: Some(key("gated").id()),
    };
    p.plane
        .create_signal(SignalGetOrCreateRequest {
            id: Some(id.clone()),
            r#type: Some(simple(SimpleType::Integer)),
        })
        .await
        .unwrap();
    assert!(p
        .plane
        .signal_value(&key("gated"), "approve")
        .await
        .unwrap()
        .is_none());
    SignalService::set_signal(
        &p.api,
        tonic::Request::new(SignalSetRequest {
            id: Some(id),
            value: Some(int_literal(42)),
        }),
    )
    .await
    .unwrap();
    assert_eq!(
        p.plane
            .signal_value(&key("gated"), "approve")
            .await
            .unwrap(),
        Some(int_literal(42))
    );
}

async fn the_cache_and_its_reservations(p: Plane) {
    let now = alula_plane::now_micros();
    assert!(p.plane.cached_outputs("k").await.unwrap().is_none());
    p.plane
        .put_cached_outputs("k", b"out".to_vec(), "e/n0/0", now)
        .await
        .unwrap();
    assert_eq!(
        p.plane.cached_outputs("k").await.unwrap(),
        Some(b"out".to_vec())
    );
    let until = now + 10_000_000;
    assert_eq!(p.plane.reserve("r", "a", now, until).await.unwrap(), "a");
    assert_eq!(p.plane.reserve("r", "b", now, until).await.unwrap(), "a");
    p.plane.release_reservation("r", "a").await.unwrap();
    assert_eq!(p.plane.reserve("r", "b", now, until).await.unwrap(), "b");
}

/// Each test on each backend, in process and over gRPC.
macro_rules! both_ways {
    ($($test:ident),* $(,)?) => {
        mod in_process {
            use super::*;
            $(
                async fn $test(store: Store) {
                    super::$test(super::in_process(store).await).await;
                }
            )*
            on_both_backends!($($test),*);
        }
        mod over_grpc {
            use super::*;
            $(
                async fn $test(store: Store) {
                    super::$test(super::over_grpc(store).await).await;
                }
            )*
            on_both_backends!($($test),*);
        }
    };
}

both_ways!(
    a_task_execution_launches_as_one_node_workflow,
    the_work_queue_leases_saves_and_delivers,
    events_are_recorded_and_refusals_carry_their_code,
    a_child_is_created_once,
    a_gate_reads_its_signal_once_set,
    the_cache_and_its_reservations,
);
