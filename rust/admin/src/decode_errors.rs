//! Requests the gRPC port cannot decode are the client's fault: INVALID_ARGUMENT, not INTERNAL.
//!
//! tonic decodes a request before any handler runs and reports bytes that are not the method's
//! message (or a body cut short inside a frame) as INTERNAL, gRPC's code for a server's own
//! parse failures, and gives the services no say in it. A codec of our own would cover only the
//! services generated in `alula-idl`, not tonic's health and reflection services; this layer sits
//! in front of every service the port serves and rewrites exactly those statuses.
//!
//! tonic answers such a call "trailers-only", with the status in the response headers, which is
//! where the layer looks; a decode failure in the middle of a streaming call (only reflection
//! has one) reaches that service's handler as an error instead.

use std::task::{Context, Poll};

use tonic::codegen::http::{HeaderMap, Request, Response};
use tonic::codegen::BoxFuture;
use tonic::{Code, Status};

/// The messages tonic gives the statuses of undecodable requests: prost's `DecodeError` (its
/// `Display` has started this way since prost 0.1) and a body that ends inside a frame.
const DECODE_FAILURES: &[&str] = &[
    "failed to decode Protobuf message",
    "Unexpected EOF decoding stream",
];

/// The tower layer; see the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct DecodeErrorLayer;

impl<S> tower::Layer<S> for DecodeErrorLayer {
    type Service = DecodeErrors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DecodeErrors { inner }
    }
}

#[derive(Clone, Debug)]
pub struct DecodeErrors<S> {
    inner: S,
}

impl<S, B, R> tower::Service<Request<B>> for DecodeErrors<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let method = request.uri().path().to_string();
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            rewrite(response.headers_mut(), &method);
            Ok(response)
        })
    }
}

fn rewrite(headers: &mut HeaderMap, method: &str) {
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    let undecodable = status.code() == Code::Internal
        && DECODE_FAILURES
            .iter()
            .any(|prefix| status.message().starts_with(prefix));
    if !undecodable {
        return;
    }
    let fixed = Status::invalid_argument(format!(
        "the request to {method} could not be decoded as its protobuf message: {}",
        status.message()
    ));
    if let Err(e) = fixed.add_header(headers) {
        // Only a message that cannot be a header value fails, and tonic's own was one.
        tracing::warn!(error = %e, method, "could not rewrite a decode failure");
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a panic is how a test reports failure"
    )]

    use super::*;

    fn headers_of(status: &Status) -> HeaderMap {
        let mut headers = HeaderMap::new();
        status.add_header(&mut headers).unwrap();
        headers
    }

    #[test]
    fn only_decode_failures_are_rewritten() {
        let mut headers = headers_of(&Status::internal(
            "failed to decode Protobuf message: buffer underflow",
        ));
        rewrite(&mut headers, "/s/M");
        let status = Status::from_header_map(&headers).unwrap();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("/s/M"), "{}", status.message());
        assert!(status.message().ends_with("buffer underflow"));

        for kept in [
            Status::internal("internal error: the store is gone"),
            Status::not_found("failed to decode Protobuf message"),
        ] {
            let mut headers = headers_of(&kept);
            rewrite(&mut headers, "/s/M");
            let status = Status::from_header_map(&headers).unwrap();
            assert_eq!(
                (status.code(), status.message()),
                (kept.code(), kept.message())
            );
        }
    }
}
