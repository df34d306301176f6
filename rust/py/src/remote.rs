//! One generic unary gRPC call, so the Python remote client needs neither grpcio nor generated
//! stubs: requests and responses cross as encoded protobuf, built and read in Python through
//! `message_from_json` / `message_to_json`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use alula_idl::raw_codec::RawCodec;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::Status;

// Defined in Python (alula/errors.py) so that it derives from the SDK's one root, AlulaError.
pyo3::import_exception!(alula.errors, RpcError);

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to connect: the channel cache's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Target {
    /// `http://host:port` or `https://host:port`.
    uri: String,
    tls: bool,
    /// PEM file of the CA(s) to trust instead of the system's roots (TLS only).
    ca_cert: Option<PathBuf>,
}

impl Target {
    /// The endpoint in error messages; with TLS also what the client trusted, since the usual
    /// fix of a certificate error is another CA file.
    fn describe(&self) -> String {
        match (&self.ca_cert, self.tls) {
            (_, false) => self.uri.clone(),
            (Some(path), true) => {
                format!("{} (TLS, trusting the CA in {})", self.uri, path.display())
            }
            (None, true) => format!(
                "{} (TLS, trusting the system's root certificates)",
                self.uri
            ),
        }
    }
}

/// `host:port`, `dns:///host:port` (flytekit's config form), `http://host:port` or
/// `https://host:port` as a target. `tls` (flytekit's `insecure` negated) applies to the forms
/// without a scheme; a scheme that contradicts it is an error rather than a silent downgrade.
fn target(endpoint: &str, tls: Option<bool>, ca_cert: Option<&str>) -> PyResult<Target> {
    let endpoint = endpoint.trim();
    let rest = endpoint.strip_prefix("dns:///").unwrap_or(endpoint);
    let (uri, secure) = if let Some(host) = rest.strip_prefix("https://") {
        (format!("https://{host}"), true)
    } else if let Some(host) = rest.strip_prefix("http://") {
        (format!("http://{host}"), false)
    } else if rest.contains("://") {
        return Err(PyValueError::new_err(format!(
            "endpoint {endpoint:?}: only host:port, dns:///host:port, http:// and https:// are \
             supported"
        )));
    } else if rest.is_empty() {
        return Err(PyValueError::new_err("endpoint is empty"));
    } else if tls == Some(true) {
        (format!("https://{rest}"), true)
    } else {
        (format!("http://{rest}"), false)
    };
    if tls.is_some_and(|tls| tls != secure) {
        return Err(PyValueError::new_err(format!(
            "endpoint {endpoint:?} is {} but tls={} was asked for",
            if secure { "https" } else { "http" },
            // As Python spells the argument.
            if secure { "False" } else { "True" }
        )));
    }
    Ok(Target {
        uri: uri.trim_end_matches('/').to_owned(),
        tls: secure,
        ca_cert: ca_cert.filter(|_| secure).map(PathBuf::from),
    })
}

/// Why no channel could be made (a local problem: raised as ValueError, not RpcError).
#[derive(Debug)]
struct SetupError(String);

fn tls_config(target: &Target) -> Result<ClientTlsConfig, SetupError> {
    let config = ClientTlsConfig::new();
    match &target.ca_cert {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                SetupError(format!(
                    "cannot read CA certificate {}: {e}",
                    path.display()
                ))
            })?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(SetupError(format!(
                    "CA certificate {}: no PEM CERTIFICATE block",
                    path.display()
                )));
            }
            Ok(config.ca_certificate(Certificate::from_pem(pem)))
        }
        None => Ok(config.with_native_roots()),
    }
}

/// The channel of a target, created on first use; must run inside the runtime because a lazy
/// channel spawns its connection worker there.
fn channel(target: &Target) -> Result<Channel, SetupError> {
    static CHANNELS: OnceLock<Mutex<HashMap<Target, Channel>>> = OnceLock::new();
    let mut channels = CHANNELS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(c) = channels.get(target) {
        return Ok(c.clone());
    }
    let mut endpoint = Endpoint::from_shared(target.uri.clone())
        .map_err(|e| SetupError(format!("endpoint {}: {e}", target.uri)))?
        .connect_timeout(CONNECT_TIMEOUT);
    if target.tls {
        endpoint = endpoint
            .tls_config(tls_config(target)?)
            .map_err(|e| SetupError(format!("TLS for {}: {e}", target.uri)))?;
    }
    let c = endpoint.connect_lazy();
    channels.insert(target.clone(), c.clone());
    Ok(c)
}

