//! `alula-server`: Alula's control plane as one process (see the library for its settings).
//!
//! Usage: `alula-server [--config FILE]`, or `alula-server auth COMMAND ...` to manage clients,
//! role bindings, signing keys and read the audit log (see `alula_server::auth_cli`).

use anyhow::Result;

/// Ctrl-C, or SIGTERM (what Kubernetes and systemd send): the server then stops claiming
/// executions, lets drivers save, releases its leases and exits.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("interrupted; shutting down"),
        () = term => tracing::info!("terminated; shutting down"),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        // Colours only for a terminal: logs written to files stay greppable.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(("auth", rest)) = args.split_first().map(|(c, r)| (c.as_str(), r)) {
        print!("{}", alula_server::auth_cli::run_command(rest).await?);
        return Ok(());
    }
    let file = alula_server::FileConfig::load(alula_server::config_path(&args)?.as_deref())?;
    alula_server::run(file, shutdown_signal(), |_| {}).await
}
