//! Admin's `AgentMetadataService`: a proxy over the configured task agents (the directory is
//! [`alula_plane::agents`], shared with propeller's agent plugin), so `pyflyte` and the console
//! list them.

use alula_idl::flyteidl::admin::{
    Agent, GetAgentRequest, GetAgentResponse, ListAgentsRequest, ListAgentsResponse,
};
use alula_idl::flyteidl::service::agent_metadata_service_server::AgentMetadataService;
use tonic::{Request, Response, Status};

pub use alula_plane::agents::{AgentDirectory, AgentEndpoint, AgentsError};

/// Admin's `AgentMetadataService`: the configured agents' answers merged.
#[derive(Clone, Debug, Default)]
pub struct AgentMetadataProxy {
    directory: AgentDirectory,
}

impl AgentMetadataProxy {
    pub fn new(directory: AgentDirectory) -> Self {
        Self { directory }
    }

    /// Every agent of every reachable server; fails only when none answers.
    async fn all(&self) -> Result<Vec<Agent>, Status> {
        let mut agents = Vec::new();
        let mut failures = Vec::new();
        for (name, answer) in self.directory.list().await {
            match answer {
                Ok(found) => agents.extend(found),
                Err(e) => failures.push(format!("{name}: {}", e.message())),
            }
        }
        if agents.is_empty() && !failures.is_empty() {
            return Err(Status::unavailable(format!(
                "no configured agent answered ListAgents ({})",
                failures.join("; ")
            )));
        }
        agents.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(agents)
    }
}

#[tonic::async_trait]
impl AgentMetadataService for AgentMetadataProxy {
    async fn get_agent(
        &self,
        request: Request<GetAgentRequest>,
    ) -> Result<Response<GetAgentResponse>, Status> {
        let name = request.into_inner().name;
        if name.is_empty() {
            return Err(Status::invalid_argument("missing name: the agent to get"));
        }
        let agents = self.all().await?;
        match agents.into_iter().find(|a| a.name == name) {
            Some(agent) => Ok(Response::new(GetAgentResponse { agent: Some(agent) })),
            None => Err(Status::not_found(format!(
                "agent {} not found among the configured agents",
                crate::error::quote(&name)
            ))),
        }
    }

    async fn list_agents(
        &self,
        _request: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        Ok(Response::new(ListAgentsResponse {
            agents: self.all().await?,
        }))
    }
}
