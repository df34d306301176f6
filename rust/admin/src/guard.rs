//! What the HTTP port refuses from web pages. Any page a user opens can send requests to
//! `127.0.0.1:8088`: a `no-cors` fetch or a form POSTs `text/plain` or form bodies without a
//! CORS preflight, and a DNS-rebinding page reaches the port under its own host name and reads
//! the answers. Without these checks such a page registered a raw container task and started
//! it, running a command as the server's user (issue 12). So:
//!
//! - **Host** (every route): the `Host` header must be a name the server answers
//!   ([`HttpAccess::allowed_hosts`]), a loopback name, or an IP address. A rebinding page always
//!   sends its own DNS name; an IP address cannot be rebound, which is also what keeps the
//!   Kubernetes probes and Prometheus (which send the pod IP) working.
//! - **Origin** (every route, when present): the server's own origin (the request's `Host`)
//!   or one listed in [`HttpAccess::allowed_origins`]. Browsers send `Origin` on every
//!   cross-origin request but navigations, so a page of another origin can neither call nor
//!   read the API; CLI clients send none.
//! - **Content type** (mutating REST calls: POST, PUT, PATCH, DELETE): JSON or binary
//!   protobuf. Those types are not CORS-safelisted, so a browser sends them cross-origin only
//!   after a preflight, which this server never grants (it sends no CORS headers). The signed
//!   upload URLs are not REST calls: their signature is the authority, and flytekit PUTs them
//!   without a content type.
//!
//! Refusals are the gateway's `{code, message}` bodies (403 PERMISSION_DENIED, 415
//! INVALID_ARGUMENT), answered before any handler runs, so nothing changes.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tonic::Code;

use crate::config::HttpAccess;
use crate::rest::error_response;

/// How a REST request body is encoded, from its `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyEncoding {
    Json,
    Protobuf,
}

impl BodyEncoding {
    /// The encoding `headers` announce; `None` for a missing or any other content type.
    pub fn of(headers: &HeaderMap) -> Option<Self> {
        let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let essence = value.split(';').next()?.trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Some(Self::Json),
            // FlyteConsole's and grpc-gateway's type, and the other common protobuf ones.
            "application/octet-stream" | "application/x-protobuf" | "application/protobuf" => {
                Some(Self::Protobuf)
            }
            _ => None,
        }
    }
}

/// Wraps every route of the HTTP port in the Host and Origin checks.
pub fn protect(router: Router, access: HttpAccess) -> Router {
    router.layer(middleware::from_fn_with_state(
        Arc::new(access),
        check_host_and_origin,
    ))
}

/// The REST gateway's rule for request bodies (see the module documentation).
pub fn require_api_body<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(middleware::from_fn(check_content_type))
}

fn refuse(status: StatusCode, code: Code, message: String) -> Response {
    tracing::warn!(%status, message, "HTTP request refused");
    error_response(status, code, message)
}

async fn check_host_and_origin(
    State(access): State<Arc<HttpAccess>>,
    request: Request,
    next: Next,
) -> Response {
    // HTTP/1.1 clients, browsers among them, always send Host; a request without one (HTTP/1.0
    // tools) cannot come from a page.
    let host = request
        .headers()
        .get(header::HOST)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    if let Some(host) = &host {
        if !host_allowed(&access, host) {
            let message = format!(
                "host {host:?} is not a name this server answers (a DNS-rebinding page sends its \
                 own); add it to allowed_hosts (ALULA_ALLOWED_HOSTS) if it is this server's"
            );
            return refuse(StatusCode::FORBIDDEN, Code::PermissionDenied, message);
        }
    }
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
        if !origin_allowed(&access, &origin, host.as_deref()) {
            let message = format!(
                "origin {origin:?} may not call this server: pages of other origins are refused; \
                 add it to allowed_origins (ALULA_ALLOWED_ORIGINS) if it is trusted"
            );
            return refuse(StatusCode::FORBIDDEN, Code::PermissionDenied, message);
        }
    }
    next.run(request).await
}

async fn check_content_type(request: Request, next: Next) -> Response {
    let mutating = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if mutating && BodyEncoding::of(request.headers()).is_none() {
        let given = request
            .headers()
            .get(header::CONTENT_TYPE)
            .map_or("none".to_string(), |v| {
                format!("{:?}", String::from_utf8_lossy(v.as_bytes()))
            });
        let message = format!(
            "{} {} needs the content type application/json or application/octet-stream \
             (binary protobuf), not {given}",
            request.method(),
            request.uri().path()
        );
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::InvalidArgument,
            message,
        );
    }
    next.run(request).await
}

