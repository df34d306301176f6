//! Event ingestion and the node/task execution reads, through a real tonic client against an
//! in-process server, on both backends.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use alula_admin::Store;
use alula_idl::flyteidl::admin::{
    self as admin, EventFailureReason, NodeExecutionEventRequest, TaskExecutionEventRequest,
    TaskSpec, WorkflowExecutionEventRequest,
};
use alula_idl::flyteidl::core::{
    node_execution, span, task_execution, workflow_execution, CatalogCacheStatus, ExecutionError,
    Identifier, NodeExecutionIdentifier, ResourceType, TaskExecutionIdentifier, TaskLog,
    WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::event::{
    node_execution_event, task_execution_event, workflow_execution_event, NodeExecutionEvent,
    ParentNodeExecutionMetadata, TaskExecutionEvent, TaskNodeMetadata, WorkflowExecutionEvent,
};
use alula_idl::flyteidl::service::admin_service_client::AdminServiceClient;
use alula_idl::wkt::{Any, Timestamp};
use common::builders::*;
use common::server::TestServer;
use prost::Message;
use tonic::transport::Channel;
use tonic::Code;

type Client = AdminServiceClient<Channel>;

/// Seconds after an arbitrary epoch, so tests can order events.
fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: 1_700_000_000 + seconds,
        nanos: 0,
    })
}

fn exec_id(name: &str) -> WorkflowExecutionIdentifier {
    WorkflowExecutionIdentifier {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        org: String::new(),
    }
}

fn node_id(exec: &str, node: &str) -> NodeExecutionIdentifier {
    NodeExecutionIdentifier {
        node_id: node.into(),
        execution_id: Some(exec_id(exec)),
    }
}

/// Registers task `t@v1` and starts execution `name` of it with `a = 1`.
async fn setup(store: Store, name: &str) -> (TestServer, Client, Identifier) {
    let server = TestServer::start(store).await;
    let mut client = AdminServiceClient::connect(server.grpc_url.clone())
        .await
        .unwrap();
    let task = int_task("t", "v1", "img:1");
    let task_id = task.id.clone().unwrap();
    client
        .create_task(admin::TaskCreateRequest {
            id: task.id.clone(),
            spec: Some(TaskSpec {
                template: Some(task),
                description: None,
            }),
        })
        .await
        .unwrap();
    client
        .create_execution(admin::ExecutionCreateRequest {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            name: name.into(),
            spec: Some(admin::ExecutionSpec {
                launch_plan: Some(task_id.clone()),
                ..Default::default()
            }),
            inputs: Some(literals(&[("a", int_literal(1))])),
            org: String::new(),
        })
        .await
        .unwrap();
    (server, client, task_id)
}

fn wf_event(
    name: &str,
    phase: workflow_execution::Phase,
    t: i64,
    output: Option<workflow_execution_event::OutputResult>,
) -> WorkflowExecutionEventRequest {
    WorkflowExecutionEventRequest {
        request_id: String::new(),
        event: Some(WorkflowExecutionEvent {
            execution_id: Some(exec_id(name)),
            producer_id: "propeller".into(),
            phase: phase as i32,
            occurred_at: at(t),
            output_result: output,
        }),
    }
}

fn node_event(exec: &str, node: &str, phase: node_execution::Phase, t: i64) -> NodeExecutionEvent {
    NodeExecutionEvent {
        id: Some(node_id(exec, node)),
        producer_id: "propeller".into(),
        phase: phase as i32,
        occurred_at: at(t),
        spec_node_id: node.into(),
        ..Default::default()
    }
}

async fn send_node(c: &mut Client, event: NodeExecutionEvent) -> Result<(), tonic::Status> {
    c.create_node_event(NodeExecutionEventRequest {
        request_id: String::new(),
        event: Some(event),
    })
    .await
    .map(|_| ())
}

fn task_event(
    task: &Identifier,
    exec: &str,
    node: &str,
    phase: task_execution::Phase,
    phase_version: u32,
    t: i64,
) -> TaskExecutionEvent {
    TaskExecutionEvent {
        task_id: Some(task.clone()),
        parent_node_execution_id: Some(node_id(exec, node)),
        retry_attempt: 0,
        phase: phase as i32,
        phase_version,
        producer_id: "propeller".into(),
        occurred_at: at(t),
        ..Default::default()
    }
}

