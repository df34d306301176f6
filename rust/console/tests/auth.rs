//! The console with authentication on: pages send strangers to the login, the built-in login
//! turns a client's id and secret into an HttpOnly session cookie, a viewer sees executions
//! without controls and a forged action of theirs is refused with nothing changed, a refused
//! session is cleared, and an OIDC callback whose state is not the login's sets nothing.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod fixture;

use std::time::Duration;

use alula_admin::auth::{AuthMode, AuthSettings};
use alula_auth::{Binding, Role, Subject};
use alula_idl::flyteidl::admin::{
    NamedEntityIdentifier, ResourceListRequest, WorkflowExecutionGetRequest,
};
use alula_idl::flyteidl::core::workflow_execution::Phase;
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use fixture::{exec_id, Console, PUBLIC_URL};

const EXECUTIONS: &str = "/console/projects/flytesnacks/domains/development/executions";
const VIEWER_SECRET: &str = "viewer-secret-0123456789";
const RUNNER_SECRET: &str = "runner-secret-0123456789";

fn binding(subject: &str, role: Role) -> Binding {
    Binding {
        subject: Subject::parse(subject).unwrap(),
        project: "*".into(),
        domain: "*".into(),
        role,
    }
}

/// A console in built-in mode with clients `viewer` and `runner` holding those roles.
async fn builtin(lifetime: Duration) -> Console {
    let settings = AuthSettings {
        mode: AuthMode::Builtin,
        issuer: PUBLIC_URL.into(),
        token_lifetime: lifetime,
        leeway: Duration::ZERO,
        bindings: vec![
            binding("client:viewer", Role::Viewer),
            binding("client:runner", Role::Runner),
        ],
        ..Default::default()
    };
    let console = Console::with_auth(settings).await;
    for (id, secret) in [("viewer", VIEWER_SECRET), ("runner", RUNNER_SECRET)] {
        let hash = alula_auth::secret::hash_secret(secret);
        assert!(console
            .store
            .create_client(id, &hash, "test")
            .await
            .unwrap());
    }
    console
}

fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn location(headers: &HeaderMap) -> &str {
    headers.get(header::LOCATION).unwrap().to_str().unwrap()
}

/// POSTs the built-in login form: the status, the headers and the body.
async fn post_login(
    console: &Console,
    client_id: &str,
    secret: &str,
    next: &str,
) -> (StatusCode, HeaderMap, String) {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("client_secret", secret)
        .append_pair("next", next)
        .finish();
    let request = Request::post("/console/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    console.exchange(request).await
}

/// Signs in as `client_id`: the `Cookie` header to send afterwards.
async fn sign_in(console: &Console, client_id: &str, secret: &str) -> String {
    let (status, headers, body) = post_login(console, client_id, secret, "/console").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let session = set_cookies(&headers)
        .into_iter()
        .find(|c| c.starts_with("alula_session="))
        .expect("a session cookie");
    session.split(';').next().unwrap().to_string()
}

async fn get_as(console: &Console, uri: &str, cookie: &str) -> (StatusCode, HeaderMap, String) {
    let request = Request::get(uri)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap();
    console.exchange(request).await
}

async fn post_json_as(
    console: &Console,
    uri: &str,
    cookie: &str,
    json: &str,
) -> (StatusCode, String) {
    let request = Request::post(uri)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json.to_string()))
        .unwrap();
    console.send(request).await
}