/// `host[:port]` split into the lowercase host (IPv6 without brackets) and the port.
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let authority = authority.trim().to_ascii_lowercase();
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host.to_string(), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (authority.clone(), None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse().ok()?),
        None => None,
    };
    // `localhost.` is `localhost`: a fully qualified name ends in a dot.
    let host = host.strip_suffix('.').unwrap_or(&host).to_string();
    (!host.is_empty()).then_some((host, port))
}

fn host_allowed(access: &HttpAccess, authority: &str) -> bool {
    let Some((host, _port)) = split_authority(authority) else {
        return false;
    };
    if host == "localhost" || host.parse::<IpAddr>().is_ok() {
        return true;
    }
    access.allowed_hosts.iter().any(|allowed| {
        let allowed = allowed.trim().to_ascii_lowercase();
        let allowed = allowed.trim_start_matches('[').trim_end_matches(']');
        allowed == "*" || allowed == host
    })
}

/// `scheme://host[:port]` as (scheme, host, port), the port defaulted from the scheme.
fn parse_origin(origin: &str) -> Option<(String, String, u16)> {
    let (scheme, authority) = origin.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (host, port) = split_authority(authority.trim_end_matches('/'))?;
    Some((scheme, host, port.unwrap_or(default_port)))
}

fn origin_allowed(access: &HttpAccess, origin: &str, request_host: Option<&str>) -> bool {
    // `null` (sandboxed frames, file: pages) and anything unparsable match nothing.
    let Some((scheme, host, port)) = parse_origin(origin) else {
        return false;
    };
    let listed = access.allowed_origins.iter().any(|allowed| {
        allowed.trim() == "*"
            || parse_origin(allowed).is_some_and(|a| a == (scheme.clone(), host.clone(), port))
    });
    // Same origin: the page was loaded from the address this request is sent to (the Host
    // check has already vouched for that name).
    let same = request_host
        .and_then(split_authority)
        .is_some_and(|(h, p)| h == host && p.unwrap_or(port) == port);
    listed || same
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a panic is how a test reports failure"
    )]

    use super::*;

    fn access() -> HttpAccess {
        let mut access = HttpAccess::for_public_url("https://alula.example.com/");
        access.allowed_hosts.push("Other.Example".into());
        access
            .allowed_origins
            .push("http://console.example:3000".into());
        access
    }

    #[test]
    fn hosts() {
        let access = access();
        for ok in [
            "localhost",
            "localhost:99",
            "LOCALHOST.",
            "127.0.0.1:8088",
            "[::1]:8088",
            "[::1]",
            "10.0.0.7:8088",
            "alula.example.com",
            "alula.example.com:8443",
            "other.example",
        ] {
            assert!(host_allowed(&access, ok), "{ok}");
        }
        for bad in [
            "attacker.example",
            "attacker.example:8088",
            "localhost.attacker.example",
            "example.com",
            "alula.example.com.attacker.example",
            "",
            "[::1",
            "localhost:port",
        ] {
            assert!(!host_allowed(&access, bad), "{bad}");
        }
        let mut any = access;
        any.allowed_hosts.push("*".into());
        assert!(host_allowed(&any, "attacker.example"));
    }

    #[test]
    fn origins() {
        let access = access();
        let host = Some("127.0.0.1:8088");
        for ok in [
            "http://127.0.0.1:8088",
            "https://alula.example.com",
            "https://alula.example.com:443",
            "http://console.example:3000",
        ] {
            assert!(origin_allowed(&access, ok, host), "{ok}");
        }
        for bad in [
            "null",
            "http://127.0.0.1:8089",
            "http://alula.example.com",
            "http://attacker.example",
            "file://",
            "http://console.example",
        ] {
            assert!(!origin_allowed(&access, bad, host), "{bad}");
        }
        assert!(origin_allowed(
            &access,
            "https://proxy.example",
            Some("proxy.example")
        ));
        assert!(!origin_allowed(&access, "http://localhost:1", None));
    }

    #[test]
    fn body_encodings() {
        let mut headers = HeaderMap::new();
        assert_eq!(BodyEncoding::of(&headers), None);
        for (value, expected) in [
            ("application/json", Some(BodyEncoding::Json)),
            ("Application/JSON; charset=utf-8", Some(BodyEncoding::Json)),
            ("application/octet-stream", Some(BodyEncoding::Protobuf)),
            ("application/x-protobuf", Some(BodyEncoding::Protobuf)),
            ("text/plain;charset=UTF-8", None),
            ("application/x-www-form-urlencoded", None),
            ("multipart/form-data; boundary=x", None),
            ("text/plain; application/json", None),
        ] {
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(BodyEncoding::of(&headers), expected, "{value}");
        }
    }
}
