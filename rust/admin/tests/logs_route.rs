//! `GET /api/v1/logs/...`: an attempt's stored stdout or stderr, streamed, behind the HTTP
//! guard, with every id component validated; 404 when there is no such log; logs not stored
//! yet come from the live source the server wires in (a pod's).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use alula_admin::logs::{log_key, log_url, AttemptLogId, LiveLogs, LogStream};
use alula_admin::{AdminConfig, Store};
use axum::body::Body;
use axum::http::Request;
use common::http::send;
use common::server::TestServer;
use futures::StreamExt;
use http_body_util::BodyExt;
use tower::ServiceExt;

fn id(retry: u32) -> AttemptLogId {
    AttemptLogId {
        project: "flytesnacks".into(),
        domain: "development".into(),
        name: "exec1".into(),
        node_id: "n0".into(),
        retry_attempt: retry,
        array_index: None,
    }
}

fn put(storage: &std::path::Path, key: &str, bytes: &[u8]) {
    let path = storage.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn stored_logs_are_served_checked_and_streamed() {
    let server = TestServer::start(Store::connect("sqlite::memory:").await.unwrap()).await;
    put(
        &server.storage,
        &log_key(&id(0), "stderr"),
        b"Traceback: boom\n<script>alert(1)</script>\n",
    );
    let path = log_url("", &id(0), "stderr");
    assert_eq!(
        path,
        "/api/v1/logs/flytesnacks/development/exec1/n0/0/stderr"
    );

    let reply = send(&server.http_url, "GET", &path, &[], Vec::new()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.text().starts_with("Traceback: boom"));
    // What a task prints never runs as a page of this origin.
    assert_eq!(reply.content_type, "text/plain; charset=utf-8");

    // The HTTP guard: another site's page, or a DNS-rebinding host, is refused.
    let foreign = [("origin", "https://evil.example")];
    assert_eq!(
        send(&server.http_url, "GET", &path, &foreign, Vec::new())
            .await
            .status,
        403
    );
    let rebinding = [("host", "evil.example:8088")];
    assert_eq!(
        send(&server.http_url, "GET", &path, &rebinding, Vec::new())
            .await
            .status,
        403
    );

    // A pod's one combined log answers for either stream.
    put(
        &server.storage,
        &log_key(&id(4), "output"),
        b"both streams\n",
    );
    for stream in ["stdout", "stderr", "output"] {
        let reply = send(
            &server.http_url,
            "GET",
            &log_url("", &id(4), stream),
            &[],
            Vec::new(),
        )
        .await;
        assert_eq!(
            (reply.status, reply.text().as_str()),
            (200, "both streams\n")
        );
    }

    // Missing: another attempt, the other stream.
    for missing in [
        "/api/v1/logs/flytesnacks/development/exec1/n0/1/stderr",
        "/api/v1/logs/flytesnacks/development/exec1/n0/0/stdout",
        "/api/v1/logs/flytesnacks/development/exec1/n0/0/stderr?index=3",
    ] {
        let reply = send(&server.http_url, "GET", missing, &[], Vec::new()).await;
        assert_eq!(reply.status, 404, "{missing}: {}", reply.text());
    }

    // Every component is validated; nothing escapes the attempt's folder.
    for bad in [
        "/api/v1/logs/Flytesnacks/development/exec1/n0/0/stderr",
        "/api/v1/logs/flytesnacks/dev_x/exec1/n0/0/stderr",
        "/api/v1/logs/flytesnacks/development/1exec/n0/0/stderr",
        "/api/v1/logs/flytesnacks/development/exec1/%2E%2E/0/stderr",
        "/api/v1/logs/flytesnacks/development/exec1/n%0A0/0/stderr",
        "/api/v1/logs/flytesnacks/development/exec1/n0/-1/stderr",
        "/api/v1/logs/flytesnacks/development/exec1/n0/0/outputs.pb",
        "/api/v1/logs/flytesnacks/development/exec1/n0/0/stderr?index=x",
    ] {
        let reply = send(&server.http_url, "GET", bad, &[], Vec::new()).await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text());
    }
}

