//! Which agent serves which task type: `agent_for_task_types` from the settings, then what each
//! agent server answers to `ListAgents` (asked at start and again every
//! `discovery_interval_seconds`, so an agent deployed later is found).

use std::collections::BTreeMap;
use std::sync::RwLock;

use alula_plane::agents::AgentDirectory;

use crate::registry::TaskType;

/// Where tasks of one type go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The configured agent (a key of the directory).
    pub agent: String,
    /// Whether that agent runs it through `ExecuteTaskSync` (its `Agent.is_sync`).
    pub sync: bool,
}

/// The type table, replaced whole at each discovery.
#[derive(Debug, Default)]
pub struct Routes {
    configured: BTreeMap<TaskType, String>,
    table: RwLock<BTreeMap<TaskType, Route>>,
}

impl Routes {
    pub fn new(configured: BTreeMap<TaskType, String>) -> Self {
        let table = configured
            .iter()
            .map(|(t, agent)| {
                let route = Route {
                    agent: agent.clone(),
                    sync: false,
                };
                (t.clone(), route)
            })
            .collect();
        Self {
            configured,
            table: RwLock::new(table),
        }
    }

    /// The route of a task of type `name`, version `version`: the versioned entry first.
    pub fn get(&self, name: &str, version: i32) -> Option<Route> {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        table
            .get(&TaskType::versioned(name, version))
            .or_else(|| table.get(&TaskType::named(name)))
            .cloned()
    }

    pub fn types(&self) -> Vec<TaskType> {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        table.keys().cloned().collect()
    }

    /// Asks every agent server what it runs and rebuilds the table: configured types keep
    /// their agent (learning only whether it is sync); discovered ones go to the first agent,
    /// in name order, that lists them. An agent that does not answer keeps the routes it had.
    pub async fn discover(&self, directory: &AgentDirectory) {
        let answers = directory.list().await;
        let previous = self.table.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut table: BTreeMap<TaskType, Route> = BTreeMap::new();
        let mut sync_of: BTreeMap<(String, TaskType), bool> = BTreeMap::new();
        for (agent, answer) in &answers {
            match answer {
                Ok(agents) => {
                    for a in agents {
                        for category in &a.supported_task_categories {
                            let t = TaskType::versioned(category.name.clone(), category.version);
                            sync_of.insert((agent.clone(), t.clone()), a.is_sync);
                            // Flyte matches categories by name; a version other than 0 is
                            // kept apart so that `type:version` routes can differ.
                            let t = match category.version {
                                0 => TaskType::named(category.name.clone()),
                                _ => t,
                            };
                            sync_of.insert((agent.clone(), t.clone()), a.is_sync);
                            table.entry(t).or_insert(Route {
                                agent: agent.clone(),
                                sync: a.is_sync,
                            });
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(agent, error = %e.message(), "ListAgents failed; keeping its routes");
                    for (t, route) in &previous {
                        if &route.agent == agent {
                            table.entry(t.clone()).or_insert(route.clone());
                        }
                    }
                }
            }
        }
        for (t, agent) in &self.configured {
            let sync = sync_of
                .get(&(agent.clone(), t.clone()))
                .or_else(|| sync_of.get(&(agent.clone(), TaskType::named(t.name.clone()))))
                .copied()
                .or_else(|| previous.get(t).map(|r| r.sync))
                .unwrap_or(false);
            table.insert(
                t.clone(),
                Route {
                    agent: agent.clone(),
                    sync,
                },
            );
        }
        tracing::info!(
            routes = ?table.iter().map(|(t, r)| format!("{t} -> {}{}", r.agent, if r.sync { " (sync)" } else { "" })).collect::<Vec<_>>(),
            "agent task types"
        );
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = table;
    }
}
