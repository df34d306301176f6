//! `compile_task`: the checks Flyte makes on a task template at registration.

use alula_core::ids::display_id;
use alula_idl::flyteidl::core::{
    resources::ResourceEntry, task_template::Target, CompiledTask, Container, K8sPod, TaskTemplate,
    TypedInterface,
};
use alula_idl::wkt::{value::Kind, Struct};

use crate::errors::{CompileError, CompileErrors, ErrorCode};
use crate::names::is_dns1123_label;

/// Validates a task template and wraps it as a `CompiledTask`.
pub fn compile_task(template: &TaskTemplate) -> Result<CompiledTask, CompileErrors> {
    let mut errors = Vec::new();
    // Errors name the task, since a task has no node id of its own.
    let at = template
        .id
        .as_ref()
        .map_or_else(|| "root".to_string(), |id| id.name.clone());
    if template.id.is_none() {
        errors.push(CompileError::new(
            ErrorCode::ValueRequired,
            &at,
            "the task template has no id",
        ));
    }
    if let Some(iface) = &template.interface {
        validate_interface(&at, iface, &mut errors);
    }
    match &template.target {
        Some(Target::Container(c)) => validate_container(&at, template, c, &mut errors),
        Some(Target::K8sPod(pod)) => validate_k8s_pod(&at, pod, &mut errors),
        _ => {}
    }
    match CompileErrors::from_collected(errors) {
        Some(errs) => Err(errs),
        None => Ok(CompiledTask {
            template: Some(template.clone()),
        }),
    }
}

/// Every variable of an interface needs a name and a type.
pub(crate) fn validate_interface(at: &str, iface: &TypedInterface, errors: &mut Vec<CompileError>) {
    let maps = [("input", &iface.inputs), ("output", &iface.outputs)];
    for (kind, vars) in maps {
        let Some(vars) = vars else { continue };
        let mut names: Vec<&String> = vars.variables.keys().collect();
        names.sort();
        for name in names {
            if name.is_empty() {
                errors.push(CompileError::new(
                    ErrorCode::ValueRequired,
                    at,
                    format!("an {kind} variable of the interface has an empty name"),
                ));
            }
            if vars
                .variables
                .get(name)
                .and_then(|v| v.r#type.as_ref())
                .is_none()
            {
                errors.push(CompileError::new(
                    ErrorCode::ValueRequired,
                    at,
                    format!("{kind} variable [{name}] of the interface has no type"),
                ));
            }
        }
    }
}

fn validate_container(
    at: &str,
    template: &TaskTemplate,
    container: &Container,
    errors: &mut Vec<CompileError>,
) {
    let has_interface = template.interface.as_ref().is_some_and(|i| {
        i.inputs.as_ref().is_some_and(|v| !v.variables.is_empty())
            || i.outputs.as_ref().is_some_and(|v| !v.variables.is_empty())
    });
    // Without a command the container cannot be told where its inputs and outputs live.
    if has_interface && container.command.is_empty() && container.args.is_empty() {
        errors.push(CompileError::new(
            ErrorCode::ValueRequired,
            at,
            format!(
                "task {} has an interface, so its container needs a command or args",
                display_id(template.id.as_ref())
            ),
        ));
    }
    if container.image.is_empty() {
        errors.push(CompileError::new(
            ErrorCode::ValueRequired,
            at,
            format!(
                "task {} has a container without an image",
                display_id(template.id.as_ref())
            ),
        ));
    }
    if let Some(resources) = &container.resources {
        let entries = [
            ("requests", &resources.requests),
            ("limits", &resources.limits),
        ];
        for (kind, list) in entries {
            for ResourceEntry { name, value } in list.iter() {
                if !is_quantity(value) {
                    errors.push(CompileError::new(
                        ErrorCode::UnrecognizedValue,
                        at,
                        format!("resource {kind}[{name}] = {value:?} is not a Kubernetes quantity"),
                    ));
                }
            }
        }
    }
}

fn validate_k8s_pod(at: &str, pod: &K8sPod, errors: &mut Vec<CompileError>) {
    let Some(spec) = &pod.pod_spec else {
        errors.push(CompileError::new(
            ErrorCode::ValueRequired,
            at,
            "the k8s_pod task has no pod_spec",
        ));
        return;
    };
    let invalid = |what: String| CompileError::new(ErrorCode::InvalidValue, at, what);
    let containers = match spec.fields.get("containers").and_then(|v| v.kind.as_ref()) {
        Some(Kind::ListValue(list)) => &list.values,
        None => return,
        Some(_) => {
            errors.push(invalid("pod_spec.containers must be a list".to_string()));
            return;
        }
    };
    for (i, c) in containers.iter().enumerate() {
        let name = match &c.kind {
            Some(Kind::StructValue(Struct { fields })) => {
                match fields.get("name").and_then(|v| v.kind.as_ref()) {
                    Some(Kind::StringValue(name)) => name.as_str(),
                    _ => "",
                }
            }
            _ => {
                errors.push(invalid(format!(
                    "pod_spec.containers[{i}] must be an object"
                )));
                continue;
            }
        };
        if !is_dns1123_label(name) {
            errors.push(invalid(format!(
                "pod_spec.containers[{i}].name {name:?} is not a DNS-1123 label (lowercase letters, digits and '-', at most 63)"
            )));
        }
    }
}

/// A Kubernetes resource quantity: a signed decimal number with an optional binary-SI (`Ki`..`Ei`),
/// decimal-SI (`m`, `k`, `M`..`E`) or exponent (`e3`) suffix.
pub(crate) fn is_quantity(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let number_len = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(number_len);
    let mut parts = number.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next();
    let number_ok = match frac {
        None => !whole.is_empty(),
        Some(f) => (!whole.is_empty() || !f.is_empty()) && !f.contains('.'),
    };
    let suffix_ok = match suffix {
        "" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            true
        }
        _ => suffix
            .strip_prefix(['e', 'E'])
            .map(|exp| exp.strip_prefix(['+', '-']).unwrap_or(exp))
            .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit())),
    };
    number_ok && suffix_ok
}

#[cfg(test)]
mod tests {
    use super::is_quantity;

    #[test]
    fn quantities() {
        for ok in [
            "1", "500Mi", "0.5", ".5", "1.", "2Gi", "100m", "-1", "+3k", "1e3", "1E-2", "10Ei",
        ] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in [
            "", "abc", "1.2.3", "Mi", "1 Gi", "1gi", "1e", "1KiB", ".", "1x",
        ] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