/// Per-call metadata (the bearer token): keys checked here so a bad one is a ValueError naming
/// the key; values are never quoted (they are credentials).
fn metadata_map(pairs: Vec<(String, String)>) -> PyResult<MetadataMap> {
    let mut map = MetadataMap::new();
    for (key, value) in pairs {
        let name = MetadataKey::from_bytes(key.to_ascii_lowercase().as_bytes())
            .map_err(|_| PyValueError::new_err(format!("metadata key {key:?} is not valid")))?;
        let value = MetadataValue::try_from(value.as_str()).map_err(|_| {
            PyValueError::new_err(format!(
                "metadata {key:?}: the value is not printable ASCII"
            ))
        })?;
        map.append(name, value);
    }
    Ok(map)
}

enum CallError {
    Setup(SetupError),
    Rpc(Status),
}

async fn call(
    target: Target,
    path: PathAndQuery,
    request: Vec<u8>,
    metadata: MetadataMap,
    timeout: Duration,
) -> Result<Vec<u8>, CallError> {
    let mut grpc = tonic::client::Grpc::new(channel(&target).map_err(CallError::Setup)?);
    let mut request = tonic::Request::new(request);
    *request.metadata_mut() = metadata;
    request.set_timeout(timeout);
    let exchange = async {
        grpc.ready().await.map_err(|e| {
            Status::unavailable(format!("{} is not reachable: {e}", target.describe()))
        })?;
        grpc.unary(request, path, RawCodec).await
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result
            .map(tonic::Response::into_inner)
            .map_err(|status| CallError::Rpc(with_transport_cause(&target, status))),
        Err(_) => Err(CallError::Rpc(Status::deadline_exceeded(format!(
            "no answer within {:.1}s",
            timeout.as_secs_f64()
        )))),
    }
}

/// A transport failure's status says only "tcp connect error"; the cause (refused, no route,
/// ...) and the endpoint are what a user needs to fix it.
fn with_transport_cause(target: &Target, status: Status) -> Status {
    let Some(mut cause) = std::error::Error::source(&status) else {
        return status;
    };
    let mut message = format!("{}: {}", target.describe(), status.message());
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

fn rpc_error(py: Python<'_>, method: &str, status: &Status) -> PyErr {
    let code = alula_idl::codes::code_name(status.code());
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
/// `tls` chooses TLS for endpoints without a scheme (`https://` always means TLS); `ca_cert`
/// is a PEM file of the CA(s) to trust instead of the system's; `metadata` are (key, value)
/// pairs sent with the call (e.g. ("authorization", "Bearer ...")).
#[pyfunction]
#[pyo3(signature = (endpoint, method, request, timeout_s = 30.0, *, tls = None, ca_cert = None, metadata = None))]
#[allow(
    clippy::too_many_arguments,
    reason = "the keyword arguments of a Python function"
)]
fn grpc_unary(
    py: Python<'_>,
    endpoint: &str,
    method: &str,
    request: &[u8],
    timeout_s: f64,
    tls: Option<bool>,
    ca_cert: Option<std::path::PathBuf>,
    metadata: Option<Vec<(String, String)>>,
) -> PyResult<Py<PyBytes>> {
    let ca_cert = ca_cert.map(|p| p.to_string_lossy().into_owned());
    let target = target(endpoint, tls, ca_cert.as_deref())?;
    let metadata = metadata_map(metadata.unwrap_or_default())?;
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
    let result = py.detach(|| rt.block_on(call(target, path, request, metadata, timeout)));
    match result {
        Ok(response) => Ok(PyBytes::new(py, &response).unbind()),
        Err(CallError::Setup(SetupError(message))) => Err(PyValueError::new_err(message)),
        Err(CallError::Rpc(status)) => Err(rpc_error(py, method, &status)),
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("RpcError", m.py().get_type::<RpcError>())?;
    m.add_function(wrap_pyfunction!(grpc_unary, m)?)?;
    Ok(())
}
