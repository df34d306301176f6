//! Fuzzing the REST gateway: arbitrary methods, paths (from every route template in the
//! descriptor set, filled with odd values, and plain noise), query strings and bodies (JSON of
//! random requests, damaged JSON, binary protobuf, garbage) sent through the router in-process.
//! Every answer must be a success or a JSON `{code, message}` error whose HTTP status is not a
//! server fault (5xx other than 501 for an RPC Alula does not implement); never a panic or hang.
//!
//! Case counts: `ALULA_FUZZ_CASES`, seed: `ALULA_FUZZ_SEED` (see `rust/fuzz/README.md`).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;
mod fuzz_support;

use std::sync::OnceLock;
use std::time::Duration;

use alula_fuzz::{config, mutate, Entropy, Schema};
use alula_idl::google::api::http_rule::Pattern;
use alula_idl::registry;
use axum::body::Body;
use axum::http::Request;
use axum::Router;
use fuzz_support::{fixture, served};
use http_body_util::BodyExt;
use proptest::prelude::*;
use tower::ServiceExt;

const LIMIT: Duration = Duration::from_secs(20);

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(Schema::load)
}

fn router() -> Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER
        .get_or_init(|| {
            let f = fixture();
            let _guard = f.runtime.enter();
            alula_admin::rest::router(f.api.clone(), f.data_proxy.clone()).unwrap()
        })
        .clone()
}

/// (verb, path template, request type, body field) of every REST binding of a served service.
fn templates() -> &'static [(String, String, String, String)] {
    static TEMPLATES: OnceLock<Vec<(String, String, String, String)>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        let mut out = Vec::new();
        for service in served().filter_map(|s| schema().service(s)) {
            for m in &service.methods {
                let Some(rule) = &m.http else { continue };
                for r in std::iter::once(rule).chain(&rule.additional_bindings) {
                    let (verb, path) = match &r.pattern {
                        Some(Pattern::Get(p)) => ("GET", p),
                        Some(Pattern::Post(p)) => ("POST", p),
                        Some(Pattern::Put(p)) => ("PUT", p),
                        Some(Pattern::Delete(p)) => ("DELETE", p),
                        Some(Pattern::Patch(p)) => ("PATCH", p),
                        _ => continue,
                    };
                    out.push((verb.into(), path.clone(), m.input.clone(), r.body.clone()));
                }
            }
        }
        assert!(out.len() >= 50, "only {} REST bindings", out.len());
        out
    })
}

const SEGMENTS: &[&str] = &[
    "flytesnacks",
    "development",
    "t0",
    "wf",
    "lp",
    "v1",
    "x",
    "n0",
    "1",
    "-1",
    "",
    "..",
    "%2F",
    "%ZZ",
    "%C3%A9",
    "%00",
    "%FF",
    "a%20b",
    "TASK",
    "1.5",
    "true",
];
const QUERY_KEYS: &[&str] = &[
    "limit",
    "token",
    "filters",
    "sort_by.key",
    "sort_by.direction",
    "id.project",
    "id.name",
    "resource_type",
    "org",
    "bogus",
    "id",
    "id.project.x",
    "expires_in",
    "limit.x",
];
const QUERY_VALUES: &[&str] = &[
    "10",
    "0",
    "-1",
    "4294967296",
    "x",
    "eq(phase,RUNNING)",
    "ASCENDING",
    "7",
    "true",
    "",
    "%FF",
    "é",
];