async fn send_task(c: &mut Client, event: TaskExecutionEvent) -> Result<(), tonic::Status> {
    c.create_task_event(TaskExecutionEventRequest {
        request_id: String::new(),
        event: Some(event),
    })
    .await
    .map(|_| ())
}

async fn get_execution(c: &mut Client, name: &str) -> admin::Execution {
    c.get_execution(admin::WorkflowExecutionGetRequest {
        id: Some(exec_id(name)),
    })
    .await
    .unwrap()
    .into_inner()
}

async fn workflow_events_drive_the_execution(store: Store) {
    use workflow_execution::Phase;
    let (_server, mut c, _) = setup(store, "e1").await;
    c.create_workflow_event(wf_event("e1", Phase::Queued, 1, None))
        .await
        .unwrap();
    c.create_workflow_event(wf_event("e1", Phase::Running, 2, None))
        .await
        .unwrap();
    let running = get_execution(&mut c, "e1").await.closure.unwrap();
    assert_eq!(running.phase, Phase::Running as i32);
    assert_eq!(running.started_at, at(2));

    // A late QUEUED (older than RUNNING) is accepted and changes nothing.
    c.create_workflow_event(wf_event("e1", Phase::Queued, 1, None))
        .await
        .unwrap();
    assert_eq!(
        get_execution(&mut c, "e1").await.closure.unwrap().phase,
        Phase::Running as i32
    );
    // Before success, no outputs.
    let data = c
        .get_execution_data(admin::WorkflowExecutionGetDataRequest {
            id: Some(exec_id("e1")),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(data.full_outputs, None);

    let outputs = literals(&[("o0", int_literal(42))]);
    let succeeded = wf_event(
        "e1",
        Phase::Succeeded,
        12,
        Some(workflow_execution_event::OutputResult::OutputData(
            outputs.clone(),
        )),
    );
    c.create_workflow_event(succeeded.clone()).await.unwrap();
    let closure = get_execution(&mut c, "e1").await.closure.unwrap();
    assert_eq!(closure.phase, Phase::Succeeded as i32);
    assert_eq!(closure.duration.unwrap().seconds, 10);
    assert_eq!(closure.updated_at, at(12));
    let data = c
        .get_execution_data(admin::WorkflowExecutionGetDataRequest {
            id: Some(exec_id("e1")),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(data.full_outputs, Some(outputs));
    assert_eq!(data.full_inputs, Some(literals(&[("a", int_literal(1))])));

    // The identical event again is accepted (propeller retries); a new one is refused.
    c.create_workflow_event(succeeded).await.unwrap();
    let err = c
        .create_workflow_event(wf_event("e1", Phase::Running, 13, None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("SUCCEEDED"), "{}", err.message());
    assert!(err.message().contains("e1"), "{}", err.message());
    let status = tonic_status_details(&err);
    let reason = EventFailureReason::decode(status.as_slice()).unwrap();
    assert_eq!(
        reason.reason,
        Some(admin::event_failure_reason::Reason::AlreadyInTerminalState(
            admin::EventErrorAlreadyInTerminalState {
                current_phase: "SUCCEEDED".into()
            }
        ))
    );
    // The same phase at another time: AlreadyExists, as flyteadmin answers.
    let err = c
        .create_workflow_event(wf_event("e1", Phase::Succeeded, 14, None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");

    // Unknown executions are NOT_FOUND.
    let err = c
        .create_workflow_event(wf_event("nope", Phase::Running, 1, None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().contains("nope"), "{}", err.message());
}

/// The `EventFailureReason` packed in the status details (a `google.rpc.Status`).
fn tonic_status_details(err: &tonic::Status) -> Vec<u8> {
    #[derive(Clone, PartialEq, Message)]
    struct RpcStatus {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
        #[prost(message, repeated, tag = "3")]
        details: Vec<Any>,
    }
    let status = RpcStatus::decode(err.details()).unwrap();
    assert_eq!(status.code, Code::FailedPrecondition as i32);
    let any = status.details.into_iter().next().unwrap();
    assert_eq!(
        any.type_url,
        "type.googleapis.com/flyteidl.admin.EventFailureReason"
    );
    any.value
}

async fn failures_reach_the_closure(store: Store) {
    use workflow_execution::Phase;
    let (_server, mut c, _) = setup(store, "e2").await;
    let error = ExecutionError {
        code: "USER:Boom".into(),
        message: "boom".into(),
        ..Default::default()
    };
    c.create_workflow_event(wf_event(
        "e2",
        Phase::Failed,
        3,
        Some(workflow_execution_event::OutputResult::Error(error.clone())),
    ))
    .await
    .unwrap();
    let closure = get_execution(&mut c, "e2").await.closure.unwrap();
    assert_eq!(closure.phase, Phase::Failed as i32);
    assert_eq!(
        closure.output_result,
        Some(admin::execution_closure::OutputResult::Error(error))
    );
}

async fn node_and_task_events_record_executions(store: Store) {
    use node_execution::Phase as N;
    use task_execution::Phase as T;
    let (_server, mut c, task_id) = setup(store, "e3").await;

    // Task events before their node: NOT_FOUND naming the node.
    let err = send_task(&mut c, task_event(&task_id, "e3", "n0", T::Running, 0, 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().contains("n0"), "{}", err.message());

    let mut queued = node_event("e3", "n0", N::Queued, 1);
    queued.input_value = Some(node_execution_event::InputValue::InputData(literals(&[(
        "a",
        int_literal(1),
    )])));
    send_node(&mut c, queued).await.unwrap();
    send_node(&mut c, node_event("e3", "n0", N::Running, 2))
        .await
        .unwrap();
    send_node(&mut c, node_event("e3", "n1", N::Queued, 3))
        .await
        .unwrap();
    // A child of n0 is not a top-level node.
    let mut child = node_event("e3", "n0-0-c", N::Queued, 3);
    child.parent_node_metadata = Some(ParentNodeExecutionMetadata {
        node_id: "n0".into(),
    });
    send_node(&mut c, child).await.unwrap();

    // Task attempt 0: RUNNING, then RUNNING with a newer phase version adding a log.
    send_task(&mut c, task_event(&task_id, "e3", "n0", T::Running, 0, 2))
        .await
        .unwrap();
    let mut progress = task_event(&task_id, "e3", "n0", T::Running, 1, 3);
    progress.logs = vec![TaskLog {
        uri: "http://logs/n0".into(),
        name: "Kubernetes Logs".into(),
        ..Default::default()
    }];
    send_task(&mut c, progress.clone()).await.unwrap();
    send_task(&mut c, progress).await.unwrap(); // identical repeat: accepted
    let mut done = task_event(&task_id, "e3", "n0", T::Succeeded, 0, 5);
    done.output_result = Some(task_execution_event::OutputResult::OutputData(literals(&[
        ("o0", int_literal(2)),
    ])));
    send_task(&mut c, done).await.unwrap();
    let err = send_task(&mut c, task_event(&task_id, "e3", "n0", T::Running, 2, 6))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("SUCCEEDED"), "{}", err.message());

    let task_exec_id = TaskExecutionIdentifier {
        task_id: Some(Identifier {
            resource_type: ResourceType::Task as i32,
            ..task_id.clone()
        }),
        node_execution_id: Some(node_id("e3", "n0")),
        retry_attempt: 0,
    };
    let te = c
        .get_task_execution(admin::TaskExecutionGetRequest {
            id: Some(task_exec_id.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    let closure = te.closure.unwrap();
    assert_eq!(closure.phase, T::Succeeded as i32);
    assert_eq!(closure.logs.len(), 1);
    assert_eq!(closure.started_at, at(2));
    assert_eq!(closure.duration.unwrap().seconds, 3);
    let listed = c
        .list_task_executions(admin::TaskExecutionListRequest {
            node_execution_id: Some(node_id("e3", "n0")),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.task_executions.len(), 1);
    let data = c
        .get_task_execution_data(admin::TaskExecutionGetDataRequest {
            id: Some(task_exec_id),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(data.full_outputs, Some(literals(&[("o0", int_literal(2))])));

    // The node succeeds with outputs and a cache status.
    let mut node_done = node_event("e3", "n0", N::Succeeded, 6);
    node_done.output_result = Some(node_execution_event::OutputResult::OutputData(literals(&[
        ("o0", int_literal(2)),
    ])));
    node_done.target_metadata = Some(node_execution_event::TargetMetadata::TaskNodeMetadata(
        TaskNodeMetadata {
            cache_status: CatalogCacheStatus::CacheMiss as i32,
            ..Default::default()
        },
    ));
    send_node(&mut c, node_done).await.unwrap();
    let ne = c
        .get_node_execution(admin::NodeExecutionGetRequest {
            id: Some(node_id("e3", "n0")),
        })
        .await
        .unwrap()
        .into_inner();
    let closure = ne.closure.unwrap();
    assert_eq!(closure.phase, N::Succeeded as i32);
    assert_eq!(closure.duration.unwrap().seconds, 4);
    match closure.target_metadata {
        Some(admin::node_execution_closure::TargetMetadata::TaskNodeMetadata(m)) => {
            assert_eq!(m.cache_status, CatalogCacheStatus::CacheMiss as i32);
        }
        other => panic!("expected task node metadata, got {other:?}"),
    }
    assert_eq!(ne.metadata.unwrap().spec_node_id, "n0");
    let data = c
        .get_node_execution_data(admin::NodeExecutionGetDataRequest {
            id: Some(node_id("e3", "n0")),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(data.full_inputs, Some(literals(&[("a", int_literal(1))])));
    assert_eq!(data.full_outputs, Some(literals(&[("o0", int_literal(2))])));
    let err = send_node(&mut c, node_event("e3", "n0", N::Running, 7))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("n0"), "{}", err.message());

    // Lists: top-level nodes, filtered by phase, children by unique_parent_id.
    let list = |filters: &str, parent: &str| admin::NodeExecutionListRequest {
        workflow_execution_id: Some(exec_id("e3")),
        limit: 10,
        filters: filters.into(),
        unique_parent_id: parent.into(),
        ..Default::default()
    };
    let ids = |l: admin::NodeExecutionList| -> Vec<String> {
        l.node_executions
            .into_iter()
            .map(|n| n.id.unwrap().node_id)
            .collect()
    };
    let all = c.list_node_executions(list("", "")).await.unwrap();
    assert_eq!(ids(all.into_inner()), ["n0", "n1"]);
    let ok = c
        .list_node_executions(list("eq(phase,SUCCEEDED)", ""))
        .await
        .unwrap();
    assert_eq!(ids(ok.into_inner()), ["n0"]);
    let children = c.list_node_executions(list("", "n0")).await.unwrap();
    assert_eq!(ids(children.into_inner()), ["n0-0-c"]);

    // The timeline: the workflow, its top-level nodes, and n0's task attempt at depth 2.
    let span = c
        .get_execution_metrics(admin::WorkflowExecutionGetMetricsRequest {
            id: Some(exec_id("e3")),
            depth: 2,
        })
        .await
        .unwrap()
        .into_inner()
        .span
        .unwrap();
    assert_eq!(span.id, Some(span::Id::WorkflowId(exec_id("e3"))));
    let nodes: Vec<_> = span
        .spans
        .iter()
        .map(|s| match &s.id {
            Some(span::Id::NodeId(n)) => (n.node_id.clone(), s.spans.len()),
            other => panic!("expected a node span, got {other:?}"),
        })
        .collect();
    assert_eq!(nodes, [("n0".to_string(), 1), ("n1".to_string(), 0)]);
    assert_eq!(span.spans[0].start_time, at(2));
    assert_eq!(span.spans[0].end_time, at(6));
    let err = c
        .list_node_executions(list("eq(phase,DONE)", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("DONE"), "{}", err.message());
}

async fn update_execution_archives(store: Store) {
    let (_server, mut c, _) = setup(store, "e4").await;
    c.update_execution(admin::ExecutionUpdateRequest {
        id: Some(exec_id("e4")),
        state: admin::ExecutionState::ExecutionArchived as i32,
    })
    .await
    .unwrap();
    let details = get_execution(&mut c, "e4")
        .await
        .closure
        .unwrap()
        .state_change_details
        .unwrap();
    assert_eq!(
        details.state,
        admin::ExecutionState::ExecutionArchived as i32
    );
    let err = c
        .update_execution(admin::ExecutionUpdateRequest {
            id: Some(exec_id("missing")),
            state: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
}

async fn dynamic_nodes_serve_their_workflow(store: Store) {
    use node_execution::Phase as N;
    let (_server, mut c, _task_id) = setup(store, "e5").await;
    let compiled = alula_idl::flyteidl::core::CompiledWorkflowClosure {
        primary: Some(alula_idl::flyteidl::core::CompiledWorkflow {
            template: Some(alula_idl::flyteidl::core::WorkflowTemplate {
                id: Some(Identifier {
                    name: "n0-dynamic".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            connections: None,
        }),
        ..Default::default()
    };
    let mut running = node_event("e5", "n0", N::DynamicRunning, 1);
    running.target_metadata = Some(node_execution_event::TargetMetadata::TaskNodeMetadata(
        TaskNodeMetadata {
            dynamic_workflow: Some(alula_idl::flyteidl::event::DynamicWorkflowNodeMetadata {
                compiled_workflow: Some(compiled.clone()),
                dynamic_job_spec_uri: "file:///tmp/futures.pb".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
    ));
    send_node(&mut c, running).await.unwrap();
    send_node(&mut c, node_event("e5", "n1", N::Running, 2))
        .await
        .unwrap();
    let got = c
        .get_dynamic_node_workflow(admin::GetDynamicNodeWorkflowRequest {
            id: Some(node_id("e5", "n0")),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.compiled_workflow, Some(compiled));
    // A node that is not dynamic, and one that does not exist, have none.
    for node in ["n1", "nope"] {
        let err = c
            .get_dynamic_node_workflow(admin::GetDynamicNodeWorkflowRequest {
                id: Some(node_id("e5", node)),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        assert!(err.message().contains(node), "{}", err.message());
    }
}

/// A terminate racing the data plane's first event (QUEUED → RUNNING) still terminates: the
/// caller is not told to retry because the phase moved under it.
async fn terminate_racing_a_phase_change_succeeds(store: Store) {
    let (_server, mut client, task_id) = setup(store, "race-0").await;
    for i in 0..40 {
        let name = format!("race-{i}");
        if i > 0 {
            client
                .create_execution(admin::ExecutionCreateRequest {
                    project: PROJECT.into(),
                    domain: DOMAIN.into(),
                    name: name.clone(),
                    spec: Some(admin::ExecutionSpec {
                        launch_plan: Some(task_id.clone()),
                        ..Default::default()
                    }),
                    inputs: Some(literals(&[("a", int_literal(1))])),
                    org: String::new(),
                })
                .await
                .unwrap();
        }
        let mut events = client.clone();
        let mut terminates = client.clone();
        let running = wf_event(&name, workflow_execution::Phase::Running, 1, None);
        let (event, terminated) = tokio::join!(
            events.create_workflow_event(running),
            terminates.terminate_execution(admin::ExecutionTerminateRequest {
                id: Some(exec_id(&name)),
                cause: "race".into(),
            })
        );
        terminated.unwrap_or_else(|e| panic!("terminate of {name}: {e:?}"));
        // The event may land before the terminate (then RUNNING was recorded first) or be
        // refused after it (ABORTING only moves to ABORTED): either way the execution is
        // being terminated.
        if let Err(e) = event {
            assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        }
        let got = client
            .get_execution(admin::WorkflowExecutionGetRequest {
                id: Some(exec_id(&name)),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            got.closure.unwrap().phase,
            workflow_execution::Phase::Aborting as i32,
            "{name}"
        );
    }
}

on_both_backends!(
    dynamic_nodes_serve_their_workflow,
    workflow_events_drive_the_execution,
    failures_reach_the_closure,
    node_and_task_events_record_executions,
    update_execution_archives,
    terminate_racing_a_phase_change_succeeds,
);
