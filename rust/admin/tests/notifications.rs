//! Notifications end to end: executions reach phases through the event RPC of a real server, and
//! the notifier delivers to an SMTP server and HTTP sinks written here (a few lines of SMTP over a
//! tokio listener; axum for the webhooks), on both backends.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alula_admin::notify::{
    NotificationsConfig, Notifier, PagerDutyConfig, SlackConfig, SmtpConfig,
};
use alula_admin::store::{ExecutionKey, NotificationState};
use alula_admin::Store;
use alula_idl::flyteidl::admin::{
    self as admin, execution_spec, notification, EmailNotification, LaunchPlanCreateRequest,
    LaunchPlanMetadata, LaunchPlanSpec, Notification, NotificationList, PagerDutyNotification,
    SlackNotification, TaskCreateRequest, TaskSpec, WorkflowCreateRequest, WorkflowSpec,
};
use alula_idl::flyteidl::core::{
    workflow_execution::Phase, ExecutionError, Identifier, ResourceType, SimpleType,
    WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::event::{workflow_execution_event, WorkflowExecutionEvent};
use alula_idl::flyteidl::service::admin_service_client::AdminServiceClient;
use alula_idl::wkt::Timestamp;
use common::builders::*;
use common::server::TestServer;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tonic::transport::Channel;

type Client = AdminServiceClient<Channel>;

const PUBLIC_URL: &str = "http://alula.test:8088";

/// One message the test SMTP server accepted.
#[derive(Debug)]
struct Mail {
    from: String,
    to: Vec<String>,
    data: String,
}

/// A minimal SMTP server (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, no TLS): each accepted
/// message goes to the returned channel.
async fn smtp_server() -> (u16, mpsc::UnboundedReceiver<Mail>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 test ESMTP\r\n").await.unwrap();
                let (mut from, mut to) = (String::new(), Vec::new());
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250-test\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("MAIL FROM:") {
                        from = line[10..].trim().to_string();
                        b"250 OK\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        to.push(line[8..].trim().to_string());
                        b"250 OK\r\n"
                    } else if upper == "DATA" {
                        write.write_all(b"354 go on\r\n").await.unwrap();
                        let mut data = String::new();
                        while let Ok(Some(line)) = lines.next_line().await {
                            if line == "." {
                                break;
                            }
                            data.push_str(line.strip_prefix('.').unwrap_or(&line));
                            data.push_str("\r\n");
                        }
                        let mail = Mail {
                            from: std::mem::take(&mut from),
                            to: std::mem::take(&mut to),
                            data,
                        };
                        let _ = tx.send(mail);
                        b"250 queued\r\n"
                    } else if upper == "QUIT" {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        return;
                    } else if upper == "RSET" || upper == "NOOP" {
                        b"250 OK\r\n"
                    } else {
                        b"502 not implemented\r\n"
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, rx)
}

/// An HTTP sink: every POSTed JSON body is recorded, and answered with `status`.
#[derive(Clone, Default)]
struct Sink {
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

async fn http_sink(status: u16) -> (String, Sink) {
    use axum::routing::post;
    let sink = Sink::default();
    let recorded = sink.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: String| {
            let recorded = recorded.clone();
            async move {
                let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
                recorded.bodies.lock().unwrap().push(json);
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, sink)
}

/// A local URL nothing listens on.
async fn unreachable_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/enqueue")
}

fn fast(mut config: NotificationsConfig) -> NotificationsConfig {
    config.poll_interval_ms = 20;
    config.initial_backoff_ms = 50;
    config.max_backoff_seconds = 1;
    config.send_timeout_seconds = 5;
    config
}

fn start_notifier(store: &Store, config: NotificationsConfig) -> tokio::sync::oneshot::Sender<()> {
    let notifier = Notifier::new(store.clone(), fast(config), PUBLIC_URL.into()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(notifier.run(async move {
        let _ = stopped.await;
    }));
    stop
}

fn exec_id(name: &str) -> WorkflowExecutionIdentifier {
    WorkflowExecutionIdentifier {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        org: String::new(),
    }
}

fn exec_key(name: &str) -> ExecutionKey {
    ExecutionKey {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
    }
}

/// Registers task `t@v1` and returns a client and the task's id.
async fn setup(server: &TestServer) -> (Client, Identifier) {
    let mut client = AdminServiceClient::connect(server.grpc_url.clone())
        .await
        .unwrap();
    let task = int_task("t", "v1", "img:1");
    let task_id = task.id.clone().unwrap();
    client
        .create_task(TaskCreateRequest {
            id: task.id.clone(),
            spec: Some(TaskSpec {
                template: Some(task),
                description: None,
            }),
        })
        .await
        .unwrap();
    (client, task_id)
}

/// Starts execution `name` of `launch` (a task or a launch plan) with `overrides`.
async fn launch(
    client: &mut Client,
    name: &str,
    launch: &Identifier,
    overrides: Option<execution_spec::NotificationOverrides>,
    input: &str,
) {
    client
        .create_execution(admin::ExecutionCreateRequest {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            name: name.into(),
            spec: Some(admin::ExecutionSpec {
                launch_plan: Some(launch.clone()),
                notification_overrides: overrides,
                ..Default::default()
            }),
            inputs: Some(literals(&[(input, int_literal(1))])),
            org: String::new(),
        })
        .await
        .unwrap();
}

fn overrides(notifications: Vec<Notification>) -> Option<execution_spec::NotificationOverrides> {
    Some(execution_spec::NotificationOverrides::Notifications(
        NotificationList { notifications },
    ))
}

/// Sends a workflow event; returns how long the RPC took.
async fn event(
    client: &mut Client,
    name: &str,
    phase: Phase,
    t: i64,
    error: Option<&str>,
) -> Duration {
    let started = Instant::now();
    client
        .create_workflow_event(admin::WorkflowExecutionEventRequest {
            request_id: String::new(),
            event: Some(WorkflowExecutionEvent {
                execution_id: Some(exec_id(name)),
                producer_id: "propeller".into(),
                phase: phase as i32,
                occurred_at: Some(Timestamp {
                    seconds: 1_700_000_000 + t,
                    nanos: 0,
                }),
                output_result: error.map(|m| {
                    workflow_execution_event::OutputResult::Error(ExecutionError {
                        code: "USER:Fail".into(),
                        message: m.into(),
                        ..Default::default()
                    })
                }),
            }),
        })
        .await
        .unwrap();
    started.elapsed()
}

async fn phase_of(client: &mut Client, name: &str) -> Phase {
    let e = client
        .get_execution(admin::WorkflowExecutionGetRequest {
            id: Some(exec_id(name)),
        })
        .await
        .unwrap()
        .into_inner();
    Phase::try_from(e.closure.unwrap().phase).unwrap()
}

/// Quoted-printable undone and folded header lines unfolded, so the test reads the text.
fn readable(data: &str) -> String {
    let data = data.replace("=\r\n", "").replace("\r\n ", " ");
    let mut out = Vec::new();
    let bytes = data.as_bytes();
    let mut i = 0;
    let qp = data.contains("Content-Transfer-Encoding: quoted-printable");
    while i < bytes.len() {
        if qp && bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&data[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn email_on_failed(store: Store) {
    let server = TestServer::start(store.clone()).await;
    let (mut client, task) = setup(&server).await;
    let (port, mut mails) = smtp_server().await;
    let _stop = start_notifier(
        &store,
        NotificationsConfig {
            smtp: Some(SmtpConfig {
                host: "127.0.0.1".into(),
                port: Some(port),
                from: "Alula <alula@example.com>".into(),
                username: None,
                password: None,
                security: alula_admin::notify::SmtpSecurity::None,
            }),
            ..Default::default()
        },
    );
    let on_failure = Notification {
        phases: vec![Phase::Failed as i32],
        r#type: Some(notification::Type::Email(EmailNotification {
            recipients_email: vec!["ops@example.com".into(), "dev@example.com".into()],
            template: String::new(),
        })),
    };
    // Succeeds: the FAILED-only email must not be sent for it.
    launch(
        &mut client,
        "ok",
        &task,
        overrides(vec![on_failure.clone()]),
        "a",
    )
    .await;
    event(&mut client, "ok", Phase::Running, 1, None).await;
    event(&mut client, "ok", Phase::Succeeded, 2, None).await;
    // Fails, and the FAILED event is delivered twice (a retried delivery).
    launch(&mut client, "bad", &task, overrides(vec![on_failure]), "a").await;
    event(&mut client, "bad", Phase::Running, 1, None).await;
    event(
        &mut client,
        "bad",
        Phase::Failed,
        2,
        Some("task t exited with 1"),
    )
    .await;
    event(
        &mut client,
        "bad",
        Phase::Failed,
        2,
        Some("task t exited with 1"),
    )
    .await;

    let mail = tokio::time::timeout(Duration::from_secs(20), mails.recv())
        .await
        .expect("an email within 20 s")
        .unwrap();
    assert_eq!(mail.from, "<alula@example.com>");
    assert_eq!(mail.to, ["<ops@example.com>", "<dev@example.com>"]);
    let text = readable(&mail.data);
    assert!(
        text.contains("Subject: Notice: Execution \"bad\" has failed in \"development\"."),
        "{text}"
    );
    let body = format!(
        "Execution \"bad\" has failed in \"development\". View details at \
         {PUBLIC_URL}/console/projects/{PROJECT}/domains/{DOMAIN}/executions/bad. \
         The execution failed with error: [task t exited with 1]."
    );
    assert!(text.contains(&body), "{text}");
    let rows = store
        .execution_notifications(&exec_key("bad"))
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        1,
        "one row per (execution, phase, notification)"
    );
    wait_until("the row marked sent", || {
        let store = store.clone();
        async move {
            let rows = store
                .execution_notifications(&exec_key("bad"))
                .await
                .unwrap();
            rows[0].state == NotificationState::Sent && rows[0].attempts == 1
        }
    })
    .await;
    assert!(store
        .execution_notifications(&exec_key("ok"))
        .await
        .unwrap()
        .is_empty());
    // Nothing else arrives (the succeeded execution, or a second copy).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(mails.try_recv().is_err());
    // Pruning takes finished rows older than the cut only.
    assert_eq!(store.prune_notifications(0).await.unwrap(), 0);
    assert_eq!(store.prune_notifications(i64::MAX).await.unwrap(), 1);
    assert!(store
        .execution_notifications(&exec_key("bad"))
        .await
        .unwrap()
        .is_empty());
}

/// Registers workflow `wf@v1` and launch plan `lp@v1` with `notifications`.
async fn launch_plan(
    client: &mut Client,
    task: &Identifier,
    notifications: Vec<Notification>,
) -> Identifier {
    let wf = one_node_workflow("wf", "v1", task, SimpleType::Integer);
    client
        .create_workflow(WorkflowCreateRequest {
            id: wf.id.clone(),
            spec: Some(WorkflowSpec {
                template: Some(wf.clone()),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let lp = id(ResourceType::LaunchPlan, "lp", "v1");
    client
        .create_launch_plan(LaunchPlanCreateRequest {
            id: Some(lp.clone()),
            spec: Some(LaunchPlanSpec {
                workflow_id: wf.id,
                entity_metadata: Some(LaunchPlanMetadata {
                    notifications,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    lp
}

async fn webhook_on_succeeded(store: Store) {
    let server = TestServer::start(store.clone()).await;
    let (mut client, task) = setup(&server).await;
    let (url, sink) = http_sink(200).await;
    let _stop = start_notifier(
        &store,
        NotificationsConfig {
            slack: Some(SlackConfig { webhook_url: url }),
            ..Default::default()
        },
    );
    let lp = launch_plan(
        &mut client,
        &task,
        vec![Notification {
            phases: vec![Phase::Succeeded as i32, Phase::Aborted as i32],
            r#type: Some(notification::Type::Slack(SlackNotification {
                recipients_email: vec!["alerts@team.slack.com".into()],
                template: String::new(),
            })),
        }],
    )
    .await;
    // The launch plan's notifications apply...
    launch(&mut client, "done", &lp, None, "x").await;
    event(&mut client, "done", Phase::Running, 1, None).await;
    event(&mut client, "done", Phase::Succeeded, 2, None).await;
    // ...unless the execution disables them.
    let off = Some(execution_spec::NotificationOverrides::DisableAll(true));
    launch(&mut client, "quiet", &lp, off, "x").await;
    event(&mut client, "quiet", Phase::Running, 1, None).await;
    event(&mut client, "quiet", Phase::Succeeded, 2, None).await;

    wait_until("the webhook", || {
        let sink = sink.clone();
        async move { !sink.bodies.lock().unwrap().is_empty() }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bodies = sink.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let text = bodies[0]["text"].as_str().unwrap();
    assert_eq!(
        text,
        format!(
            "Notice: Execution \"done\" has succeeded in \"development\".\n\
             Execution \"done\" has succeeded in \"development\". View details at \
             {PUBLIC_URL}/console/projects/{PROJECT}/domains/{DOMAIN}/executions/done.\n\
             Recipients: alerts@team.slack.com"
        )
    );
    assert_eq!(bodies[0].as_object().unwrap().len(), 1, "only `text`");
}

async fn unreachable_notifier_is_retried(store: Store) {
    let server = TestServer::start(store.clone()).await;
    let (mut client, task) = setup(&server).await;
    let (failing_url, failing) = http_sink(503).await;
    let mut config = NotificationsConfig {
        slack: Some(SlackConfig {
            webhook_url: failing_url,
        }),
        pagerduty: Some(PagerDutyConfig {
            events_url: unreachable_url().await,
            routing_key: "rk".into(),
            severity: "critical".into(),
            source: "alula-test".into(),
        }),
        ..Default::default()
    };
    config.max_attempts = 3;
    let _stop = start_notifier(&store, config);
    let notifications = vec![
        Notification {
            phases: vec![Phase::Succeeded as i32],
            r#type: Some(notification::Type::PagerDuty(PagerDutyNotification {
                recipients_email: vec!["oncall@example.com".into()],
                template: String::new(),
            })),
        },
        Notification {
            phases: vec![Phase::Succeeded as i32],
            r#type: Some(notification::Type::Slack(SlackNotification {
                recipients_email: vec![],
                template: String::new(),
            })),
        },
    ];
    launch(&mut client, "e", &task, overrides(notifications), "a").await;
    let mut slowest = event(&mut client, "e", Phase::Running, 1, None).await;
    slowest = slowest.max(event(&mut client, "e", Phase::Succeeded, 2, None).await);
    // The event RPC does not wait for any notifier.
    assert!(slowest < Duration::from_secs(2), "event took {slowest:?}");
    assert_eq!(phase_of(&mut client, "e").await, Phase::Succeeded);

    wait_until("both notifications to give up", || {
        let store = store.clone();
        async move {
            let rows = store.execution_notifications(&exec_key("e")).await.unwrap();
            rows.len() == 2 && rows.iter().all(|r| r.state == NotificationState::Failed)
        }
    })
    .await;
    let rows = store.execution_notifications(&exec_key("e")).await.unwrap();
    for row in &rows {
        assert_eq!(row.attempts, 3, "{row:?}");
    }
    assert_eq!(rows[0].notification.channel, "pager_duty");
    assert!(rows[1].last_error.contains("503"), "{:?}", rows[1]);
    assert_eq!(
        failing.bodies.lock().unwrap().len(),
        3,
        "one request per attempt"
    );
    // The execution is untouched by all this.
    assert_eq!(phase_of(&mut client, "e").await, Phase::Succeeded);
}

async fn pagerduty_event_shape(store: Store) {
    let server = TestServer::start(store.clone()).await;
    let (mut client, task) = setup(&server).await;
    let (url, sink) = http_sink(202).await;
    let _stop = start_notifier(
        &store,
        NotificationsConfig {
            pagerduty: Some(PagerDutyConfig {
                events_url: url,
                routing_key: "R0UT1NG".into(),
                severity: "critical".into(),
                source: "alula-test".into(),
            }),
            ..Default::default()
        },
    );
    let pd = Notification {
        phases: vec![Phase::TimedOut as i32],
        r#type: Some(notification::Type::PagerDuty(PagerDutyNotification {
            recipients_email: vec!["oncall@example.com".into()],
            template: String::new(),
        })),
    };
    launch(&mut client, "slow", &task, overrides(vec![pd]), "a").await;
    event(&mut client, "slow", Phase::Running, 1, None).await;
    event(&mut client, "slow", Phase::TimedOut, 2, None).await;
    wait_until("the PagerDuty event", || {
        let sink = sink.clone();
        async move { !sink.bodies.lock().unwrap().is_empty() }
    })
    .await;
    let body = sink.bodies.lock().unwrap()[0].clone();
    assert_eq!(body["routing_key"], "R0UT1NG");
    assert_eq!(body["event_action"], "trigger");
    assert_eq!(
        body["payload"]["summary"],
        "Notice: Execution \"slow\" has timed_out in \"development\"."
    );
    assert_eq!(body["payload"]["source"], "alula-test");
    assert_eq!(body["payload"]["severity"], "critical");
}

on_both_backends!(
    email_on_failed,
    webhook_on_succeeded,
    unreachable_notifier_is_retried,
    pagerduty_event_shape,
);
