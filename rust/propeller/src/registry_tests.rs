use super::*;
use crate::{Attempt, AttemptStatus, PluginError, Waker};
use alula_idl::flyteidl::core::{task_template, Container, Identifier};
use async_trait::async_trait;
use proptest::prelude::*;

/// A plugin that runs container tasks (generic) or the types it names.
struct Fake {
    name: &'static str,
    types: Vec<TaskType>,
    needs_container: bool,
}

#[async_trait]
impl Plugin for Fake {
    fn name(&self) -> &'static str {
        self.name
    }
    fn can_run(&self, task: &TaskTemplate) -> bool {
        !self.needs_container || matches!(task.target, Some(task_template::Target::Container(_)))
    }
    fn task_types(&self) -> Vec<TaskType> {
        self.types.clone()
    }
    async fn start(&self, _: &Attempt, _: Waker) -> Result<(), PluginError> {
        Ok(())
    }
    async fn check(&self, _: &Attempt, _: Waker) -> Result<AttemptStatus, PluginError> {
        Ok(AttemptStatus::Running)
    }
    async fn abort(&self, _: &Attempt) -> Result<(), PluginError> {
        Ok(())
    }
}

fn generic(name: &'static str) -> Arc<dyn Plugin> {
    Arc::new(Fake {
        name,
        types: vec![],
        needs_container: true,
    })
}

fn serving(name: &'static str, types: Vec<TaskType>) -> Arc<dyn Plugin> {
    Arc::new(Fake {
        name,
        types,
        needs_container: false,
    })
}

fn task(task_type: &str, version: i32, container: bool) -> TaskTemplate {
    TaskTemplate {
        id: Some(Identifier {
            name: "wf.t".into(),
            version: "v1".into(),
            ..Default::default()
        }),
        r#type: task_type.into(),
        task_type_version: version,
        target: container.then(|| task_template::Target::Container(Container::default())),
        ..Default::default()
    }
}

fn today() -> Vec<Arc<dyn Plugin>> {
    vec![generic("k8s"), generic("warm"), generic("process")]
}

fn chosen(r: &PluginRegistry, t: &TaskTemplate) -> Result<&'static str, Refusal> {
    r.select(t).map(|ix| r.plugins()[ix].name())
}

#[test]
fn without_settings_the_first_container_plugin_runs_container_tasks() {
    let r = PluginRegistry::new(today(), &RegistryConfig::default()).expect("registry");
    assert_eq!(chosen(&r, &task("python-task", 0, true)), Ok("k8s"));
    assert_eq!(chosen(&r, &task("spark", 0, true)), Ok("k8s"));
    let err = chosen(&r, &task("sensor", 0, false)).expect_err("no plugin");
    let message = err.to_string();
    assert!(message.contains("wf.t:v1"), "{message}");
    assert!(message.contains("\"sensor\""), "{message}");
    assert!(message.contains("k8s, warm, process"), "{message}");
}

#[test]
fn a_plugin_naming_a_type_wins_over_generic_ones() {
    let mut plugins = today();
    plugins.push(serving("agent", vec![TaskType::named("sensor")]));
    plugins.push(serving("spark", vec![TaskType::versioned("spark", 1)]));
    let r = PluginRegistry::new(plugins, &RegistryConfig::default()).expect("registry");
    assert_eq!(chosen(&r, &task("sensor", 0, false)), Ok("agent"));
    assert_eq!(chosen(&r, &task("sensor", 7, false)), Ok("agent"));
    assert_eq!(chosen(&r, &task("spark", 1, true)), Ok("spark"));
    // Version 0 of spark is not the spark plugin's: a container plugin runs it.
    assert_eq!(chosen(&r, &task("spark", 0, true)), Ok("k8s"));
    // A typed plugin is never offered other types.
    assert!(chosen(&r, &task("bigquery", 0, false)).is_err());
    assert!(r.served().contains("sensor"), "{}", r.served());
}

