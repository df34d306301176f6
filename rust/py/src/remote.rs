//! One generic unary gRPC call, so the Python remote client needs neither grpcio nor generated
//! stubs: requests and responses cross as encoded protobuf, built and read in Python through
//! `message_from_json` / `message_to_json`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use alula_idl::raw_codec::RawCodec;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

pyo3::create_exception!(
    alula._native,
    RpcError,
    PyRuntimeError,
    "A gRPC call failed. `code` is the gRPC code name (\"NOT_FOUND\", ...), `message` the server's message and `method` the RPC's path."
);

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `host:port`, `dns:///host:port` (flytekit's config form) or `http://host:port` as a URI.
fn endpoint_uri(endpoint: &str) -> PyResult<String> {
    let endpoint = endpoint.trim();
    let rest = endpoint.strip_prefix("dns:///").unwrap_or(endpoint);
    if rest.starts_with("http://") {
        return Ok(rest.to_owned());
    }
    if rest.contains("://") {
        // Only insecure channels: tonic is built without a TLS feature here.
        return Err(PyValueError::new_err(format!(
            "endpoint {endpoint:?}: only host:port, dns:///host:port and http:// are supported"
        )));
    }
    if rest.is_empty() {
        return Err(PyValueError::new_err("endpoint is empty"));
    }
    Ok(format!("http://{rest}"))
}

/// The channel of an endpoint, created on first use; must run inside the runtime because a
/// lazy channel spawns its connection worker there.
fn channel(uri: &str) -> Result<Channel, Status> {
    static CHANNELS: OnceLock<Mutex<HashMap<String, Channel>>> = OnceLock::new();
    let mut channels = CHANNELS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(c) = channels.get(uri) {
        return Ok(c.clone());
    }
    let c = Endpoint::from_shared(uri.to_owned())
        .map_err(|e| Status::invalid_argument(format!("endpoint {uri}: {e}")))?
        .connect_timeout(CONNECT_TIMEOUT)
        .connect_lazy();
    channels.insert(uri.to_owned(), c.clone());
    Ok(c)
}

async fn call(
    uri: String,
    path: PathAndQuery,
    request: Vec<u8>,
    timeout: Duration,
) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel(&uri)?);
    let mut request = tonic::Request::new(request);
    request.set_timeout(timeout);
    let exchange = async {
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(format!("{uri} is not reachable: {e}")))?;
        grpc.unary(request, path, RawCodec).await
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result
            .map(tonic::Response::into_inner)
            .map_err(|status| with_transport_cause(&uri, status)),
        Err(_) => Err(Status::deadline_exceeded(format!(
            "no answer within {:.1}s",
            timeout.as_secs_f64()
        ))),
    }
}

/// A transport failure's status says only "tcp connect error"; the cause (refused, no route,
/// ...) and the endpoint are what a user needs to fix it.
fn with_transport_cause(uri: &str, status: Status) -> Status {
    let Some(mut cause) = std::error::Error::source(&status) else {
        return status;
    };
    let mut message = format!("{uri}: {}", status.message());
    loop {
        // Layers often repeat their inner error's text; keep each once.
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(&format!(": {text}"));
        }
        match cause.source() {
            Some(next) => cause = next,
            None => break,
        }
    }
    Status::new(status.code(), message)
}

/// The name gRPC gives a code everywhere else (flytekit and grpcio print these).
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

fn rpc_error(py: Python<'_>, method: &str, status: &Status) -> PyErr {
    let code = code_name(status.code());
    let rpc = method.rsplit('/').next().unwrap_or(method);
    let err = RpcError::new_err(format!("{rpc} failed: {code}: {}", status.message()));
    let value = err.value(py);
    let attached = value
        .setattr("code", code)
        .and_then(|()| value.setattr("message", status.message()))
        .and_then(|()| value.setattr("method", method));
    match attached {
        Ok(()) => err,
        Err(e) => e,
    }
}

/// Sends one unary gRPC request and returns the encoded response.
///
/// `method` is the full path, e.g. "/flyteidl.service.AdminService/CreateTask". Raises
/// RpcError (with `code`, `message`, `method`) when the call fails, including when the
/// server cannot be reached (UNAVAILABLE) or does not answer in time (DEADLINE_EXCEEDED).
#[pyfunction]
#[pyo3(signature = (endpoint, method, request, timeout_s = 30.0))]
fn grpc_unary(
    py: Python<'_>,
    endpoint: &str,
    method: &str,
    request: &[u8],
    timeout_s: f64,
) -> PyResult<Py<PyBytes>> {
    let uri = endpoint_uri(endpoint)?;
    let well_formed = method.starts_with('/') && method[1..].split('/').count() == 2;
    let path = PathAndQuery::try_from(method)
        .ok()
        .filter(|_| well_formed)
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "method {method:?}: expected \"/package.Service/Method\""
            ))
        })?;
    let timeout = Duration::try_from_secs_f64(timeout_s)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| PyValueError::new_err(format!("timeout_s {timeout_s}: must be > 0")))?;
    let rt = crate::runtime::io_runtime()?;
    let request = request.to_vec();
    let result = py.detach(|| rt.block_on(call(uri, path, request, timeout)));
    match result {
        Ok(response) => Ok(PyBytes::new(py, &response).unbind()),
        Err(status) => Err(rpc_error(py, method, &status)),
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("RpcError", m.py().get_type::<RpcError>())?;
    m.add_function(wrap_pyfunction!(grpc_unary, m)?)?;
    Ok(())
}
