//! Pod tasks (a `k8s_pod` target: flytekit's `@task(pod_template=PodTemplate(...))`) as every
//! plugin reads them: which of the pod's containers is the task (the primary container), and,
//! for plugins without a cluster, that container's command, arguments and environment.
//!
//! The Kubernetes plugin builds the whole pod; the process and warm plugins run only the
//! primary container's command and ignore what needs a pod (other containers, volumes,
//! tolerations, node selectors, resources, `valueFrom` environment variables).

use alula_idl::flyteidl::core::{task_template::Target, K8sPod, TaskNodeOverrides, TaskTemplate};
use alula_idl::google::protobuf::{value::Kind, Struct, Value};

use crate::plugin::PluginError;

/// The task config entry (and `K8sPod` field) flytekit names a pod task's primary container in.
pub const PRIMARY_CONTAINER_KEY: &str = "primary_container_name";

/// The pod an attempt of `task` runs in, if it runs in one of its own: a node's `pod_template`
/// override (`with_overrides(pod_template=...)`, serialized with the task's primary container
/// in it) wins over the task's `k8s_pod` target.
pub fn pod_target<'a>(
    task: &'a TaskTemplate,
    overrides: Option<&'a TaskNodeOverrides>,
) -> Option<&'a K8sPod> {
    overrides
        .and_then(|o| o.pod_template.as_ref())
        .filter(|k| k.pod_spec.is_some())
        .or(match &task.target {
            Some(Target::K8sPod(k)) => Some(k),
            _ => None,
        })
}

/// The name of `pod`'s primary container among `containers` (the pod spec's container names):
/// the one the pod target names, else the one the task's config names (flytekit writes both),
/// else the only container. An error when none is named or the named one is missing.
pub fn primary_container_name(
    pod: &K8sPod,
    task: &TaskTemplate,
    containers: &[&str],
) -> Result<String, PluginError> {
    let primary = Some(pod.primary_container_name.clone())
        .filter(|n| !n.is_empty())
        .or_else(|| task.config.get(PRIMARY_CONTAINER_KEY).cloned())
        .or_else(|| match containers {
            [only] => Some(only.to_string()),
            _ => None,
        })
        .ok_or_else(|| {
            PluginError::Invalid(
                "the task's pod names no primary container (primary_container_name)".into(),
            )
        })?;
    if !containers.contains(&primary.as_str()) {
        return Err(PluginError::Invalid(format!(
            "the task's pod has no container named {primary:?} (its primary container)"
        )));
    }
    Ok(primary)
}

/// What a local process runs of a pod task: its primary container's command line (not yet
/// templated) and the variables of its `env` that have a plain `value`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrimaryContainer {
    pub name: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    /// In the pod spec's order: a later entry of the same name wins, as in a pod.
    pub env: Vec<(String, String)>,
}

/// The primary container of the pod `task` runs in (see [`pod_target`]), or `None` when the
/// task runs in no pod of its own (a container task).
pub fn primary_container(
    task: &TaskTemplate,
    overrides: Option<&TaskNodeOverrides>,
) -> Result<Option<PrimaryContainer>, PluginError> {
    let Some(pod) = pod_target(task, overrides) else {
        return Ok(None);
    };
    let containers: Vec<&Struct> = pod
        .pod_spec
        .as_ref()
        .and_then(|s| field(s, "containers"))
        .map(list)
        .unwrap_or_default()
        .into_iter()
        .filter_map(as_struct)
        .collect();
    let names: Vec<&str> = containers
        .iter()
        .map(|c| field(c, "name").and_then(as_str).unwrap_or_default())
        .collect();
    let primary = primary_container_name(pod, task, &names)?;
    let Some(c) = containers
        .into_iter()
        .find(|c| field(c, "name").and_then(as_str) == Some(primary.as_str()))
    else {
        return Err(PluginError::Invalid(format!(
            "the task's pod has no container named {primary:?} (its primary container)"
        )));
    };
    let strings = |name: &str| -> Vec<String> {
        field(c, name)
            .map(list)
            .unwrap_or_default()
            .into_iter()
            .filter_map(as_str)
            .map(str::to_string)
            .collect()
    };
    let env = field(c, "env")
        .map(list)
        .unwrap_or_default()
        .into_iter()
        .filter_map(as_struct)
        .filter_map(|e| {
            let name = field(e, "name").and_then(as_str)?;
            // `valueFrom` (secrets, config maps, the downward API) needs a cluster.
            let value = field(e, "value").and_then(as_str)?;
            Some((name.to_string(), value.to_string()))
        })
        .collect();
    Ok(Some(PrimaryContainer {
        command: strings("command"),
        args: strings("args"),
        env,
        name: primary,
    }))
}