#[test]
fn defaults_for_task_types_and_enabled_plugins() {
    let config: RegistryConfig = toml::from_str(
        r#"
        enabled = ["warm", "process", "agent"]
        [default_for_task_types]
        python-task = "process"
        "spark:2" = "agent"
        "#,
    )
    .expect("config");
    let mut plugins = today();
    plugins.push(serving("agent", vec![]));
    let r = PluginRegistry::new(plugins, &config).expect("registry");
    assert_eq!(chosen(&r, &task("python-task", 0, true)), Ok("process"));
    assert_eq!(chosen(&r, &task("container", 0, true)), Ok("warm"));
    assert_eq!(chosen(&r, &task("spark", 2, false)), Ok("agent"));
    assert!(!r.plugins().iter().any(|p| p.name() == "k8s"));
    // The configured plugin cannot run a task without a container: refused, not rerouted.
    let config = RegistryConfig {
        enabled: None,
        default_for_task_types: [("sensor".to_string(), "process".to_string())].into(),
    };
    let r = PluginRegistry::new(today(), &config).expect("registry");
    let err = chosen(&r, &task("sensor", 0, false)).expect_err("cannot run");
    assert!(matches!(err, Refusal::PluginCannotRun { .. }), "{err}");
}

#[test]
fn settings_naming_missing_plugins_fail() {
    let config = RegistryConfig {
        enabled: Some(vec!["spark".into()]),
        default_for_task_types: Default::default(),
    };
    let err = PluginRegistry::new(today(), &config).expect_err("unknown");
    assert!(err.to_string().contains("\"spark\""), "{err}");
    let config = RegistryConfig {
        enabled: Some(vec!["process".into()]),
        default_for_task_types: [("spark".to_string(), "k8s".to_string())].into(),
    };
    assert!(matches!(
        PluginRegistry::new(today(), &config),
        Err(RegistryError::DefaultNotEnabled { .. })
    ));
    let config = RegistryConfig {
        enabled: None,
        default_for_task_types: [("spark:x".to_string(), "k8s".to_string())].into(),
    };
    assert!(matches!(
        PluginRegistry::new(today(), &config),
        Err(RegistryError::BadTypeKey { .. })
    ));
    assert!(toml::from_str::<RegistryConfig>("enable = []").is_err());
}

proptest! {
    /// Whatever the plugins and defaults: a selected plugin accepts the task, a typed plugin
    /// is only chosen for a type it names or is configured for, and a refusal means that no
    /// eligible plugin accepts the task.
    #[test]
    fn selection_is_sound(
        kinds in proptest::collection::vec((any::<bool>(), 0usize..3, proptest::option::of(0i32..3)), 0..6),
        default in proptest::option::of((0usize..3, 0usize..6)),
        type_ix in 0usize..3,
        version in 0i32..3,
        container in any::<bool>(),
    ) {
        const TYPES: [&str; 3] = ["python-task", "spark", "sensor"];
        const NAMES: [&str; 6] = ["p0", "p1", "p2", "p3", "p4", "p5"];
        let plugins: Vec<Arc<dyn Plugin>> = kinds
            .iter()
            .enumerate()
            .map(|(i, &(is_generic, t, v))| -> Arc<dyn Plugin> {
                let types = match is_generic {
                    true => vec![],
                    false => vec![TaskType { name: TYPES[t].into(), version: v }],
                };
                Arc::new(Fake { name: NAMES[i], types, needs_container: is_generic })
            })
            .collect();
        let mut config = RegistryConfig::default();
        if let Some((t, p)) = default {
            if p < plugins.len() {
                config.default_for_task_types.insert(TYPES[t].into(), NAMES[p].into());
            }
        }
        let r = PluginRegistry::new(plugins.clone(), &config).expect("registry");
        let t = task(TYPES[type_ix], version, container);
        let configured = config.default_for_task_types.get(TYPES[type_ix]);
        match r.select(&t) {
            Ok(ix) => {
                let p = &r.plugins()[ix];
                prop_assert!(p.can_run(&t));
                let names_it = p.task_types().iter().any(|ty| ty.matches(&t.r#type, version));
                let is_configured = configured.is_some_and(|n| n == p.name());
                prop_assert!(names_it || is_configured || p.task_types().is_empty());
                if let Some(n) = configured {
                    prop_assert_eq!(n.as_str(), p.name());
                }
            }
            Err(Refusal::PluginCannotRun { plugin, .. }) => {
                prop_assert_eq!(Some(&plugin), configured);
            }
            Err(Refusal::NoPlugin { .. }) => {
                prop_assert!(configured.is_none());
                prop_assert!(!plugins.iter().any(|p| p.can_run(&t)
                    && (p.task_types().is_empty()
                        || p.task_types().iter().any(|ty| ty.matches(&t.r#type, version)))));
            }
        }
    }
}
