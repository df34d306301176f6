//! One HTTP/1 request (hyper) to an in-process server's HTTP port, with the headers a test
//! chooses: the REST suites and the guard suite (browser-like requests) share it.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;

pub const BINARY: &str = "application/octet-stream";
pub const JSON: &str = "application/json";

pub struct Reply {
    pub status: u16,
    pub content_type: String,
    /// Where a redirect points, if it does.
    pub location: Option<String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (the reply must say it is JSON).
    pub fn json(&self) -> Value {
        assert_eq!(self.content_type, JSON, "{}", self.text());
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// Sends `method path` to `http_url` (`http://host:port`). `Host` is the server's address
/// unless `headers` names one; no other header is added.
pub async fn send(
    http_url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Reply {
    let address = http_url.strip_prefix("http://").expect("an http:// URL");
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP handshake");
    tokio::spawn(conn);
    let mut request = hyper::Request::builder().method(method).uri(path);
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        request = request.header("host", address);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .expect("a request");
    let response = sender.send_request(request).await.expect("a response");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().expect("ASCII").to_string())
        .unwrap_or_default();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().expect("ASCII").to_string());
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes()
        .to_vec();
    Reply {
        status,
        content_type,
        location,
        body,
    }
}
