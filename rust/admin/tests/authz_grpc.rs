//! Authorization end to end: a real server with the built-in authorization server on, machine
//! clients with roles on project flytesnacks, and calls over gRPC and REST with and without
//! their tokens.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use std::sync::Arc;

use alula_admin::auth::{Auth, AuthMode, AuthSettings};
use alula_admin::{app, AdminConfig, Store};
use alula_auth::secret::hash_secret;
use alula_auth::{Role, Subject};
use alula_idl::flyteidl::admin::{self as admin, ExecutionMetadata, ExecutionSpec};
use alula_idl::flyteidl::core::{Identifier, ResourceType, WorkflowExecutionIdentifier};
use alula_idl::flyteidl::service::admin_service_client::AdminServiceClient;
use alula_idl::flyteidl::service::auth_metadata_service_client::AuthMetadataServiceClient;
use alula_idl::flyteidl::service::{OAuth2MetadataRequest, PublicClientAuthConfigRequest};
use common::builders::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::{Code, Request};

const OTHER_PROJECT: &str = "other";

/// The clients every test gets, with their roles: (id, project, role).
const CLIENTS: [(&str, &str, Role); 5] = [
    ("viewer-ci", PROJECT, Role::Viewer),
    ("runner-ci", PROJECT, Role::Runner),
    ("developer-ci", PROJECT, Role::Developer),
    ("other-developer", OTHER_PROJECT, Role::Developer),
    ("admin-ci", "*", Role::Admin),
];

struct Server {
    admin: AdminServiceClient<Channel>,
    grpc_url: String,
    http_url: String,
    auth: Auth,
    store: Store,
    _stop: oneshot::Sender<()>,
}

impl Server {
    async fn start() -> Self {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        for (id, project, role) in CLIENTS {
            assert!(store
                .create_client(id, &hash_secret(&secret_of(id)), "")
                .await
                .unwrap());
            store
                .put_role_binding(&Subject::Client(id.into()), project, "*", role)
                .await
                .unwrap();
        }
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc_url = format!("http://{}", grpc.local_addr().unwrap());
        let http_url = format!("http://{}", http.local_addr().unwrap());
        let storage =
            std::env::temp_dir().join(format!("alula-authz-test-{:x}", rand::random::<u64>()));
        let mut config = AdminConfig::new(storage, http_url.clone(), b"test-key".to_vec());
        config.default_projects = vec![PROJECT.into(), OTHER_PROJECT.into()];
        config.auth = settings(&http_url);
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app::serve(
            store.clone(),
            Arc::new(config),
            grpc,
            http,
            async move {
                let _ = stopped.await;
            },
        ));
        let admin = AdminServiceClient::connect(grpc_url.clone()).await.unwrap();
        // Public: answers once the server is up (and its signing key exists).
        AuthMetadataServiceClient::connect(grpc_url.clone())
            .await
            .unwrap()
            .get_public_client_config(PublicClientAuthConfigRequest {})
            .await
            .unwrap();
        // The same settings over the same database: tokens as the server's endpoint issues
        // them.
        let auth = Auth::new(settings(&http_url), store.clone()).await.unwrap();
        Self {
            admin,
            grpc_url,
            http_url,
            auth,
            store,
            _stop: stop,
        }
    }

    async fn token(&self, client: &str) -> String {
        self.auth
            .issue_client_token(client, &secret_of(client))
            .await
            .unwrap()
            .access_token
            .expose()
            .to_string()
    }
}

fn settings(http_url: &str) -> AuthSettings {
    AuthSettings {
        mode: AuthMode::Builtin,
        issuer: http_url.to_string(),
        ..Default::default()
    }
}

fn secret_of(client: &str) -> String {
    format!("secret-of-{client}-0123456789abcdef")
}

/// `message` with `token` as its bearer credentials, if any.
fn call<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

fn task_in(project: &str, name: &str) -> admin::TaskCreateRequest {
    let mut task = int_task(name, "v1", "python:3.12");
    if let Some(id) = task.id.as_mut() {
        id.project = project.into();
    }
    task_create_request(task)
}

