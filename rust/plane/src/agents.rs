//! Task agents (Flyte's connectors): gRPC servers implementing `AsyncAgentService`,
//! `SyncAgentService` and `AgentMetadataService` (flytekit's `pyflyte serve agent`). The
//! directory is what both planes share: the configured endpoints, one lazily connected channel
//! each, and `ListAgents` across them. Admin serves `AgentMetadataService` as their proxy (so
//! `pyflyte` and the console list them); propeller's agent plugin routes task types to them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alula_idl::flyteidl::admin::{Agent, ListAgentsRequest};
use alula_idl::flyteidl::service::agent_metadata_service_client::AgentMetadataServiceClient;
use serde::Deserialize;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::Status;

fn default_timeout_seconds() -> u64 {
    10
}

fn default_insecure() -> bool {
    true
}

/// One agent server (Flyte's `agent-service.agents.<name>`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentEndpoint {
    /// `http://host:port` or `https://host:port`; `dns:///host:port` (Flyte's form) is either,
    /// as `insecure` says.
    pub endpoint: String,
    /// Plaintext gRPC (Flyte's default for agents in the cluster). `false`: TLS, the agent's
    /// certificate checked against the system's roots and `ca_file`.
    #[serde(default = "default_insecure")]
    pub insecure: bool,
    /// A PEM file of CA certificates to trust for this agent besides the system's (a private
    /// CA inside the cluster). Only with TLS.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The longest one call may take (CreateTask, GetTask, DeleteTask, a whole ExecuteTaskSync).
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
}

/// Settings that cannot work: refused at start.
#[derive(Debug, thiserror::Error)]
pub enum AgentsError {
    #[error("agent {name:?}: endpoint {endpoint:?} is not a URL: {reason}")]
    BadEndpoint {
        name: String,
        endpoint: String,
        reason: String,
    },
    #[error("agent {name:?}: endpoint {endpoint:?} is https:// but insecure = true asks for plaintext; set insecure = false for TLS, or give an http:// endpoint")]
    Contradiction { name: String, endpoint: String },
    #[error("agent {name:?}: ca_file {path:?}: {reason}")]
    BadCaFile {
        name: String,
        path: PathBuf,
        reason: String,
    },
}

/// TLS to an agent: the system's roots, and the agent's `ca_file` if any.
fn tls_config(name: &str, agent: &AgentEndpoint) -> Result<ClientTlsConfig, AgentsError> {
    let mut tls = ClientTlsConfig::new().with_native_roots();
    if let Some(path) = &agent.ca_file {
        let pem = std::fs::read(path).map_err(|e| AgentsError::BadCaFile {
            name: name.to_string(),
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(AgentsError::BadCaFile {
                name: name.to_string(),
                path: path.clone(),
                reason: "no PEM certificate in it".into(),
            });
        }
        tls = tls.ca_certificate(Certificate::from_pem(pem));
    }
    Ok(tls)
}

/// The configured agents, each with a channel that connects on first use (an agent started
/// after the server is fine) and reconnects after failures.
#[derive(Clone, Default)]
pub struct AgentDirectory {
    agents: Arc<BTreeMap<String, (AgentEndpoint, Channel)>>,
}

impl std::fmt::Debug for AgentDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.agents.iter().map(|(n, (e, _))| (n, &e.endpoint)))
            .finish()
    }
}

impl AgentDirectory {
    /// Channels for `agents` (not connected yet). Must run inside a Tokio runtime.
    pub fn new(agents: &BTreeMap<String, AgentEndpoint>) -> Result<Self, AgentsError> {
        let mut out = BTreeMap::new();
        for (name, agent) in agents {
            let scheme = if agent.insecure { "http" } else { "https" };
            let url = match agent.endpoint.strip_prefix("dns:///") {
                Some(rest) => format!("{scheme}://{rest}"),
                None => agent.endpoint.clone(),
            };
            let bad = |reason: String| AgentsError::BadEndpoint {
                name: name.clone(),
                endpoint: agent.endpoint.clone(),
                reason,
            };
            let tls = match url.split_once("://").map(|(s, _)| s) {
                Some("https") if agent.insecure => {
                    return Err(AgentsError::Contradiction {
                        name: name.clone(),
                        endpoint: agent.endpoint.clone(),
                    })
                }
                Some("https") => true,
                Some("http") => false,
                _ => {
                    return Err(bad(
                        "expected http://host:port, https://host:port or dns:///host:port".into(),
                    ))
                }
            };
            if !tls && !agent.insecure {
                return Err(bad(
                    "insecure = false asks for TLS: give an https:// or dns:/// endpoint".into(),
                ));
            }
            let timeout = Duration::from_secs(agent.timeout_seconds.max(1));
            let mut endpoint = Endpoint::from_shared(url)
                .map_err(|e| bad(e.to_string()))?
                .connect_timeout(timeout)
                .timeout(timeout);
            if tls {
                endpoint = endpoint
                    .tls_config(tls_config(name, agent)?)
                    .map_err(|e| bad(e.to_string()))?;
            } else if agent.ca_file.is_some() {
                return Err(bad("ca_file is for TLS; this endpoint is plaintext".into()));
            }
            let channel = endpoint.connect_lazy();
            out.insert(name.clone(), (agent.clone(), channel));
        }
        Ok(Self {
            agents: Arc::new(out),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    /// The channel and settings of the agent named `name`.
    pub fn get(&self, name: &str) -> Option<(&AgentEndpoint, Channel)> {
        self.agents.get(name).map(|(e, c)| (e, c.clone()))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.agents.keys().map(String::as_str)
    }

    /// What each configured agent server says it runs (`ListAgents`), by configured name.
    /// An agent server that does not answer is reported in its slot, not fatal.
    pub async fn list(&self) -> Vec<(String, Result<Vec<Agent>, Status>)> {
        let calls = self.agents.iter().map(|(name, (_, channel))| async move {
            let mut client = AgentMetadataServiceClient::new(channel.clone());
            let answer = client
                .list_agents(ListAgentsRequest {})
                .await
                .map(|r| r.into_inner().agents);
            (name.clone(), answer)
        });
        futures::future::join_all(calls).await
    }
}
