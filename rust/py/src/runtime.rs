//! The one tokio runtime of the SDK's I/O calls (gRPC to a control plane, object storage):
//! a few threads suffice, since they wait on the network, and one for the process keeps the
//! HTTP/2 channels and each bucket's connection pool alive between calls. (`serve` runs a
//! server on a runtime of its own, sized for it.)

use std::sync::OnceLock;

use pyo3::exceptions::PyRuntimeError;
use pyo3::PyResult;
use tokio::runtime::Runtime;

pub(crate) fn io_runtime() -> PyResult<&'static Runtime> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("alula-io")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the I/O runtime: {e}")))
}
