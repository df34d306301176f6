//! Task resource defaults and limits (`TASK_RESOURCE` matchable attributes over the server's
//! defaults), applied to an execution's task templates as flyteadmin applies them when it
//! creates an execution: a request or limit the task leaves unset is filled (a request from the
//! task's limit, else the default; a limit from the request), and values above the platform
//! limit are lowered to it, requests never above limits. Admin resolves the platform resources
//! when the execution is created and stores them beside its inputs ([`KEY_FILE`]); propeller
//! applies them to the tasks it runs.

use alula_idl::flyteidl::admin::{TaskResourceAttributes, TaskResourceSpec};
use alula_idl::flyteidl::core::{
    resources::{ResourceEntry, ResourceName},
    task_template, Resources, TaskTemplate,
};

/// The execution's platform resources, in its metadata folder, when any are configured.
pub const KEY_FILE: &str = "task_resources.pb";

/// The platform resources of an execution: each field of the matchable attributes, else the
/// server's default.
pub fn platform_resources(
    matchable: Option<&TaskResourceAttributes>,
    server: &TaskResourceAttributes,
) -> TaskResourceAttributes {
    let pick = |m: Option<&TaskResourceSpec>, s: Option<&TaskResourceSpec>| {
        let m = m.cloned().unwrap_or_default();
        let s = s.cloned().unwrap_or_default();
        let or = |a: String, b: String| if a.is_empty() { b } else { a };
        let spec = TaskResourceSpec {
            cpu: or(m.cpu, s.cpu),
            gpu: or(m.gpu, s.gpu),
            memory: or(m.memory, s.memory),
            storage: or(m.storage, s.storage),
            ephemeral_storage: or(m.ephemeral_storage, s.ephemeral_storage),
        };
        (spec != TaskResourceSpec::default()).then_some(spec)
    };
    TaskResourceAttributes {
        defaults: pick(
            matchable.and_then(|m| m.defaults.as_ref()),
            server.defaults.as_ref(),
        ),
        limits: pick(
            matchable.and_then(|m| m.limits.as_ref()),
            server.limits.as_ref(),
        ),
    }
}

/// True when there is nothing to apply.
pub fn is_empty(platform: &TaskResourceAttributes) -> bool {
    platform.defaults.is_none() && platform.limits.is_none()
}

/// Fills and caps the container resources of `task` (other task kinds are left alone).
pub fn apply(task: &mut TaskTemplate, platform: &TaskResourceAttributes) {
    if is_empty(platform) {
        return;
    }
    let Some(task_template::Target::Container(container)) = task.target.as_mut() else {
        return;
    };
    let resources = container.resources.get_or_insert_with(Resources::default);
    let defaults = platform.defaults.clone().unwrap_or_default();
    let limits = platform.limits.clone().unwrap_or_default();
    for (name, default, limit, always) in [
        (ResourceName::Cpu, &defaults.cpu, &limits.cpu, true),
        (ResourceName::Memory, &defaults.memory, &limits.memory, true),
        (
            ResourceName::EphemeralStorage,
            &defaults.ephemeral_storage,
            &limits.ephemeral_storage,
            false,
        ),
        (ResourceName::Gpu, &defaults.gpu, &limits.gpu, false),
    ] {
        let request = take(&mut resources.requests, name);
        let task_limit = take(&mut resources.limits, name);
        // As flyteadmin: GPU and ephemeral storage only when the task or a default asks for them.
        if !always && request.is_none() && task_limit.is_none() && is_zero(default) {
            continue;
        }
        let (request, task_limit) = adjust(request, task_limit, default, limit);
        for (list, value) in [
            (&mut resources.requests, request),
            (&mut resources.limits, task_limit),
        ] {
            if let Some(value) = value {
                list.push(ResourceEntry {
                    name: name as i32,
                    value,
                });
            }
        }
    }
}

/// Removes and returns the entry for `name` (the last one wins, as Kubernetes reads lists).
fn take(list: &mut Vec<ResourceEntry>, name: ResourceName) -> Option<String> {
    let mut found = None;
    list.retain(|e| {
        if e.name == name as i32 {
            found = Some(e.value.clone()).filter(|v| !is_zero(v));
            false
        } else {
            true
        }
    });
    found
}

/// flytepropeller's `AdjustOrDefaultResource`: a missing request takes the limit, else the
/// default; a missing limit takes the request; both are capped at the platform limit and the
/// request at the limit.
fn adjust(
    request: Option<String>,
    limit: Option<String>,
    default: &str,
    platform_limit: &str,
) -> (Option<String>, Option<String>) {
    let default = Some(default.to_string()).filter(|d| !is_zero(d));
    let request = request.or_else(|| limit.clone()).or(default);
    let limit = limit.or_else(|| request.clone());
    let request = cap(request, platform_limit);
    let limit = cap(limit, platform_limit);
    let request = match (&request, &limit) {
        (Some(_), Some(l)) => cap(request, l),
        _ => request,
    };
    (request, limit)
}

fn cap(value: Option<String>, limit: &str) -> Option<String> {
    match (value.as_deref().and_then(quantity), quantity(limit)) {
        (Some(v), Some(l)) if l > 0.0 && v > l => Some(limit.to_string()),
        _ => value,
    }
}

fn is_zero(value: &str) -> bool {
    quantity(value).is_none_or(|q| q == 0.0)
}

/// The value of a Kubernetes quantity (`500m`, `1.5Gi`, `2e3`), for comparisons only.
fn quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => 10f64.powi(exp[1..].parse().ok()?),
        _ => return None,
    };
    Some(number * factor)
}

#[cfg(test)]
#[path = "task_resources_tests.rs"]
mod tests;
