//! Pod templates as flyteplugins applies them (`MergeBasePodSpecOntoTemplate`):
//!
//! - the base template is the `PodTemplate` the task names (`metadata.pod_template_name`, read
//!   from the tasks' namespace), else the configured default (inline, or by name);
//! - the task's pod (its container, or its `k8s_pod` target's `pod_spec`) is merged onto the
//!   template's pod spec: the task's values win, lists are appended (volumes, tolerations...);
//! - each container of the task starts from the template's container named `default`, then the
//!   one named `primary` for the primary container, then its own fields on top.
//!
//! The merge is mergo's `WithOverride` + `WithAppendSlice` on the JSON form of the specs: a
//! field the task sets replaces the template's, objects merge field by field, arrays append.

use alula_idl::google::protobuf::{value::Kind, Struct, Value};
use alula_propeller::PluginError;
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use serde_json::{Map, Value as Json};

/// The template container every container starts from.
pub const DEFAULT_CONTAINER: &str = "default";
/// The template container the primary container starts from (after `default`).
pub const PRIMARY_CONTAINER_TEMPLATE: &str = "primary";
pub const DEFAULT_INIT_CONTAINER: &str = "default-init";
pub const PRIMARY_INIT_CONTAINER_TEMPLATE: &str = "primary-init";

/// A protobuf `Struct` (a `k8s_pod` target's pod spec) as JSON. Numbers are doubles in a
/// `Struct`; whole ones become integers, which is what Kubernetes' integer fields accept.
pub fn struct_to_json(s: &Struct) -> Json {
    Json::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), value_to_json(v)))
            .collect(),
    )
}

fn value_to_json(v: &Value) -> Json {
    match &v.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::NumberValue(n)) => {
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                Json::from(*n as i64)
            } else {
                serde_json::Number::from_f64(*n).map_or(Json::Null, Json::Number)
            }
        }
        Some(Kind::StringValue(s)) => Json::String(s.clone()),
        Some(Kind::BoolValue(b)) => Json::Bool(*b),
        Some(Kind::StructValue(s)) => struct_to_json(s),
        Some(Kind::ListValue(l)) => Json::Array(l.values.iter().map(value_to_json).collect()),
    }
}

/// The pod spec of a `k8s_pod` target.
pub fn pod_spec_from_struct(s: &Struct) -> Result<PodSpec, PluginError> {
    serde_json::from_value(struct_to_json(s))
        .map_err(|e| PluginError::Invalid(format!("the task's pod spec is not a pod spec: {e}")))
}

/// `src` onto `dst`: `src`'s values win, objects merge, arrays append, nulls change nothing.
fn merge_json(dst: &mut Json, src: Json) {
    match (dst, src) {
        (_, Json::Null) => {}
        (Json::Object(d), Json::Object(s)) => {
            for (k, v) in s {
                merge_json(d.entry(k).or_insert(Json::Null), v);
            }
        }
        (Json::Array(d), Json::Array(s)) => d.extend(s),
        (d, s) => *d = s,
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Json {
    // Kubernetes' types always serialize.
    serde_json::to_value(v).unwrap_or(Json::Object(Map::new()))
}

fn from_json<T: serde::de::DeserializeOwned>(v: Json, what: &str) -> Result<T, PluginError> {
    serde_json::from_value(v)
        .map_err(|e| PluginError::Invalid(format!("merging the pod template into the {what}: {e}")))
}

/// `src` merged onto `dst` (both made of Kubernetes types).
pub fn merged<T>(dst: &T, src: &T, what: &str) -> Result<T, PluginError>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let mut d = to_json(dst);
    merge_json(&mut d, to_json(src));
    from_json(d, what)
}

fn merge_containers(
    containers: &[Container],
    template: &[Container],
    default_name: &str,
    primary_name: &str,
    primary: Option<&str>,
) -> Result<Vec<Container>, PluginError> {
    let find = |n: &str| template.iter().find(|c| c.name == n);
    let (default, primary_template) = (find(default_name), find(primary_name));
    containers
        .iter()
        .map(|c| {
            let mut out = default.cloned().unwrap_or_default();
            if primary == Some(c.name.as_str()) {
                if let Some(p) = primary_template {
                    out = merged(&out, p, "primary container")?;
                }
            }
            let mut out = merged(&out, c, "container")?;
            out.name = c.name.clone();
            Ok(out)
        })
        .collect()
}

/// The task's `spec` merged onto the base `template`; `primary` names the primary container.
pub fn apply(
    template: &PodTemplateSpec,
    spec: &PodSpec,
    primary: &str,
) -> Result<PodSpec, PluginError> {
    let Some(base) = &template.spec else {
        return Ok(spec.clone());
    };
    // Template containers are patterns, not containers to run.
    let mut pattern = base.clone();
    pattern.containers = Vec::new();
    pattern.init_containers = None;
    let mut out: PodSpec = merged(&pattern, spec, "pod spec")?;
    out.containers = merge_containers(
        &spec.containers,
        &base.containers,
        DEFAULT_CONTAINER,
        PRIMARY_CONTAINER_TEMPLATE,
        Some(primary),
    )?;
    if let Some(init) = &spec.init_containers {
        out.init_containers = Some(merge_containers(
            init,
            base.init_containers.as_deref().unwrap_or_default(),
            DEFAULT_INIT_CONTAINER,
            PRIMARY_INIT_CONTAINER_TEMPLATE,
            None,
        )?);
    }
    Ok(out)
}
