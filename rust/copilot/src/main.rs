//! `alula-copilot`: the init container and sidecar of a raw container task's pod.
//!
//! ```text
//! alula-copilot download --inputs <uri> --to <dir> [--format json|yaml|proto]
//! alula-copilot upload --from <dir> --output-prefix <uri> [--raw-output-prefix <uri>]
//!                      --interface <base64 TypedInterface | @file> [--wait-for pod:<container>|none]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use alula_copilot::download::{download, Format};
use alula_copilot::upload::{upload, Destination, Outcome};
use alula_copilot::watch::{wait_for_container, SERVICE_ACCOUNT_DIR};
use alula_idl::flyteidl::core::TypedInterface;
use anyhow::{bail, Context};
use base64::Engine;
use clap::{Parser, Subcommand};
use prost::Message;

#[derive(Parser)]
#[command(
    name = "alula-copilot",
    version,
    about = "Inputs in and outputs out of a raw container task (Flyte's copilot)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the attempt's inputs as files (the pod's init container).
    Download {
        /// The attempt's inputs.pb (a path, file://, s3://, gs://, az://...).
        #[arg(long)]
        inputs: String,
        /// The folder the task reads its inputs from (its `input_data_dir`).
        #[arg(long)]
        to: PathBuf,
        /// Besides one file per input: inputs.json, inputs.yaml, or only inputs.pb.
        #[arg(long, default_value = "json")]
        format: Format,
    },
    /// Read the task's output files, upload them and write outputs.pb or error.pb (the sidecar).
    Upload {
        /// The folder the task writes its outputs to (its `output_data_dir`).
        #[arg(long)]
        from: PathBuf,
        /// The attempt's output prefix (a path, file://, s3://, gs://, az://...).
        #[arg(long)]
        output_prefix: String,
        /// Where files and folders go; the output prefix when not given.
        #[arg(long, default_value = "")]
        raw_output_prefix: String,
        /// The task's TypedInterface: base64 of its protobuf, or @FILE holding the protobuf.
        #[arg(long)]
        interface: String,
        /// `pod:<container>`: wait until that container of this pod (POD_NAME, POD_NAMESPACE)
        /// has ended; `none`: the outputs are there already.
        #[arg(long, default_value = "none")]
        wait_for: String,
        /// The pod's service account folder (token, ca.crt), for `--wait-for pod:...`.
        #[arg(long, default_value = SERVICE_ACCOUNT_DIR)]
        service_account_dir: PathBuf,
    },
}

fn interface(arg: &str) -> anyhow::Result<TypedInterface> {
    let bytes = match arg.strip_prefix('@') {
        Some(path) => std::fs::read(path).with_context(|| format!("reading {path}"))?,
        None => base64::engine::general_purpose::STANDARD
            .decode(arg.trim())
            .context("--interface is not base64")?,
    };
    TypedInterface::decode(bytes.as_slice()).context("--interface is not a TypedInterface")
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Download { inputs, to, format } => {
            download(&inputs, &to, format).await?;
            tracing::info!("inputs from {inputs} written to {}", to.display());
        }
        Command::Upload {
            from,
            output_prefix,
            raw_output_prefix,
            interface: iface,
            wait_for,
            service_account_dir,
        } => {
            let iface = interface(&iface)?;
            if let Some(container) = wait_for.strip_prefix("pod:") {
                let env = |k: &str| {
                    std::env::var(k)
                        .with_context(|| format!("{k} is not set (the downward API gives it)"))
                };
                let (namespace, pod) = (env("POD_NAMESPACE")?, env("POD_NAME")?);
                let exit =
                    wait_for_container(&service_account_dir, &namespace, &pod, container).await?;
                if exit.code != 0 {
                    // The pod's status reports the container's failure; outputs it may have
                    // left half-written are not uploaded.
                    tracing::info!(
                        "container {container} exited with {}; nothing uploaded",
                        exit.code
                    );
                    return Ok(());
                }
            } else if wait_for != "none" {
                bail!("--wait-for takes pod:<container> or none, not {wait_for:?}");
            }
            let to = Destination {
                output_prefix,
                raw_output_prefix,
            };
            match upload(&from, &iface, &to).await? {
                Outcome::Outputs(outputs) => {
                    tracing::info!("{} outputs uploaded", outputs.literals.len())
                }
                // error.pb carries it to propeller; the sidecar itself did its job.
                Outcome::Failed(e) => tracing::warn!("error.pb written: {e}"),
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("alula-copilot: {e:#}");
            ExitCode::FAILURE
        }
    }
}
