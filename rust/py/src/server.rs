//! `alula start`: runs the control plane (admin + propeller, `alula_server::run`) inside the
//! Python process that `pip install alula` put on the machine, so no separate binary has to be
//! shipped. The GIL is released for the server's whole life; Ctrl-C stops it cleanly.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Runs the server until Ctrl-C. `args` are `alula-server`'s (`[--config FILE]`); settings
/// also come from `ALULA_*` variables. `ready` is called with the bound endpoints.
#[pyfunction]
#[pyo3(signature = (args, ready=None))]
fn serve(py: Python<'_>, args: Vec<String>, ready: Option<Py<PyAny>>) -> PyResult<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ALULA_LOG")
                .unwrap_or_else(|_| "warn,alula_server=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let err = |e: anyhow::Error| PyRuntimeError::new_err(format!("{e:#}"));
    let config =
        alula_server::FileConfig::load(alula_server::config_path(&args).map_err(err)?.as_deref())
            .map_err(err)?;
    // `alula start --auth` (or a config asking for the built-in server): its user gets an admin
    // client whose secret is on disk for the flytekit config written below.
    let admin_client = match alula_server::security::mode(&config) {
        alula_server::security::AuthMode::Builtin => Some(py.detach(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| PyRuntimeError::new_err(format!("cannot start the runtime: {e}")))?;
            runtime
                .block_on(alula_server::auth_cli::ensure_admin_client(&config))
                .map_err(err)
        })?),
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("alula-server")
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the runtime: {e}")))?;
    let shutdown = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let on_ready = move |endpoints: &alula_server::Endpoints| {
        let Some(ready) = &ready else { return };
        Python::attach(|py| {
            let info = PyDict::new(py);
            let items = [
                (
                    "grpc",
                    endpoints.grpc.map(|a| a.to_string()).unwrap_or_default(),
                ),
                ("http", endpoints.http.to_string()),
                ("storage_root", endpoints.storage_root.display().to_string()),
                ("database", endpoints.database.clone()),
                ("public_http_url", endpoints.public_http_url.clone()),
                (
                    "auth",
                    alula_server::security::mode_name(endpoints.auth_mode).into(),
                ),
                (
                    "tls_cert",
                    endpoints
                        .tls_cert
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                ),
                (
                    "client_id",
                    admin_client
                        .as_ref()
                        .map(|c| c.client_id.clone())
                        .unwrap_or_default(),
                ),
                (
                    "client_secret_file",
                    admin_client
                        .as_ref()
                        .map(|c| c.secret_file.display().to_string())
                        .unwrap_or_default(),
                ),
            ];
            for (k, v) in items {
                if let Err(e) = info.set_item(k, v) {
                    e.print(py);
                }
            }
            if let Err(e) = ready.call1(py, (info,)) {
                e.print(py);
            }
        });
    };
    py.detach(|| runtime.block_on(alula_server::run(config, shutdown, on_ready)))
        .map_err(err)
}

/// `alula auth ARGS...`: runs one command on the server's database (found as `alula start`
/// finds it) and returns what it prints; errors raise RuntimeError with their message.
#[pyfunction]
fn auth_command(py: Python<'_>, args: Vec<String>) -> PyResult<String> {
    py.detach(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start the runtime: {e}")))?;
        runtime
            .block_on(alula_server::auth_cli::run_command(&args))
            .map_err(|e| PyRuntimeError::new_err(format!("{e:#}")))
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(serve, m)?)?;
    m.add_function(wrap_pyfunction!(auth_command, m)?)
}
