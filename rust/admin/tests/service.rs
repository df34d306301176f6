//! AdminService through a real tonic client against an in-process server on 127.0.0.1:0,
//! on both backends.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use std::sync::Arc;

use alula_admin::{app, AdminConfig, Store};
use alula_idl::flyteidl::admin::{
    self as admin, sort::Direction, LaunchPlanCreateRequest, LaunchPlanSpec, LaunchPlanState,
    LaunchPlanUpdateRequest, NamedEntityIdentifier, ObjectGetRequest, ResourceListRequest, Sort,
    TaskCreateRequest, TaskSpec, WorkflowCreateRequest, WorkflowSpec,
};
use alula_idl::flyteidl::core::{
    parameter, workflow_execution::Phase, Identifier, Parameter, ParameterMap, ResourceType,
    SimpleType, TaskTemplate, Variable, WorkflowExecutionIdentifier, WorkflowTemplate,
};
use alula_idl::flyteidl::service::admin_service_client::AdminServiceClient;
use alula_idl::flyteidl::service::data_proxy_service_client::DataProxyServiceClient;
use common::builders::*;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::Code;

struct Server {
    admin: AdminServiceClient<Channel>,
    grpc_url: String,
    storage: std::path::PathBuf,
    _stop: oneshot::Sender<()>,
}

async fn start(store: Store) -> Server {
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_url = format!("http://{}", grpc.local_addr().unwrap());
    let storage =
        std::env::temp_dir().join(format!("alula-admin-test-{:x}", rand::random::<u64>()));
    let config = AdminConfig::new(
        storage.clone(),
        format!("http://{}", http.local_addr().unwrap()),
        b"test-key".to_vec(),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app::serve(
        store,
        Arc::new(config),
        grpc,
        http,
        async move {
            let _ = stopped.await;
        },
    ));
    let admin = AdminServiceClient::connect(grpc_url.clone()).await.unwrap();
    Server {
        admin,
        grpc_url,
        storage,
        _stop: stop,
    }
}

async fn create_task(s: &mut Server, template: TaskTemplate) -> Result<(), tonic::Status> {
    let req = TaskCreateRequest {
        id: template.id.clone(),
        spec: Some(TaskSpec {
            template: Some(template),
            description: None,
        }),
    };
    s.admin.create_task(req).await.map(|_| ())
}

async fn create_workflow(s: &mut Server, template: WorkflowTemplate) -> Result<(), tonic::Status> {
    let req = WorkflowCreateRequest {
        id: template.id.clone(),
        spec: Some(WorkflowSpec {
            template: Some(template),
            ..Default::default()
        }),
    };
    s.admin.create_workflow(req).await.map(|_| ())
}

fn lp_spec(workflow: &Identifier, default_x: Option<i64>) -> LaunchPlanSpec {
    let mut parameters = std::collections::BTreeMap::new();
    if let Some(x) = default_x {
        let param = Parameter {
            var: Some(Variable {
                r#type: Some(simple(SimpleType::Integer)),
                ..Default::default()
            }),
            behavior: Some(parameter::Behavior::Default(int_literal(x))),
        };
        parameters.insert("x".to_string(), param);
    }
    LaunchPlanSpec {
        workflow_id: Some(workflow.clone()),
        default_inputs: Some(ParameterMap { parameters }),
        ..Default::default()
    }
}

/// Registers task `t@v1`, workflow `wf@v1` using it and launch plan `lp@v1` (x defaults to 5).
async fn register_basics(s: &mut Server) -> (Identifier, Identifier, Identifier) {
    let task = int_task("t", "v1", "img:1");
    let task_id = task.id.clone().unwrap();
    create_task(s, task).await.unwrap();
    let wf = one_node_workflow("wf", "v1", &task_id, SimpleType::Integer);
    let wf_id = wf.id.clone().unwrap();
    create_workflow(s, wf).await.unwrap();
    let lp_id = id(ResourceType::LaunchPlan, "lp", "v1");
    s.admin
        .create_launch_plan(LaunchPlanCreateRequest {
            id: Some(lp_id.clone()),
            spec: Some(lp_spec(&wf_id, Some(5))),
        })
        .await
        .unwrap();
    (task_id, wf_id, lp_id)
}