/// A path from a route template with each `{field}` replaced, or noise.
fn path(entropy: &mut Entropy<'_>) -> String {
    if entropy.chance(25) {
        let segments: Vec<&str> = (0..entropy.below(6))
            .map(|_| *entropy.pick(&["api", "v1", "tasks", "..", "", "%00", "me", "x"]))
            .collect();
        return format!("/{}", segments.join("/"));
    }
    let (_, template, _, _) = entropy.pick(templates());
    let mut out = String::new();
    let mut rest = template.as_str();
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        let segment: &str = SEGMENTS[entropy.below(SEGMENTS.len())];
        out.push_str(segment);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn query(entropy: &mut Entropy<'_>) -> String {
    let pairs: Vec<String> = (0..entropy.below(4))
        .map(|_| {
            format!(
                "{}={}",
                entropy.pick(QUERY_KEYS),
                entropy.pick(QUERY_VALUES)
            )
        })
        .collect();
    pairs.join("&")
}

/// A body and its content type: JSON of a random request of the route's type (maybe
/// damaged), its binary protobuf, or garbage.
fn body(entropy: &mut Entropy<'_>) -> (Vec<u8>, &'static str) {
    let (_, _, input, _) = entropy.pick(templates());
    let mut bytes = schema().generate(input, entropy);
    match entropy.below(5) {
        0 => (Vec::new(), "application/json"),
        1 => {
            if entropy.chance(60) {
                mutate(&mut bytes, entropy);
            }
            (bytes, "application/octet-stream")
        }
        2 => {
            let len = entropy.below(64);
            (
                (0..len).map(|_| entropy.byte()).collect(),
                "application/json",
            )
        }
        _ => {
            let mut json = registry::to_json(input, &bytes)
                .unwrap_or_default()
                .into_bytes();
            if entropy.chance(60) {
                mutate(&mut json, entropy);
            }
            (json, "application/json")
        }
    }
}

fn check(method: &str, uri: &str, body: Vec<u8>, content_type: &str) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "127.0.0.1:8088")
        .header("content-type", content_type)
        .header(
            "accept",
            if content_type.contains("octet") {
                content_type
            } else {
                "application/json"
            },
        )
        .body(Body::from(body));
    // A URI the HTTP layer itself refuses never reaches the router.
    let Ok(request) = request else { return };
    let f = fixture();
    let router = router();
    let result = f.runtime.block_on(async move {
        let task = tokio::spawn(async move {
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            let content_type = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap_or_default().to_string())
                .unwrap_or_default();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, content_type, body)
        });
        tokio::time::timeout(LIMIT, task).await
    });
    let (status, content_type, body) = match result {
        Err(_) => panic!("{method} {uri} took longer than {LIMIT:?}: a hang"),
        Ok(Err(join)) => panic!("{method} {uri} panicked: {join}"),
        Ok(Ok(reply)) => reply,
    };
    let text = String::from_utf8_lossy(&body);
    assert!(
        !status.is_server_error() || status.as_u16() == 501,
        "{method} {uri} answered {status}: {text}"
    );
    // axum's own refusals (405 on a known path, 415, 413) are plain text; the gateway's are
    // JSON `{code, message}`.
    // A HEAD answer has its headers only.
    if status.is_client_error() && content_type.starts_with("application/json") && method != "HEAD"
    {
        let value: serde_json::Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{method} {uri} {status}: error body is not JSON: {e}"));
        assert!(
            value["code"].is_i64() && value["message"].is_string(),
            "{value}"
        );
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn any_request_gets_a_client_error_or_an_answer(
        entropy in prop::collection::vec(any::<u8>(), 64..1024),
    ) {
        let mut e = Entropy::new(&entropy);
        let method = *e.pick(&["GET", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]);
        let uri = match query(&mut e) {
            q if q.is_empty() => path(&mut e),
            q => format!("{}?{q}", path(&mut e)),
        };
        let (body, content_type) = body(&mut e);
        check(method, &uri, body, content_type);
    }
}

/// Each binding with its own verb, a body of its own request type and values that exist: the
/// routes' happy paths are reached in every run, not only by chance.
#[test]
fn every_route_answers_its_own_verb() {
    for (verb, template, input, body_field) in templates() {
        let entropy: Vec<u8> = (0..512u32).map(|i| (i * 97 % 251) as u8).collect();
        let mut e = Entropy::new(&entropy);
        let path = template
            .split('/')
            .map(|s| if s.starts_with('{') { "flytesnacks" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let body = if body_field.is_empty() {
            Vec::new()
        } else {
            let bytes = schema().generate(input, &mut e);
            registry::to_json(input, &bytes)
                .unwrap_or_default()
                .into_bytes()
        };
        check(verb, &path, body, "application/json");
    }
}
