//! The HTTP port against requests a web page can make (issue 12): a page may POST `text/plain`
//! or a form to any address without a CORS preflight, and a DNS-rebinding page reaches the
//! server under its own host name. Such requests are refused (415 for the content type, 403 for
//! the Origin or Host) and change nothing, while the clients Alula serves (JSON, binary
//! protobuf, signed data-proxy URLs, Kubernetes probes) keep working.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use alula_admin::Store;
use alula_idl::flyteidl::admin::{self as admin, TaskCreateRequest, TaskSpec};
use alula_idl::flyteidl::core::{task_template, Container, ResourceType};
use base64::Engine;
use common::builders::*;
use common::http::{send, Reply, BINARY, JSON};
use common::server::TestServer;
use md5::{Digest, Md5};
use prost::Message;
use serde_json::{json, Value};

/// What a hostile page would register: a raw container that runs a shell command.
fn shell_task(name: &str) -> TaskCreateRequest {
    let mut template = int_task(name, "v1", "alpine");
    template.r#type = "raw-container".into();
    template.target = Some(task_template::Target::Container(Container {
        image: "alpine".into(),
        command: vec!["sh".into(), "-c".into()],
        args: vec!["touch /tmp/alula-pwned".into()],
        ..Default::default()
    }));
    TaskCreateRequest {
        id: template.id.clone(),
        spec: Some(TaskSpec {
            template: Some(template),
            description: None,
        }),
    }
}

fn execution_request(name: &str, task: &str) -> Value {
    json!({
        "project": PROJECT, "domain": DOMAIN, "name": name,
        "spec": {"launchPlan": {"resourceType": "TASK", "project": PROJECT, "domain": DOMAIN,
                                "name": task, "version": "v1"}},
        "inputs": {"literals": {"a": {"scalar": {"primitive": {"integer": "1"}}}}},
    })
}