async fn registers_and_reads_back(store: Store) {
    let mut s = start(store).await;
    let (task_id, wf_id, lp_id) = register_basics(&mut s).await;

    let task = s
        .admin
        .get_task(ObjectGetRequest {
            id: Some(task_id.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    let template = task
        .closure
        .unwrap()
        .compiled_task
        .unwrap()
        .template
        .unwrap();
    assert_eq!(template.id, Some(task_id.clone()));

    let wf = s
        .admin
        .get_workflow(ObjectGetRequest {
            id: Some(wf_id.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    let compiled = wf.closure.unwrap().compiled_workflow.unwrap();
    assert_eq!(compiled.tasks.len(), 1);
    let connections = compiled.primary.unwrap().connections.unwrap();
    assert!(connections.upstream.contains_key("n0"), "{connections:?}");

    let lp = s
        .admin
        .get_launch_plan(ObjectGetRequest {
            id: Some(lp_id.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    let closure = lp.closure.unwrap();
    assert_eq!(closure.state, LaunchPlanState::Inactive as i32);
    let x = &closure.expected_inputs.unwrap().parameters["x"];
    assert_eq!(
        x.behavior,
        Some(parameter::Behavior::Default(int_literal(5)))
    );
    assert!(closure
        .expected_outputs
        .unwrap()
        .variables
        .contains_key("out"));

    // Activation: GetActiveLaunchPlan finds it only once activated.
    let named = NamedEntityIdentifier {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: "lp".into(),
        org: String::new(),
    };
    let active = |n: NamedEntityIdentifier| admin::ActiveLaunchPlanRequest { id: Some(n) };
    let err = s
        .admin
        .get_active_launch_plan(active(named.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    s.admin
        .update_launch_plan(LaunchPlanUpdateRequest {
            id: Some(lp_id.clone()),
            state: LaunchPlanState::Active as i32,
        })
        .await
        .unwrap();
    let got = s
        .admin
        .get_active_launch_plan(active(named))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.id, Some(lp_id));

    let version = s
        .admin
        .get_version(admin::GetVersionRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!version.control_plane_version.unwrap().version.is_empty());
    let domains = s
        .admin
        .get_domains(admin::GetDomainRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(domains.domains.len(), 3);
}

async fn reregistration_is_idempotent_and_changes_are_refused(store: Store) {
    let mut s = start(store).await;
    let (_, wf_id, lp_id) = register_basics(&mut s).await;

    let again = create_task(&mut s, int_task("t", "v1", "img:1"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists, "{again:?}");
    let changed = create_task(&mut s, int_task("t", "v1", "img:2"))
        .await
        .unwrap_err();
    assert_eq!(changed.code(), Code::InvalidArgument);
    assert!(
        changed.message().contains("t@v1")
            && changed
                .message()
                .contains("template.container.image: was \"img:1\", now \"img:2\""),
        "{}",
        changed.message()
    );

    let lp_again = s
        .admin
        .create_launch_plan(LaunchPlanCreateRequest {
            id: Some(lp_id.clone()),
            spec: Some(lp_spec(&wf_id, Some(5))),
        })
        .await
        .unwrap_err();
    assert_eq!(lp_again.code(), Code::AlreadyExists);
    let lp_changed = s
        .admin
        .create_launch_plan(LaunchPlanCreateRequest {
            id: Some(lp_id),
            spec: Some(lp_spec(&wf_id, Some(6))),
        })
        .await
        .unwrap_err();
    assert_eq!(lp_changed.code(), Code::InvalidArgument);
    assert!(
        lp_changed.message().contains("defaultInputs"),
        "{}",
        lp_changed.message()
    );
}

async fn compile_errors_and_bad_references_are_reported(store: Store) {
    let mut s = start(store).await;
    let task = int_task("t", "v1", "img");
    let task_id = task.id.clone().unwrap();
    create_task(&mut s, task).await.unwrap();

    let ill_typed = one_node_workflow("bad", "v1", &task_id, SimpleType::String);
    let err = create_workflow(&mut s, ill_typed).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("MismatchingTypes"),
        "{}",
        err.message()
    );

    let err = create_workflow(&mut s, cyclic_workflow("cyc", "v1", &task_id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("CycleDetected"), "{}", err.message());

    let missing = id(ResourceType::Task, "ghost", "v1");
    let err = create_workflow(
        &mut s,
        one_node_workflow("w", "v1", &missing, SimpleType::Integer),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("ghost@v1"), "{}", err.message());

    let mut elsewhere = int_task("t", "v1", "img");
    elsewhere.id = Some(Identifier {
        project: "nowhere".into(),
        ..task_id.clone()
    });
    let err = create_task(&mut s, elsewhere).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("\"nowhere\""), "{}", err.message());

    let err = s
        .admin
        .get_task(ObjectGetRequest {
            id: Some(id(ResourceType::Task, "t", "v9")),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = s
        .admin
        .get_project(admin::ProjectGetRequest {
            id: "nowhere".into(),
            org: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

fn list_request(name: &str, filters: &str, limit: u32, token: &str) -> ResourceListRequest {
    ResourceListRequest {
        id: Some(NamedEntityIdentifier {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            name: name.into(),
            org: String::new(),
        }),
        limit,
        token: token.into(),
        filters: filters.into(),
        sort_by: Some(Sort {
            key: "version".into(),
            direction: Direction::Ascending as i32,
        }),
    }
}

async fn lists_filter_sort_and_paginate(store: Store) {
    let mut s = start(store).await;
    for v in ["v1", "v2", "v3"] {
        create_task(&mut s, int_task("t", v, "img")).await.unwrap();
    }
    create_task(&mut s, int_task("other", "v1", "img"))
        .await
        .unwrap();
    let versions = |l: admin::TaskList| -> Vec<String> {
        l.tasks.into_iter().map(|t| t.id.unwrap().version).collect()
    };
    let page = s
        .admin
        .list_tasks(list_request("t", "", 2, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.token, "2");
    assert_eq!(versions(page), ["v1", "v2"]);
    let page = s
        .admin
        .list_tasks(list_request("t", "", 2, "2"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (page.token.as_str(), versions(page.clone())),
        ("", vec!["v3".to_string()])
    );
    let filtered = s
        .admin
        .list_tasks(list_request(
            "",
            "ne(version,v2)+value_in(name,t;other)",
            10,
            "",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(versions(filtered), ["v1", "v1", "v3"]);
    let err = s
        .admin
        .list_tasks(list_request("", "eq(colour,red)", 10, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("colour"), "{}", err.message());
    let ids = s
        .admin
        .list_task_ids(admin::NamedEntityIdentifierListRequest {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<String> = ids.entities.into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["other", "t"]);
}

fn execution_id(name: &str) -> WorkflowExecutionIdentifier {
    WorkflowExecutionIdentifier {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        org: String::new(),
    }
}

async fn executions_are_created_listed_and_terminated(store: Store) {
    let mut s = start(store).await;
    let (task_id, _, lp_id) = register_basics(&mut s).await;
    let create = |target: &Identifier, name: &str, inputs| admin::ExecutionCreateRequest {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        spec: Some(admin::ExecutionSpec {
            launch_plan: Some(target.clone()),
            ..Default::default()
        }),
        inputs: Some(inputs),
        org: String::new(),
    };

    // From a launch plan, with the default filling `x`.
    let created = s
        .admin
        .create_execution(create(&lp_id, "", literals(&[])))
        .await
        .unwrap()
        .into_inner();
    let generated = created.id.unwrap();
    assert_eq!(generated.name.len(), 20);
    let data = s
        .admin
        .get_execution_data(admin::WorkflowExecutionGetDataRequest {
            id: Some(generated.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(data.full_inputs, Some(literals(&[("x", int_literal(5))])));

    // From a task, inputs required; a wrong type or an unknown name is refused.
    s.admin
        .create_execution(create(
            &task_id,
            "by-task",
            literals(&[("a", int_literal(1))]),
        ))
        .await
        .unwrap();
    let err = s
        .admin
        .create_execution(create(
            &task_id,
            "bad",
            literals(&[("a", str_literal("x")), ("zz", int_literal(1))]),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("\"a\" expects") && err.message().contains("\"zz\""),
        "{}",
        err.message()
    );
    let dup = s
        .admin
        .create_execution(create(
            &task_id,
            "by-task",
            literals(&[("a", int_literal(1))]),
        ))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);

    let got = s
        .admin
        .get_execution(admin::WorkflowExecutionGetRequest {
            id: Some(execution_id("by-task")),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.closure.unwrap().phase, Phase::Queued as i32);

    s.admin
        .terminate_execution(admin::ExecutionTerminateRequest {
            id: Some(execution_id("by-task")),
            cause: "enough".into(),
        })
        .await
        .unwrap();
    let again = s
        .admin
        .terminate_execution(admin::ExecutionTerminateRequest {
            id: Some(execution_id("by-task")),
            cause: "twice".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    let aborted = s
        .admin
        .get_execution(admin::WorkflowExecutionGetRequest {
            id: Some(execution_id("by-task")),
        })
        .await
        .unwrap()
        .into_inner()
        .closure
        .unwrap();
    // ABORTING until a propeller reports ABORTED.
    assert_eq!(aborted.phase, Phase::Aborting as i32);
    assert_eq!(
        aborted.output_result,
        Some(admin::execution_closure::OutputResult::AbortMetadata(
            admin::AbortMetadata {
                cause: "enough".into(),
                principal: String::new(),
            }
        ))
    );

    let queued = s
        .admin
        .list_executions(ResourceListRequest {
            sort_by: Some(Sort {
                key: "created_at".into(),
                direction: Direction::Descending as i32,
            }),
            ..list_request("", "eq(phase,QUEUED)", 10, "")
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<String> = queued
        .executions
        .into_iter()
        .map(|e| e.id.unwrap().name)
        .collect();
    assert_eq!(names, [generated.name]);

    let err = s
        .admin
        .create_execution(admin::ExecutionCreateRequest {
            project: "nowhere".into(),
            ..create(&lp_id, "", literals(&[]))
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

async fn uploads_land_under_the_storage_root(store: Store) {
    let s = start(store).await;
    let mut proxy = DataProxyServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let body = b"fast register tarball".to_vec();
    let md5 = <md5::Md5 as md5::Digest>::digest(&body).to_vec();
    let loc = proxy
        .create_upload_location(alula_idl::flyteidl::service::CreateUploadLocationRequest {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            filename: "pkg.tar.gz".into(),
            content_md5: md5.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let path = loc.native_url.strip_prefix("file://").unwrap().to_string();
    assert!(path.starts_with(s.storage.to_str().unwrap()), "{path}");
    let status = put(&loc.signed_url, &body, &md5).await;
    assert_eq!(status, 200);
    assert_eq!(std::fs::read(&path).unwrap(), body);
    // Other content under the same URL is refused.
    assert_eq!(put(&loc.signed_url, b"other", &md5).await, 400);
    assert_eq!(
        put(
            &loc.signed_url.replace("signature=", "signature=00"),
            &body,
            &md5
        )
        .await,
        403
    );
    let _ = std::fs::remove_dir_all(&s.storage);
}

/// flytekit places uploads by the base32 MD5 of their content (`=` padded) and names files
/// of a FlyteDirectory by their relative path; both are taken, path escapes are not.
async fn flytekit_upload_names_are_accepted(store: Store) {
    let s = start(store).await;
    let mut proxy = DataProxyServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let body = b"hello from a FlyteFile".to_vec();
    let md5 = <md5::Md5 as md5::Digest>::digest(&body).to_vec();
    let request = |filename_root: &str, filename: &str| {
        alula_idl::flyteidl::service::CreateUploadLocationRequest {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            filename: filename.into(),
            filename_root: filename_root.into(),
            content_md5: md5.clone(),
            ..Default::default()
        }
    };
    let root = "NBSWY3DPEB3W64TMMQQGC3TEEBWW65LO======";
    for filename in [
        "data.txt",
        "my data (1).txt",
        "sub/dir/file.csv",
        "ünïcode.txt",
    ] {
        let loc = proxy
            .create_upload_location(request(root, filename))
            .await
            .unwrap_or_else(|e| panic!("{filename}: {e:?}"))
            .into_inner();
        let path = loc.native_url.strip_prefix("file://").unwrap().to_string();
        assert_eq!(
            path,
            s.storage
                .join(format!("uploads/{PROJECT}/{DOMAIN}/{root}/{filename}"))
                .display()
                .to_string()
        );
        assert_eq!(put(&loc.signed_url, &body, &md5).await, 200, "{filename}");
        assert_eq!(std::fs::read(&path).unwrap(), body, "{filename}");
    }
    for (filename_root, filename, field) in [
        ("..", "data.txt", "filename_root"),
        ("../../x", "data.txt", "filename_root"),
        ("/etc", "data.txt", "filename_root"),
        ("a\\..\\b", "data.txt", "filename_root"),
        ("a\0b", "data.txt", "filename_root"),
        ("a\nb", "data.txt", "filename_root"),
        ("a//b", "data.txt", "filename_root"),
        (root, "../data.txt", "filename"),
        (root, "/etc/passwd", "filename"),
        (root, "sub/../../x", "filename"),
        (root, "a\\b", "filename"),
        (root, "a\0b", "filename"),
        (root, ".", "filename"),
    ] {
        let err = proxy
            .create_upload_location(request(filename_root, filename))
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "{filename_root:?} {filename:?}"
        );
        assert!(
            err.message().starts_with(field),
            "{filename_root:?} {filename:?}: {}",
            err.message()
        );
    }
    let _ = std::fs::remove_dir_all(&s.storage);
}

/// A bare HTTP/1.1 PUT (the test needs no HTTP client dependency); returns the status code.
async fn put(url: &str, body: &[u8], md5: &[u8]) -> u16 {
    use base64::Engine;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut conn = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "PUT /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nContent-MD5: {}\r\nConnection: close\r\n\r\n",
        body.len(),
        base64::engine::general_purpose::STANDARD.encode(md5)
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(body).await.unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    response.split(' ').nth(1).unwrap().parse().unwrap()
}

on_both_backends!(
    registers_and_reads_back,
    reregistration_is_idempotent_and_changes_are_refused,
    compile_errors_and_bad_references_are_reported,
    lists_filter_sort_and_paginate,
    executions_are_created_listed_and_terminated,
    uploads_land_under_the_storage_root,
    flytekit_upload_names_are_accepted,
);
