//! `alula._native`: the one private native module of the Python SDK.
//!
//! This crate only converts and forwards; the logic lives in the core crates. Rich messages
//! cross the boundary as protobuf bytes.

mod compiler;
mod convert;
mod local;
mod progress;
mod remote;
mod runtime;
mod server;
mod storage;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The encoded `FileDescriptorSet` of Alula's flyteidl-compatible protocol.
#[pyfunction]
fn descriptor_set(py: Python<'_>) -> Bound<'_, PyBytes> {
    PyBytes::new(py, alula_idl::FILE_DESCRIPTOR_SET)
}

/// Full names of every protobuf message the native core knows.
#[pyfunction]
fn message_names() -> Vec<&'static str> {
    alula_idl::registry::MESSAGE_NAMES.to_vec()
}

/// Decodes `data` as the named flyteidl message and re-encodes it in the canonical field order.
///
/// Raises ValueError naming the message when the bytes are not a valid encoding.
#[pyfunction]
fn normalize_message(py: Python<'_>, full_name: &str, data: &[u8]) -> PyResult<Py<PyBytes>> {
    let out = alula_idl::registry::reencode(full_name, data).map_err(value_error)?;
    Ok(PyBytes::new(py, &out).unbind())
}

/// Renders the named flyteidl message as proto3 JSON (the REST gateway's mapping).
#[pyfunction]
fn message_to_json(full_name: &str, data: &[u8]) -> PyResult<String> {
    alula_idl::registry::to_json(full_name, data).map_err(value_error)
}

/// Parses proto3 JSON as the named flyteidl message and returns its binary encoding.
#[pyfunction]
fn message_from_json(py: Python<'_>, full_name: &str, json: &str) -> PyResult<Py<PyBytes>> {
    let out = alula_idl::registry::from_json(full_name, json).map_err(value_error)?;
    Ok(PyBytes::new(py, &out).unbind())
}

fn value_error(err: alula_idl::registry::ConvertError) -> PyErr {
    pyo3::exceptions::PyValueError::new_err(err.to_string())
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(descriptor_set, m)?)?;
    m.add_function(wrap_pyfunction!(message_names, m)?)?;
    m.add_function(wrap_pyfunction!(normalize_message, m)?)?;
    m.add_function(wrap_pyfunction!(message_to_json, m)?)?;
    m.add_function(wrap_pyfunction!(message_from_json, m)?)?;
    compiler::register(m)?;
    local::register(m)?;
    convert::register(m)?;
    remote::register(m)?;
    server::register(m)?;
    storage::register(m)?;
    Ok(())
}