async fn request(
    s: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Reply {
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    send(&s.http_url, method, path, headers, body).await
}

/// A 200 JSON reply of a plain same-host JSON call.
async fn ok_json(s: &TestServer, method: &str, path: &str, body: &Value) -> Value {
    let reply = request(s, method, path, &[("content-type", JSON)], body).await;
    assert_eq!(reply.status, 200, "{method} {path}: {}", reply.text());
    reply.json()
}

/// A refusal: `status` with the gateway's `{code, message}` body naming `words`.
fn assert_refused(reply: &Reply, status: u16, code: i32, words: &[&str]) {
    assert_eq!(reply.status, status, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["code"], code, "{body}");
    let message = body["message"].as_str().unwrap();
    for word in words {
        assert!(message.contains(word), "{word:?} not in {message:?}");
    }
}

async fn task_names(s: &TestServer) -> Vec<Value> {
    let path = format!("/api/v1/task_ids/{PROJECT}/{DOMAIN}?limit=100");
    let ids = ok_json(s, "GET", &path, &Value::Null).await;
    ids["entities"].as_array().cloned().unwrap_or_default()
}

async fn executions(s: &TestServer) -> Vec<Value> {
    let path = format!("/api/v1/executions/{PROJECT}/{DOMAIN}?limit=100");
    let list = ok_json(s, "GET", &path, &Value::Null).await;
    list["executions"].as_array().cloned().unwrap_or_default()
}

async fn browser_content_types_are_refused(store: Store) {
    let s = TestServer::start(store).await;
    let task = serde_json::to_value(shell_task("pwn")).unwrap();
    let execution = execution_request("pwned", "pwn");
    // What `fetch(..., {mode: 'no-cors'})`, a form and `navigator.sendBeacon` can send
    // without a preflight, and a body with no type at all.
    for content_type in [
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let headers: Vec<(&str, &str)> = content_type
            .map(|t| ("content-type", t))
            .into_iter()
            .collect();
        for (path, body) in [("/api/v1/tasks", &task), ("/api/v1/executions", &execution)] {
            let reply = request(&s, "POST", path, &headers, body).await;
            assert_refused(&reply, 415, 3, &["content type", "application/json"]);
        }
    }
    assert_eq!(task_names(&s).await, Vec::<Value>::new());
    assert_eq!(executions(&s).await, Vec::<Value>::new());

    // PUT and DELETE too: nothing is stored or terminated.
    let attributes = json!({"attributes": {"matchingAttributes": {"taskResourceAttributes": {
        "defaults": {"cpu": "1"}}}}});
    let path = format!("/api/v1/project_attributes/{PROJECT}");
    let text = [("content-type", "text/plain")];
    assert_refused(
        &request(&s, "PUT", &path, &text, &attributes).await,
        415,
        3,
        &[],
    );
    let reply = request(
        &s,
        "GET",
        &format!("{path}?resource_type=TASK_RESOURCE"),
        &[],
        &Value::Null,
    )
    .await;
    assert_refused(&reply, 404, 5, &[]);

    ok_json(
        &s,
        "POST",
        "/api/v1/tasks",
        &serde_json::to_value(shell_task("t")).unwrap(),
    )
    .await;
    ok_json(
        &s,
        "POST",
        "/api/v1/executions",
        &execution_request("e1", "t"),
    )
    .await;
    let terminate = format!("/api/v1/executions/{PROJECT}/{DOMAIN}/e1");
    let cause = json!({"cause": "a web page"});
    assert_refused(
        &request(&s, "DELETE", &terminate, &text, &cause).await,
        415,
        3,
        &[],
    );
    assert_refused(
        &request(&s, "DELETE", &terminate, &[], &Value::Null).await,
        415,
        3,
        &[],
    );
    let record = ok_json(&s, "GET", &terminate, &Value::Null).await;
    assert_eq!(record["closure"]["phase"], "QUEUED", "{record}");
    assert_eq!(record["closure"]["abortMetadata"], Value::Null, "{record}");
}

async fn foreign_origins_are_refused(store: Store) {
    let s = TestServer::start_with(store, |config| {
        config
            .http_access
            .allowed_origins
            .push("https://console.example.com".into());
    })
    .await;
    let task = serde_json::to_value(shell_task("pwn")).unwrap();
    for origin in ["http://attacker.example", "null", "http://127.0.0.1:1"] {
        let headers = [("content-type", JSON), ("origin", origin)];
        let reply = request(&s, "POST", "/api/v1/tasks", &headers, &task).await;
        assert_refused(&reply, 403, 7, &["origin", origin]);
        let reply = request(&s, "GET", "/api/v1/projects", &headers, &Value::Null).await;
        assert_refused(&reply, 403, 7, &["origin"]);
    }
    assert_eq!(task_names(&s).await, Vec::<Value>::new());

    // The server's own origin, and one the configuration allows.
    let own = s.http_url.clone();
    for origin in [own.as_str(), "https://console.example.com"] {
        let headers = [("content-type", JSON), ("origin", origin)];
        let name = if origin == own { "same" } else { "listed" };
        let body = serde_json::to_value(shell_task(name)).unwrap();
        let reply = request(&s, "POST", "/api/v1/tasks", &headers, &body).await;
        assert_eq!(reply.status, 200, "{origin}: {}", reply.text());
    }
    assert_eq!(task_names(&s).await.len(), 2);
}

async fn rebinding_hosts_are_refused(store: Store) {
    let s = TestServer::start_with(store, |config| {
        config
            .http_access
            .allowed_hosts
            .push("alula.example.com".into());
    })
    .await;
    let task = serde_json::to_value(shell_task("pwn")).unwrap();
    for host in [
        "attacker.example:8088",
        "attacker.example",
        "localhost.attacker.example",
    ] {
        let json = [("content-type", JSON), ("host", host)];
        let reply = request(&s, "POST", "/api/v1/tasks", &json, &task).await;
        assert_refused(&reply, 403, 7, &["host", host]);
        for path in [
            "/api/v1/projects",
            "/metrics",
            "/download/x?expires=1&signature=00",
        ] {
            let reply = request(&s, "GET", path, &[("host", host)], &Value::Null).await;
            assert_refused(&reply, 403, 7, &["host"]);
        }
    }
    assert_eq!(task_names(&s).await, Vec::<Value>::new());

    // Loopback names on any port, IP addresses (a probe's pod IP) and configured names.
    for host in [
        "localhost:1234",
        "127.0.0.1",
        "[::1]:8088",
        "10.1.2.3:8088",
        "alula.example.com",
        "ALULA.example.com:443",
    ] {
        for path in ["/healthz", "/readyz", "/metrics", "/api/v1/projects"] {
            let reply = request(&s, "GET", path, &[("host", host)], &Value::Null).await;
            assert_eq!(reply.status, 200, "{host} {path}: {}", reply.text());
        }
    }
}

async fn api_clients_and_signed_urls_still_work(store: Store) {
    let s = TestServer::start(store).await;
    let json_utf8 = "application/json; charset=utf-8";
    let body = serde_json::to_vec(&shell_task("json")).unwrap();
    let reply = send(
        &s.http_url,
        "POST",
        "/api/v1/tasks",
        &[("content-type", json_utf8)],
        body,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    for (content_type, name) in [(BINARY, "octet"), ("application/x-protobuf", "protobuf")] {
        let headers = [("content-type", content_type), ("accept", BINARY)];
        let body = shell_task(name).encode_to_vec();
        let reply = send(&s.http_url, "POST", "/api/v1/tasks", &headers, body).await;
        assert_eq!(reply.status, 200, "{content_type}: {}", reply.text());
        admin::TaskCreateResponse::decode(reply.body.as_slice()).unwrap();
    }
    assert_eq!(task_names(&s).await.len(), 3);
    let path = format!("/api/v1/tasks/{PROJECT}/{DOMAIN}/octet/v1");
    let task = ok_json(&s, "GET", &path, &Value::Null).await;
    assert_eq!(
        task["id"]["resourceType"],
        ResourceType::Task.as_str_name(),
        "{task}"
    );

    // A signed upload as flytekit PUTs it (no content type, Content-MD5), then as Alula's
    // client does (application/octet-stream), and the signed download of what was stored.
    for (file, content_type) in [("a.txt", None), ("b.txt", Some(BINARY))] {
        let data = format!("contents of {file}").into_bytes();
        let md5 = Md5::digest(&data);
        let request_body = json!({"project": PROJECT, "domain": DOMAIN, "filenameRoot": "root",
            "filename": file, "contentMd5": base64::engine::general_purpose::STANDARD.encode(md5)});
        let reply = ok_json(&s, "POST", "/api/v1/dataproxy/artifact_urn", &request_body).await;
        let signed = reply["signedUrl"].as_str().unwrap().to_string();
        let native = reply["nativeUrl"].as_str().unwrap().to_string();
        let path = signed.strip_prefix(&s.http_url).unwrap();
        let md5_header = base64::engine::general_purpose::STANDARD.encode(md5);
        let mut headers = vec![("content-md5", md5_header.as_str())];
        headers.extend(content_type.map(|t| ("content-type", t)));
        let reply = send(&s.http_url, "PUT", path, &headers, data.clone()).await;
        assert_eq!(reply.status, 200, "{file}: {}", reply.text());

        let query = format!(
            "/api/v1/dataproxy/artifact_urn?native_url={}",
            encode(&native)
        );
        let location = ok_json(&s, "GET", &query, &Value::Null).await;
        let download = location["signedUrl"].as_str().unwrap();
        let path = download.strip_prefix(&s.http_url).unwrap();
        let reply = send(&s.http_url, "GET", path, &[], Vec::new()).await;
        assert_eq!(reply.status, 200, "{file}: {}", reply.text());
        assert_eq!(reply.body, data);
    }
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

on_both_backends!(
    browser_content_types_are_refused,
    foreign_origins_are_refused,
    rebinding_hosts_are_refused,
    api_clients_and_signed_urls_still_work,
);