fn field<'a>(s: &'a Struct, name: &str) -> Option<&'a Value> {
    s.fields.get(name)
}

fn list(v: &Value) -> Vec<&Value> {
    match &v.kind {
        Some(Kind::ListValue(l)) => l.values.iter().collect(),
        _ => Vec::new(),
    }
}

fn as_struct(v: &Value) -> Option<&Struct> {
    match &v.kind {
        Some(Kind::StructValue(s)) => Some(s),
        _ => None,
    }
}

fn as_str(v: &Value) -> Option<&str> {
    match &v.kind {
        Some(Kind::StringValue(s)) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alula_idl::google::protobuf::ListValue;

    fn s(v: &str) -> Value {
        Value {
            kind: Some(Kind::StringValue(v.into())),
        }
    }

    fn obj(fields: Vec<(&str, Value)>) -> Value {
        Value {
            kind: Some(Kind::StructValue(Struct {
                fields: fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            })),
        }
    }

    fn arr(values: Vec<Value>) -> Value {
        Value {
            kind: Some(Kind::ListValue(ListValue { values })),
        }
    }

    fn pod_task(primary: &str, config: Option<&str>) -> TaskTemplate {
        let spec = obj(vec![(
            "containers",
            arr(vec![
                obj(vec![
                    ("name", s("sidecar")),
                    ("command", arr(vec![s("false")])),
                ]),
                obj(vec![
                    ("name", s("main")),
                    ("args", arr(vec![s("echo"), s("{{.input}}")])),
                    (
                        "env",
                        arr(vec![
                            obj(vec![("name", s("A")), ("value", s("1"))]),
                            obj(vec![("name", s("SECRET")), ("valueFrom", obj(vec![]))]),
                            obj(vec![("name", s("A")), ("value", s("2"))]),
                        ]),
                    ),
                ]),
            ]),
        )]);
        let Some(Kind::StructValue(pod_spec)) = spec.kind else {
            unreachable!()
        };
        TaskTemplate {
            target: Some(Target::K8sPod(K8sPod {
                pod_spec: Some(pod_spec),
                primary_container_name: primary.into(),
                ..Default::default()
            })),
            config: config
                .map(|c| [(PRIMARY_CONTAINER_KEY.to_string(), c.to_string())].into())
                .unwrap_or_default(),
            ..Default::default()
        }
    }

    #[test]
    fn the_primary_container_is_named_by_the_target_or_the_config() {
        for task in [pod_task("main", None), pod_task("", Some("main"))] {
            let c = primary_container(&task, None)
                .expect("valid")
                .expect("a pod");
            assert_eq!(c.name, "main");
            assert!(c.command.is_empty());
            assert_eq!(c.args, ["echo", "{{.input}}"]);
            assert_eq!(c.env, [("A".into(), "1".into()), ("A".into(), "2".into())]);
        }
        let err = primary_container(&pod_task("", None), None).expect_err("two containers");
        assert!(
            err.to_string().contains("names no primary container"),
            "{err}"
        );
        let err = primary_container(&pod_task("gone", None), None).expect_err("missing");
        assert!(
            err.to_string().contains("no container named \"gone\""),
            "{err}"
        );
        assert_eq!(
            primary_container(&TaskTemplate::default(), None).expect("no pod"),
            None
        );
    }

    #[test]
    fn the_only_container_is_the_primary_one() {
        let pod = K8sPod::default();
        let task = TaskTemplate::default();
        assert_eq!(
            primary_container_name(&pod, &task, &["only"]).expect("only"),
            "only"
        );
    }
}