#[tokio::test]
async fn large_logs_are_streamed_in_chunks() {
    let dir = TempDir::new();
    let big: Vec<u8> = (0..(24u32 << 20)).map(|i| b'a' + (i % 26) as u8).collect();
    put(dir.path(), &log_key(&id(2), "stdout"), &big);
    let config = AdminConfig::new(dir.path().into(), "http://x".into(), b"k".to_vec());
    let router = alula_admin::logs::router(Arc::new(config), None);
    let response = router
        .oneshot(
            Request::get(log_url("", &id(2), "stdout"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let (mut frames, mut bytes, mut largest) = (0usize, 0usize, 0usize);
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        frames += 1;
        bytes += data.len();
        largest = largest.max(data.len());
    }
    assert_eq!(bytes, big.len());
    // Served piece by piece, never as one buffer of the whole log.
    assert!(
        frames > 1 && largest < big.len() / 2,
        "{frames} frames, largest {largest}"
    );
}

/// A folder removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("alula-logs-test-{:x}", rand::random::<u64>())))
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Pods;

impl LiveLogs for Pods {
    fn logs<'a>(
        &'a self,
        id: &'a AttemptLogId,
        _stream: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Option<LogStream>, String>> + Send + 'a>> {
        Box::pin(async move {
            if id.retry_attempt != 5 {
                return Ok(None);
            }
            let chunks = vec![Ok(axum::body::Bytes::from("live ")), Ok("pod log".into())];
            Ok(Some(futures::stream::iter(chunks).boxed()))
        })
    }
}

#[tokio::test]
async fn logs_not_stored_yet_come_from_the_live_source() {
    let dir = TempDir::new();
    let config = AdminConfig::new(dir.path().into(), "http://x".into(), b"k".to_vec());
    let router = alula_admin::logs::router(Arc::new(config), Some(Arc::new(Pods)));
    let get = |retry: u32| {
        let router = router.clone();
        async move {
            let response = router
                .oneshot(
                    Request::get(log_url("", &id(retry), "stderr"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    assert_eq!(get(5).await, (200, "live pod log".to_string()));
    assert_eq!(get(4).await.0, 404);
}

/// `GET` on the route of `router`: status, the whole-log length header, body.
async fn get_raw(router: &axum::Router, uri: &str) -> (u16, Option<String>, String) {
    let response = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let length = response
        .headers()
        .get(alula_admin::logs::LOG_LENGTH_HEADER)
        .map(|v| v.to_str().unwrap().to_string());
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, length, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_growing_log_is_followed_by_offset() {
    let dir = TempDir::new();
    let key = log_key(&id(0), "stdout");
    put(dir.path(), &key, b"first line\n");
    let config = AdminConfig::new(dir.path().into(), "http://x".into(), b"k".to_vec());
    let router = alula_admin::logs::router(Arc::new(config), Some(Arc::new(Pods)));
    let url = log_url("", &id(0), "stdout");

    let whole = get_raw(&router, &url).await;
    assert_eq!(whole, (200, Some("11".into()), "first line\n".into()));
    // Nothing new yet: an empty answer, not an error, and the length the reader has.
    let at_end = get_raw(&router, &format!("{url}?offset=11")).await;
    assert_eq!(at_end, (200, Some("11".into()), String::new()));

    // The task prints more: only what follows the offset comes back.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join(&key))
        .unwrap();
    std::io::Write::write_all(&mut file, b"second line\n").unwrap();
    let next = get_raw(&router, &format!("{url}?offset=11")).await;
    assert_eq!(next, (200, Some("23".into()), "second line\n".into()));
    let middle = get_raw(&router, &format!("{url}?offset=6")).await;
    assert_eq!(middle.2, "line\nsecond line\n");
    // Past the end (a log replaced by a shorter one): nothing, with the true length.
    let past = get_raw(&router, &format!("{url}?offset=999")).await;
    assert_eq!(past, (200, Some("23".into()), String::new()));
    // With an element index too.
    let element = AttemptLogId {
        array_index: Some(2),
        ..id(0)
    };
    put(dir.path(), &log_key(&element, "stdout"), b"element two\n");
    let url2 = log_url("", &element, "stdout");
    assert_eq!(
        get_raw(&router, &format!("{url2}&offset=8")).await.2,
        "two\n"
    );

    for bad in ["offset=-1", "offset=x", "offset=1.5"] {
        let reply = get_raw(&router, &format!("{url}?{bad}")).await;
        assert_eq!(reply.0, 400, "{bad}: {}", reply.2);
    }

    // A live source is read from its start; the route drops what the reader has. The offset
    // falls inside the first chunk ("live ") and past it.
    let live = log_url("", &id(5), "stderr");
    assert_eq!(
        get_raw(&router, &format!("{live}?offset=2")).await,
        (200, None, "ve pod log".into())
    );
    assert_eq!(
        get_raw(&router, &format!("{live}?offset=7")).await,
        (200, None, "d log".into())
    );
    assert_eq!(get_raw(&router, &format!("{live}?offset=50")).await.2, "");
}