fn list_executions() -> admin::ResourceListRequest {
    admin::ResourceListRequest {
        id: Some(admin::NamedEntityIdentifier {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            ..Default::default()
        }),
        limit: 10,
        ..Default::default()
    }
}

fn execution_of(
    task: &Identifier,
    name: &str,
    claimed_principal: &str,
) -> admin::ExecutionCreateRequest {
    admin::ExecutionCreateRequest {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        spec: Some(ExecutionSpec {
            launch_plan: Some(task.clone()),
            metadata: Some(ExecutionMetadata {
                principal: claimed_principal.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        inputs: Some(literals(&[("a", int_literal(1))])),
        org: String::new(),
    }
}

fn execution_id(name: &str) -> WorkflowExecutionIdentifier {
    WorkflowExecutionIdentifier {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        org: String::new(),
    }
}

#[tokio::test]
async fn calls_without_valid_credentials_are_unauthenticated() {
    let mut s = Server::start().await;
    let refused = s
        .admin
        .create_task(call(task_in(PROJECT, "t"), None))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let refused = s
        .admin
        .list_executions(call(list_executions(), None))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let refused = s
        .admin
        .list_executions(call(list_executions(), Some("not-a-jwt")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(
        !refused.message().contains("not-a-jwt"),
        "{}",
        refused.message()
    );

    // How to authenticate is public.
    let mut discovery = AuthMetadataServiceClient::connect(s.grpc_url.clone())
        .await
        .unwrap();
    let metadata = discovery
        .get_o_auth2_metadata(OAuth2MetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        metadata.token_endpoint,
        format!("{}/oauth2/token", s.http_url)
    );
}

#[tokio::test]
async fn each_role_does_what_it_grants_on_its_project_only() {
    let mut s = Server::start().await;
    let viewer = s.token("viewer-ci").await;
    let runner = s.token("runner-ci").await;
    let developer = s.token("developer-ci").await;
    let other_developer = s.token("other-developer").await;

    let denied = s
        .admin
        .create_task(call(task_in(PROJECT, "t"), Some(&viewer)))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(
        denied.message(),
        "permission denied: CreateTask needs the developer role on project \"flytesnacks\", \
         domain \"development\"; client:viewer-ci has viewer"
    );
    let denied = s
        .admin
        .create_task(call(task_in(PROJECT, "t"), Some(&runner)))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let denied = s
        .admin
        .create_task(call(task_in(PROJECT, "t"), Some(&other_developer)))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(
        denied.message().contains("has no role there"),
        "{}",
        denied.message()
    );

    s.admin
        .create_task(call(task_in(PROJECT, "t"), Some(&developer)))
        .await
        .unwrap();
    s.admin
        .create_task(call(task_in(OTHER_PROJECT, "t"), Some(&other_developer)))
        .await
        .unwrap();

    // Reads need only viewer.
    let listed = s
        .admin
        .list_executions(call(list_executions(), Some(&viewer)))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.executions.is_empty());

    // A runner launches (but cannot register); a viewer cannot launch.
    let task = id(ResourceType::Task, "t", "v1");
    let denied = s
        .admin
        .create_execution(call(execution_of(&task, "e0", ""), Some(&viewer)))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    s.admin
        .create_execution(call(execution_of(&task, "e1", "mallory"), Some(&runner)))
        .await
        .unwrap();
    // The execution records the token's subject, not the client's claim.
    let execution = s
        .admin
        .get_execution(call(
            admin::WorkflowExecutionGetRequest {
                id: Some(execution_id("e1")),
            },
            Some(&viewer),
        ))
        .await
        .unwrap()
        .into_inner();
    let principal = execution
        .spec
        .and_then(|spec| spec.metadata)
        .map(|m| m.principal)
        .unwrap_or_default();
    assert_eq!(principal, "runner-ci");

    // A relaunch is recorded as its caller's too.
    let relaunched = s
        .admin
        .relaunch_execution(call(
            admin::ExecutionRelaunchRequest {
                id: Some(execution_id("e1")),
                name: "e2".into(),
                overwrite_cache: false,
            },
            Some(&developer),
        ))
        .await
        .unwrap();
    assert!(relaunched.into_inner().id.is_some());
    let execution = s
        .admin
        .get_execution(call(
            admin::WorkflowExecutionGetRequest {
                id: Some(execution_id("e2")),
            },
            Some(&developer),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        execution
            .spec
            .and_then(|spec| spec.metadata)
            .map(|m| m.principal)
            .unwrap_or_default(),
        "developer-ci"
    );
}

#[tokio::test]
async fn projects_are_listed_to_those_who_may_view_them() {
    let mut s = Server::start().await;
    let names = |projects: admin::Projects| {
        let mut ids: Vec<String> = projects.projects.into_iter().map(|p| p.id).collect();
        ids.sort();
        ids
    };
    let viewer = s.token("viewer-ci").await;
    let listed = s
        .admin
        .list_projects(call(admin::ProjectListRequest::default(), Some(&viewer)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(listed), vec![PROJECT.to_string()]);
    let admin_token = s.token("admin-ci").await;
    let listed = s
        .admin
        .list_projects(call(
            admin::ProjectListRequest::default(),
            Some(&admin_token),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        names(listed),
        vec![PROJECT.to_string(), OTHER_PROJECT.to_string()]
    );
    let refused = s
        .admin
        .list_projects(call(admin::ProjectListRequest::default(), None))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
}

/// One HTTP/1 request with `headers`; returns the status, the `WWW-Authenticate` header and
/// the body.
async fn http(
    s: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Option<String>, String) {
    let address = s.http_url.strip_prefix("http://").unwrap();
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", address)
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = sender
        .send_request(
            request
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        challenge,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test]
async fn rest_calls_pass_the_same_gate() {
    let s = Server::start().await;
    let viewer = s.token("viewer-ci").await;
    let executions = format!("/api/v1/executions/{PROJECT}/{DOMAIN}?limit=10");
    let (status, challenge, _) = http(&s, "GET", &executions, None, "").await;
    assert_eq!(status, 401);
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    let (status, _, body) = http(&s, "GET", &executions, Some(&viewer), "").await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = http(&s, "POST", "/api/v1/tasks", Some(&viewer), "{}").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("CreateTask needs the developer role"),
        "{body}"
    );
    // Discovery is public.
    let (status, _, body) = http(&s, "GET", "/config/v1/flyte_client", None, "").await;
    assert_eq!(status, 200, "{body}");
    // Logs need View on the path's project.
    let logs = format!("/api/v1/logs/{OTHER_PROJECT}/{DOMAIN}/e1/n0/0/stdout");
    let (status, _, _) = http(&s, "GET", &logs, None, "").await;
    assert_eq!(status, 401);
    let (status, _, body) = http(&s, "GET", &logs, Some(&viewer), "").await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn mutations_are_audited_and_readable_by_admins_only() {
    let mut s = Server::start().await;
    let viewer = s.token("viewer-ci").await;
    let developer = s.token("developer-ci").await;
    let admin_token = s.token("admin-ci").await;
    s.admin
        .create_task(call(task_in(PROJECT, "t"), Some(&viewer)))
        .await
        .unwrap_err();
    s.admin
        .create_task(call(task_in(PROJECT, "t"), Some(&developer)))
        .await
        .unwrap();
    // Reads are not audited.
    s.admin
        .list_executions(call(list_executions(), Some(&viewer)))
        .await
        .unwrap();

    let path = format!("/api/v1/audit?project={PROJECT}&limit=10");
    let (status, challenge, _) = http(&s, "GET", &path, None, "").await;
    assert_eq!((status, challenge.as_deref()), (401, Some("Bearer")));
    let (status, _, body) = http(&s, "GET", &path, Some(&developer), "").await;
    assert_eq!(status, 403, "{body}");
    let (status, _, body) = http(&s, "GET", &path, Some(&admin_token), "").await;
    assert_eq!(status, 200, "{body}");
    let entries: serde_json::Value = serde_json::from_str(&body).unwrap();
    let entries = entries.as_array().unwrap();
    let summary: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["principal"].as_str().unwrap().to_string(),
                e["method"].as_str().unwrap().to_string(),
                e["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let create_task = "/flyteidl.service.AdminService/CreateTask".to_string();
    assert_eq!(
        summary,
        vec![
            (
                "client:developer-ci".into(),
                create_task.clone(),
                "OK".into()
            ),
            (
                "client:viewer-ci".into(),
                create_task,
                "PERMISSION_DENIED".into()
            ),
        ]
    );
    assert_eq!(entries[0]["project"], PROJECT);
    assert_eq!(entries[0]["domain"], DOMAIN);
    // The store agrees, and a project's log holds only its entries.
    assert_eq!(
        s.store
            .audit_entries(Some(OTHER_PROJECT), 10, None)
            .await
            .unwrap()
            .len(),
        0
    );
}

/// The data plane's interface: only an admin of every project may call it (a propeller claims,
/// saves and launches across all of them); a developer, or the admin of one project, may not,
/// and nothing without a token. Malformed requests are refused before anything is done.
#[tokio::test]
async fn the_data_plane_needs_the_admin_role_on_every_project() {
    use alula_idl::alula::plane::v1 as pb;
    use alula_idl::alula::plane::v1::control_plane_service_client::ControlPlaneServiceClient;

    let server = Server::start().await;
    // An admin of one project (created before any call reads the bindings).
    assert!(server
        .store
        .create_client(
            "project-admin",
            &hash_secret(&secret_of("project-admin")),
            ""
        )
        .await
        .unwrap());
    server
        .store
        .put_role_binding(
            &Subject::Client("project-admin".into()),
            PROJECT,
            "*",
            Role::Admin,
        )
        .await
        .unwrap();
    let mut plane = ControlPlaneServiceClient::connect(server.grpc_url.clone())
        .await
        .unwrap();
    let claim = || pb::ClaimRunsRequest {
        owner: "p1".into(),
        now: 1,
        lease_until: 2,
        limit: 10,
    };

    let anonymous = plane.claim_runs(call(claim(), None)).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated, "{anonymous:?}");
    for client in ["developer-ci", "project-admin"] {
        let token = server.token(client).await;
        let refused = plane
            .claim_runs(call(claim(), Some(&token)))
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            Code::PermissionDenied,
            "{client}: {refused:?}"
        );
        assert!(
            refused.message().contains("admin role on all projects"),
            "{refused:?}"
        );
        let refused = plane
            .save_run(call(pb::SaveRunRequest::default(), Some(&token)))
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            Code::PermissionDenied,
            "{client}: {refused:?}"
        );
    }

    let token = server.token("admin-ci").await;
    let runs = plane
        .claim_runs(call(claim(), Some(&token)))
        .await
        .unwrap()
        .into_inner()
        .runs;
    assert!(runs.is_empty(), "{runs:?}");
    let bad = [
        pb::ClaimRunsRequest {
            owner: String::new(),
            ..claim()
        },
        pb::ClaimRunsRequest {
            limit: 0,
            ..claim()
        },
        pb::ClaimRunsRequest {
            owner: "x".repeat(5000),
            ..claim()
        },
    ];
    for request in bad {
        let refused = plane
            .claim_runs(call(request, Some(&token)))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    }
    let no_key = plane
        .save_run(call(pb::SaveRunRequest::default(), Some(&token)))
        .await
        .unwrap_err();
    assert_eq!(no_key.code(), Code::InvalidArgument, "{no_key:?}");
    let no_event = plane
        .record_event(call(pb::RecordEventRequest::default(), Some(&token)))
        .await
        .unwrap_err();
    assert_eq!(no_event.code(), Code::InvalidArgument, "{no_event:?}");
}