#[tokio::test]
async fn strangers_are_sent_to_the_login_and_back() {
    let console = builtin(Duration::from_secs(3600)).await;
    let (status, headers, _) = get_as(&console, &format!("{EXECUTIONS}?phase=FAILED"), "").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        location(&headers),
        "/console/login?next=%2Fconsole%2Fprojects%2Fflytesnacks%2Fdomains%2Fdevelopment%2Fexecutions%3Fphase%3DFAILED"
    );
    // Actions answer JSON.
    let (status, body) = post_json_as(&console, "/console/actions/relaunch", "", "{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("\"code\":16"), "{body}");
    // The login form and the assets are public; the form keeps `next`.
    let (status, _, form) = get_as(&console, "/console/login?next=%2Fconsole%2Fprojects", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        form.contains(r#"name="next" value="/console/projects""#),
        "{form}"
    );
    assert!(form.contains("alula auth create-client"));
    let (status, _, _) = get_as(&console, "/console/assets/console.css", "").await;
    assert_eq!(status, StatusCode::OK);
    // Another site as `next` becomes the console's home.
    for bad in [
        "%2F%2Fevil.example",
        "https%3A%2F%2Fevil",
        "%2F%5Cevil.example",
    ] {
        let (_, _, form) = get_as(&console, &format!("/console/login?next={bad}"), "").await;
        assert!(
            form.contains(r#"name="next" value="/console""#),
            "{bad}: {form}"
        );
        let (status, headers, _) =
            post_login(&console, "runner", RUNNER_SECRET, &urldecode(bad)).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location(&headers), "/console", "{bad}");
    }
}

fn urldecode(text: &str) -> String {
    form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned()
}

#[tokio::test]
async fn the_builtin_login_sets_an_http_only_session_only_for_the_right_secret() {
    let console = builtin(Duration::from_secs(3600)).await;
    let (status, headers, _) = post_login(&console, "viewer", VIEWER_SECRET, EXECUTIONS).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), EXECUTIONS);
    let cookies = set_cookies(&headers);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let cookie = &cookies[0];
    assert!(cookie.starts_with("alula_session=ey"), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");

    for (id, secret) in [
        ("viewer", "wrong"),
        ("nobody", VIEWER_SECRET),
        ("viewer", ""),
    ] {
        let (status, headers, body) = post_login(&console, id, secret, EXECUTIONS).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{id}");
        assert!(set_cookies(&headers).is_empty(), "{id}");
        assert!(body.contains("id=\"login-error\""), "{body}");
        assert!(!body.contains(VIEWER_SECRET));
    }

    // Signed in: the page and the header with the client's name and a way out.
    let session = sign_in(&console, "viewer", VIEWER_SECRET).await;
    let (status, _, page) = get_as(&console, EXECUTIONS, &session).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(r#"data-user="viewer""#), "{page}");
    assert!(page.contains(r#"action="/console/logout""#));
    let request = Request::post("/console/logout")
        .header(header::COOKIE, &session)
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = console.exchange(request).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/console/login");
    assert!(set_cookies(&headers)[0].contains("alula_session=; Path=/; Max-Age=0"));
}

#[tokio::test]
async fn a_viewer_sees_no_controls_and_forged_actions_change_nothing() {
    let console = builtin(Duration::from_secs(3600)).await;
    let basics = console.register_basics("v1", None).await;
    console
        .launch_as(&basics.launch_plan, "run-a", "ann", &[])
        .await;
    console.report("run-a", Phase::Running).await;
    let page = format!("{EXECUTIONS}/run-a");
    let lp_page = "/console/projects/flytesnacks/domains/development/launchPlans/lp";
    let launch_form = format!("{lp_page}/launch");

    let runner = sign_in(&console, "runner", RUNNER_SECRET).await;
    let (_, _, html) = get_as(&console, &page, &runner).await;
    for action in ["terminate", "relaunch"] {
        assert!(
            html.contains(&format!(r#"data-action="{action}""#)),
            "{action}"
        );
    }
    let (_, _, html) = get_as(&console, lp_page, &runner).await;
    assert!(html.contains(r#"data-action="launch""#));
    let (status, _, _) = get_as(&console, &launch_form, &runner).await;
    assert_eq!(status, StatusCode::OK);

    let viewer = sign_in(&console, "viewer", VIEWER_SECRET).await;
    let (status, _, html) = get_as(&console, &page, &viewer).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(r#"data-execution="run-a""#));
    assert!(!html.contains("data-action="), "{html}");
    assert!(!html.contains("terminate-dialog"));
    let (_, _, html) = get_as(&console, lp_page, &viewer).await;
    assert!(!html.contains(r#"data-action="launch""#), "{html}");
    let (status, _, html) = get_as(&console, &launch_form, &viewer).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");

    let run_a = r#"{"project":"flytesnacks","domain":"development","name":"run-a"}"#;
    let (status, body) = post_json_as(&console, "/console/actions/terminate", &viewer, run_a).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("\"code\":7"), "{body}");
    let launch = r#"{"launch_plan":{"project":"flytesnacks","domain":"development","name":"lp"},"inputs":{}}"#;
    let (status, body) = post_json_as(&console, "/console/actions/launch", &viewer, launch).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = post_json_as(&console, "/console/actions/relaunch", &viewer, run_a).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Nothing changed: run-a still runs, and it is the only execution.
    let execution = AdminService::get_execution(
        console.admin(),
        tonic::Request::new(WorkflowExecutionGetRequest {
            id: Some(exec_id("run-a")),
        }),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(
        execution.closure.unwrap().phase,
        Phase::Running as i32,
        "not terminated"
    );
    let listed = AdminService::list_executions(
        console.admin(),
        tonic::Request::new(ResourceListRequest {
            id: Some(NamedEntityIdentifier {
                project: "flytesnacks".into(),
                domain: "development".into(),
                ..Default::default()
            }),
            limit: 100,
            ..Default::default()
        }),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(listed.executions.len(), 1, "nothing launched");

    // The runner's terminate goes through.
    let (status, body) = post_json_as(&console, "/console/actions/terminate", &runner, run_a).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn an_expired_session_is_cleared_and_sent_to_the_login() {
    let console = builtin(Duration::from_secs(1)).await;
    let session = sign_in(&console, "viewer", VIEWER_SECRET).await;
    let (status, _, _) = get_as(&console, EXECUTIONS, &session).await;
    assert_eq!(status, StatusCode::OK, "fresh session works");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    for cookie in [session.as_str(), "alula_session=not-a-token"] {
        let (status, headers, _) = get_as(&console, EXECUTIONS, cookie).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{cookie}");
        assert!(location(&headers).starts_with("/console/login?next="));
        let cleared = set_cookies(&headers);
        assert!(
            cleared
                .iter()
                .any(|c| c.starts_with("alula_session=;") && c.contains("Max-Age=0")),
            "{cleared:?}"
        );
    }
}

/// A provider that publishes discovery and an empty key set (the console never gets as far as
/// a token here).
async fn fake_provider() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let document = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
    })
    .to_string();
    let router = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || {
                let document = document.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], document) }
            }),
        )
        .route(
            "/jwks",
            axum::routing::get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"keys":[]}"#,
                )
            }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await });
    issuer
}

