//! The `[plugins]` table: which plugins tasks may run on and which runs each task type
//! (`alula_propeller::registry`), and the agents of the agent plugin (`[plugins.agent]`).
//!
//! ```toml
//! [plugins]
//! enabled = ["k8s", "warm", "process", "agent"]   # default: every plugin set up
//! [plugins.default_for_task_types]
//! python-task = "process"
//! [plugins.agent]                                 # alula_propeller::agent::AgentPluginConfig
//! poll_interval_ms = 1000
//! [plugins.agent.agents.default]
//! endpoint = "http://flyteagent:8000"
//! timeout_seconds = 10
//! [plugins.agent.agent_for_task_types]            # besides what ListAgents reports
//! sensor = "default"
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use alula_propeller::agent::{AgentPlugin, AgentPluginConfig};
use alula_propeller::{Plugin, PluginRegistry, RegistryConfig};
use anyhow::{Context, Result};
use serde::Deserialize;

/// How long the start waits for the agents' first `ListAgents` answers (an agent that is not
/// up yet is asked again every `discovery_interval_seconds`).
const FIRST_DISCOVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsTable {
    pub enabled: Option<Vec<String>>,
    #[serde(default)]
    pub default_for_task_types: BTreeMap<String, String>,
    pub agent: Option<AgentPluginConfig>,
}

impl PluginsTable {
    fn registry_config(&self) -> RegistryConfig {
        RegistryConfig {
            enabled: self.enabled.clone(),
            default_for_task_types: self.default_for_task_types.clone(),
        }
    }
}

/// The agent plugin, when agents are configured: its types discovered (bounded wait) and
/// rediscovered in the background.
pub async fn agent_plugin(
    table: Option<&PluginsTable>,
    storage: &alula_storage::Storage,
) -> Result<Option<AgentPlugin>> {
    let Some(config) = table.and_then(|t| t.agent.as_ref()) else {
        return Ok(None);
    };
    let plugin = AgentPlugin::new(config, storage.clone()).context("[plugins.agent]")?;
    if tokio::time::timeout(FIRST_DISCOVERY, plugin.discover())
        .await
        .is_err()
    {
        tracing::warn!("the agents did not answer ListAgents in time; asking again later");
    }
    drop(plugin.spawn_discovery());
    Ok(Some(plugin))
}

/// The registry over `plugins` (the server's dispatch order) as `[plugins]` says.
pub fn registry(
    plugins: Vec<Arc<dyn Plugin>>,
    table: Option<&PluginsTable>,
) -> Result<Arc<PluginRegistry>> {
    let config = table.map(PluginsTable::registry_config).unwrap_or_default();
    let registry = PluginRegistry::new(plugins, &config).context("[plugins]")?;
    tracing::info!(serves = %registry.served(), "task plugins");
    Ok(Arc::new(registry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugins_table_parses() {
        let table: PluginsTable = toml::from_str(
            r#"
            enabled = ["process", "agent"]
            [default_for_task_types]
            "spark:1" = "process"
            [agent]
            poll_interval_ms = 200
            [agent.agents.local]
            endpoint = "http://127.0.0.1:8000"
            [agent.agent_for_task_types]
            sensor = "local"
            "#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let agent = table.agent.as_ref().expect("agent");
        assert_eq!(agent.poll_interval_ms, 200);
        assert_eq!(agent.agents["local"].timeout_seconds, 10);
        assert!(agent.agents["local"].insecure);
        assert_eq!(agent.agent_for_task_types["sensor"], "local");
        assert_eq!(
            table.registry_config().enabled,
            Some(vec!["process".into(), "agent".into()])
        );
        assert!(toml::from_str::<PluginsTable>("[agent]\npoll = 1\n").is_err());
    }
}
