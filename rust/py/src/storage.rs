//! Objects by URI (`s3://`, `gs://`, `az://`/`abfs://`, `memory://`, `file://`, paths) for the
//! SDK's task entry points and types: forwards to `alula_storage::stream`, with the GIL released
//! for the whole transfer.

use std::path::PathBuf;

use alula_storage::stream;
use alula_storage::uri::UriError;
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

fn to_py(err: UriError) -> PyErr {
    match err {
        UriError::NotFound { .. } => PyFileNotFoundError::new_err(err.to_string()),
        UriError::Invalid { .. } => PyValueError::new_err(err.to_string()),
        UriError::Io { .. } | UriError::Store { .. } => PyOSError::new_err(err.to_string()),
    }
}

/// Runs `f` on the runtime with the GIL released.
fn run<T: Send>(
    py: Python<'_>,
    f: impl std::future::Future<Output = Result<T, UriError>> + Send,
) -> PyResult<T> {
    let rt = crate::runtime::io_runtime()?;
    py.detach(|| rt.block_on(f)).map_err(to_py)
}

/// The whole object (raises FileNotFoundError when there is none).
#[pyfunction]
fn storage_get(py: Python<'_>, uri: &str) -> PyResult<Py<PyBytes>> {
    let bytes = run(py, stream::get(uri))?;
    Ok(PyBytes::new(py, &bytes).unbind())
}

/// Writes `data` as the object.
#[pyfunction]
fn storage_put(py: Python<'_>, uri: &str, data: &[u8]) -> PyResult<()> {
    run(py, stream::put(uri, data.to_vec().into()))
}

/// Bytes `start` to `end` (exclusive) of the object.
#[pyfunction]
fn storage_read_range(py: Python<'_>, uri: &str, start: u64, end: u64) -> PyResult<Py<PyBytes>> {
    let bytes = run(py, stream::read_range(uri, start, end))?;
    Ok(PyBytes::new(py, &bytes).unbind())
}

/// The object's size in bytes, None when there is none.
#[pyfunction]
fn storage_size(py: Python<'_>, uri: &str) -> PyResult<Option<u64>> {
    run(py, stream::size(uri))
}

/// Whether the object exists.
#[pyfunction]
fn storage_exists(py: Python<'_>, uri: &str) -> PyResult<bool> {
    Ok(run(py, stream::size(uri))?.is_some())
}

/// (uri, path below the prefix, size) of every object under the folder `prefix`, sorted.
#[pyfunction]
fn storage_list(py: Python<'_>, prefix: &str) -> PyResult<Vec<(String, String, u64)>> {
    let listed = run(py, stream::list(prefix))?;
    Ok(listed
        .into_iter()
        .map(|l| (l.uri, l.relative, l.size))
        .collect())
}

/// Streams the object into the local file `local_path`; returns the bytes written.
#[pyfunction]
fn storage_download(py: Python<'_>, uri: &str, local_path: PathBuf) -> PyResult<u64> {
    run(py, stream::download(uri, &local_path))
}

/// Streams the local file `local_path` into the object `uri`; returns the bytes sent.
#[pyfunction]
fn storage_upload(py: Python<'_>, local_path: PathBuf, uri: &str) -> PyResult<u64> {
    run(py, stream::upload(&local_path, uri))
}

/// Copies every object under the folder `prefix` into `local_dir`; returns the file count.
#[pyfunction]
fn storage_download_dir(py: Python<'_>, prefix: &str, local_dir: PathBuf) -> PyResult<usize> {
    run(py, stream::download_dir(prefix, &local_dir))
}

/// Copies every file under `local_dir` below the folder `prefix`; returns the file count.
#[pyfunction]
fn storage_upload_dir(py: Python<'_>, local_dir: PathBuf, prefix: &str) -> PyResult<usize> {
    run(py, stream::upload_dir(&local_dir, prefix))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(storage_get, m)?)?;
    m.add_function(wrap_pyfunction!(storage_put, m)?)?;
    m.add_function(wrap_pyfunction!(storage_read_range, m)?)?;
    m.add_function(wrap_pyfunction!(storage_size, m)?)?;
    m.add_function(wrap_pyfunction!(storage_exists, m)?)?;
    m.add_function(wrap_pyfunction!(storage_list, m)?)?;
    m.add_function(wrap_pyfunction!(storage_download, m)?)?;
    m.add_function(wrap_pyfunction!(storage_upload, m)?)?;
    m.add_function(wrap_pyfunction!(storage_download_dir, m)?)?;
    m.add_function(wrap_pyfunction!(storage_upload_dir, m)?)?;
    Ok(())
}