#[tokio::test]
async fn the_oidc_login_goes_to_the_provider_and_refuses_a_foreign_state() {
    let issuer = fake_provider().await;
    let settings = AuthSettings {
        mode: AuthMode::Oidc,
        issuer: issuer.clone(),
        console_client_id: "alula-console".into(),
        ..Default::default()
    };
    let console = Console::with_auth(settings).await;
    let (status, headers, _) =
        get_as(&console, "/console/login?next=%2Fconsole%2Fprojects", "").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let to = location(&headers);
    assert!(
        to.starts_with(&format!(
            "{issuer}/authorize?response_type=code&client_id=alula-console"
        )),
        "{to}"
    );
    assert!(to.contains("code_challenge_method=S256"), "{to}");
    assert!(to.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A8088%2Fconsole%2Foauth2%2Fcallback"));
    let login = set_cookies(&headers)
        .into_iter()
        .find(|c| c.starts_with("alula_login="))
        .expect("the login's cookie");
    assert!(
        login.contains("HttpOnly")
            && login.contains("Path=/console")
            && login.contains("Max-Age=600")
    );
    let login = login.split(';').next().unwrap().to_string();

    // A state that is not the login's (or no login at all): 400, no session.
    for cookie in [login.as_str(), ""] {
        let (status, headers, body) = get_as(
            &console,
            "/console/oauth2/callback?code=abc&state=forged",
            cookie,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            !set_cookies(&headers)
                .iter()
                .any(|c| c.starts_with("alula_session")),
            "no session"
        );
    }
}
