//! Which plugin runs a task: Flyte's `tasks.task-plugins` (`enabled-plugins`,
//! `default-for-task-types`) over Alula's plugins.
//!
//! For a task of type `t` (version `v`), in this order:
//! 1. the plugin `default_for_task_types` names for `t:v`, else for `t`;
//! 2. else the first enabled plugin that names `t` (any version, or `v`) in its
//!    [`Plugin::task_types`] and accepts the task;
//! 3. else the first enabled generic plugin (one naming no types: the pod, warm and process
//!    plugins) that accepts it — today's behaviour for container tasks;
//! 4. else nothing: a precise refusal naming the task, its type and what the server serves.
//!
//! A plugin named for a type but unable to run a task of it (a container plugin for a task
//! without a container) is a refusal too, never a silent fallback to another plugin.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use alula_idl::flyteidl::core::TaskTemplate;
use serde::Deserialize;

use crate::Plugin;

/// A task type a plugin serves: a name, and the one version it serves (`None`: every version).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskType {
    pub name: String,
    pub version: Option<i32>,
}

impl TaskType {
    /// Every version of `name`.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: None,
        }
    }

    pub fn versioned(name: impl Into<String>, version: i32) -> Self {
        Self {
            name: name.into(),
            version: Some(version),
        }
    }

    /// Whether a task of type `name`, version `version` is one of these.
    pub fn matches(&self, name: &str, version: i32) -> bool {
        self.name == name && self.version.is_none_or(|v| v == version)
    }

    /// `name` or `name:version`, the form of `default_for_task_types` keys.
    fn parse(key: &str) -> Result<Self, RegistryError> {
        match key.rsplit_once(':') {
            None => Ok(Self::named(key)),
            Some((name, version)) => {
                let version = version.parse().map_err(|_| RegistryError::BadTypeKey {
                    key: key.to_string(),
                })?;
                Ok(Self::versioned(name, version))
            }
        }
    }
}

impl fmt::Display for TaskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            None => f.write_str(&self.name),
            Some(v) => write!(f, "{}:{v}", self.name),
        }
    }
}

/// The `[plugins]` table of the server's settings.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// The plugins tasks may run on, by name (`k8s`, `warm`, `process`, `agent`, `spark`...).
    /// `None`: every plugin the server set up.
    pub enabled: Option<Vec<String>>,
    /// Task type (`type` or `type:version`) → the plugin that runs it.
    #[serde(default)]
    pub default_for_task_types: BTreeMap<String, String>,
}

/// Settings that cannot work: the server refuses to start with them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "[plugins] enabled names {name:?}, which this server does not have (it has: {available})"
    )]
    UnknownPlugin { name: String, available: String },
    #[error("[plugins.default_for_task_types] {task_type:?} = {name:?}: no enabled plugin is named so (enabled: {enabled})")]
    DefaultNotEnabled {
        task_type: String,
        name: String,
        enabled: String,
    },
    #[error(
        "[plugins.default_for_task_types] key {key:?} is not `type` or `type:version` (a number)"
    )]
    BadTypeKey { key: String },
}

/// Why no plugin runs a task: a user error, reported at registration, launch or start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no plugin of this server runs task {task} of type {task_type:?} (version {version}); it serves {served}")]
    NoPlugin {
        task: String,
        task_type: String,
        version: i32,
        served: String,
    },
    #[error("plugin {plugin:?}, configured for task type {task_type:?}, cannot run task {task} (it has no target that plugin runs)")]
    PluginCannotRun {
        task: String,
        task_type: String,
        plugin: String,
    },
}

/// The enabled plugins, in dispatch order, and the type defaults.
pub struct PluginRegistry {
    plugins: Vec<Arc<dyn Plugin>>,
    /// Sorted so that a versioned key is looked up before its bare name.
    defaults: BTreeMap<TaskType, usize>,
}

impl fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginRegistry")
            .field(
                "plugins",
                &self.plugins.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .field("defaults", &self.defaults)
            .finish()
    }
}

fn names(plugins: &[Arc<dyn Plugin>]) -> String {
    let names: Vec<&str> = plugins.iter().map(|p| p.name()).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

impl PluginRegistry {
    /// Every plugin, in the given order, without type defaults: today's behaviour.
    pub fn in_order(plugins: Vec<Arc<dyn Plugin>>) -> Self {
        Self {
            plugins,
            defaults: BTreeMap::new(),
        }
    }

    /// The plugins `config` enables (in the order given here, the server's dispatch order)
    /// and its type defaults, checked: a name that matches no plugin fails.
    pub fn new(
        plugins: Vec<Arc<dyn Plugin>>,
        config: &RegistryConfig,
    ) -> Result<Self, RegistryError> {
        let plugins = match &config.enabled {
            None => plugins,
            Some(enabled) => {
                if let Some(name) = enabled
                    .iter()
                    .find(|name| !plugins.iter().any(|p| p.name() == name.as_str()))
                {
                    return Err(RegistryError::UnknownPlugin {
                        name: name.clone(),
                        available: names(&plugins),
                    });
                }
                plugins
                    .into_iter()
                    .filter(|p| enabled.iter().any(|n| n == p.name()))
                    .collect()
            }
        };
        let mut defaults = BTreeMap::new();
        for (key, name) in &config.default_for_task_types {
            let task_type = TaskType::parse(key)?;
            let Some(ix) = plugins.iter().position(|p| p.name() == name.as_str()) else {
                return Err(RegistryError::DefaultNotEnabled {
                    task_type: key.clone(),
                    name: name.clone(),
                    enabled: names(&plugins),
                });
            };
            defaults.insert(task_type, ix);
        }
        Ok(Self { plugins, defaults })
    }

    /// The enabled plugins, in dispatch order ([`Self::select`] answers an index into it).
    pub fn plugins(&self) -> &[Arc<dyn Plugin>] {
        &self.plugins
    }

    /// The plugin that runs `task`, as an index into [`Self::plugins`].
    pub fn select(&self, task: &TaskTemplate) -> Result<usize, Refusal> {
        let (name, version) = (task.r#type.as_str(), task.task_type_version);
        let configured = self
            .defaults
            .get(&TaskType::versioned(name, version))
            .or_else(|| self.defaults.get(&TaskType::named(name)));
        if let Some(&ix) = configured {
            return match self.plugins[ix].can_run(task) {
                true => Ok(ix),
                false => Err(Refusal::PluginCannotRun {
                    task: task_display(task),
                    task_type: name.to_string(),
                    plugin: self.plugins[ix].name().to_string(),
                }),
            };
        }
        let naming = self.plugins.iter().position(|p| {
            p.task_types().iter().any(|t| t.matches(name, version)) && p.can_run(task)
        });
        let generic = || {
            self.plugins
                .iter()
                .position(|p| p.task_types().is_empty() && p.can_run(task))
        };
        naming.or_else(generic).ok_or_else(|| Refusal::NoPlugin {
            task: task_display(task),
            task_type: name.to_string(),
            version,
            served: self.served(),
        })
    }

    /// What this registry serves, for messages: the named types and whether container tasks
    /// run (the generic plugins).
    pub fn served(&self) -> String {
        let mut types: Vec<String> = self.defaults.keys().map(|t| t.to_string()).collect();
        for p in &self.plugins {
            types.extend(p.task_types().iter().map(|t| t.to_string()));
        }
        types.sort();
        types.dedup();
        let generic: Vec<&str> = self
            .plugins
            .iter()
            .filter(|p| p.task_types().is_empty())
            .map(|p| p.name())
            .collect();
        let mut parts = Vec::new();
        if !types.is_empty() {
            parts.push(format!("task types {}", types.join(", ")));
        }
        if !generic.is_empty() {
            parts.push(format!(
                "tasks with a container or pod of any other type (plugins {})",
                generic.join(", ")
            ));
        }
        if parts.is_empty() {
            "no tasks (no plugin is enabled)".into()
        } else {
            parts.join(", and ")
        }
    }
}

/// Admin asks the registry at registration and launch (when admin and propeller share a
/// process), so a task no plugin runs is refused there rather than at its first attempt.
impl alula_plane::ServedTasks for PluginRegistry {
    fn refusal(&self, task: &TaskTemplate) -> Option<String> {
        self.select(task).err().map(|r| r.to_string())
    }
}

fn task_display(task: &TaskTemplate) -> String {
    crate::process::task_name(task)
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
