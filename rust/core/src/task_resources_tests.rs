use alula_idl::flyteidl::admin::{TaskResourceAttributes, TaskResourceSpec};
use alula_idl::flyteidl::core::{
    resources::{ResourceEntry, ResourceName},
    task_template, Container, Resources, TaskTemplate,
};

use super::{apply, platform_resources, quantity};

fn entries(kv: &[(ResourceName, &str)]) -> Vec<ResourceEntry> {
    kv.iter()
        .map(|(n, v)| ResourceEntry {
            name: *n as i32,
            value: v.to_string(),
        })
        .collect()
}

fn task(requests: &[(ResourceName, &str)], limits: &[(ResourceName, &str)]) -> TaskTemplate {
    TaskTemplate {
        target: Some(task_template::Target::Container(Container {
            resources: Some(Resources {
                requests: entries(requests),
                limits: entries(limits),
            }),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn resources(t: &TaskTemplate) -> Resources {
    match &t.target {
        Some(task_template::Target::Container(c)) => c.resources.clone().unwrap_or_default(),
        _ => Resources::default(),
    }
}

fn value(list: &[ResourceEntry], name: ResourceName) -> Option<&str> {
    list.iter()
        .find(|e| e.name == name as i32)
        .map(|e| e.value.as_str())
}

fn platform(defaults: (&str, &str), limits: (&str, &str)) -> TaskResourceAttributes {
    TaskResourceAttributes {
        defaults: Some(TaskResourceSpec {
            cpu: defaults.0.into(),
            memory: defaults.1.into(),
            ..Default::default()
        }),
        limits: Some(TaskResourceSpec {
            cpu: limits.0.into(),
            memory: limits.1.into(),
            ..Default::default()
        }),
    }
}

#[test]
fn quantities_are_read_with_their_suffixes() {
    assert_eq!(quantity("500m"), Some(0.5));
    assert_eq!(quantity("2"), Some(2.0));
    assert_eq!(quantity("1Gi"), Some(1024.0 * 1024.0 * 1024.0));
    assert_eq!(quantity("1.5k"), Some(1500.0));
    assert_eq!(quantity("2e3"), Some(2000.0));
    assert_eq!(quantity("lots"), None);
}

#[test]
fn unset_requests_and_limits_are_filled_from_the_defaults() {
    let mut t = task(&[], &[]);
    apply(&mut t, &platform(("1", "500Mi"), ("4", "2Gi")));
    let r = resources(&t);
    assert_eq!(value(&r.requests, ResourceName::Cpu), Some("1"));
    assert_eq!(value(&r.requests, ResourceName::Memory), Some("500Mi"));
    // A missing limit takes the request, not the platform limit.
    assert_eq!(value(&r.limits, ResourceName::Cpu), Some("1"));
    assert_eq!(value(&r.limits, ResourceName::Memory), Some("500Mi"));
    // GPU and ephemeral storage only when asked for.
    assert_eq!(value(&r.requests, ResourceName::Gpu), None);
}

#[test]
fn a_task_limit_becomes_its_request_and_values_above_the_platform_limit_are_lowered() {
    let mut t = task(
        &[(ResourceName::Memory, "8Gi")],
        &[(ResourceName::Cpu, "500m")],
    );
    apply(&mut t, &platform(("1", "500Mi"), ("4", "2Gi")));
    let r = resources(&t);
    assert_eq!(value(&r.requests, ResourceName::Cpu), Some("500m"));
    assert_eq!(value(&r.limits, ResourceName::Cpu), Some("500m"));
    assert_eq!(value(&r.requests, ResourceName::Memory), Some("2Gi"));
    assert_eq!(value(&r.limits, ResourceName::Memory), Some("2Gi"));
}

#[test]
fn a_request_above_the_tasks_limit_is_lowered_to_it() {
    let mut t = task(&[(ResourceName::Cpu, "3")], &[(ResourceName::Cpu, "2")]);
    apply(&mut t, &platform(("1", ""), ("", "")));
    let r = resources(&t);
    assert_eq!(value(&r.requests, ResourceName::Cpu), Some("2"));
    assert_eq!(value(&r.limits, ResourceName::Cpu), Some("2"));
}

#[test]
fn nothing_configured_changes_nothing() {
    let mut t = task(&[(ResourceName::Cpu, "3")], &[]);
    let before = t.clone();
    apply(&mut t, &TaskResourceAttributes::default());
    assert_eq!(t, before);
}

#[test]
fn attribute_fields_override_the_servers_one_by_one() {
    let server = platform(("1", "1Gi"), ("8", "16Gi"));
    let matchable = TaskResourceAttributes {
        defaults: Some(TaskResourceSpec {
            memory: "4Gi".into(),
            ..Default::default()
        }),
        limits: None,
    };
    let p = platform_resources(Some(&matchable), &server);
    let d = p.defaults.unwrap();
    assert_eq!((d.cpu.as_str(), d.memory.as_str()), ("1", "4Gi"));
    assert_eq!(p.limits.unwrap().memory, "16Gi");
    assert!(super::is_empty(&platform_resources(
        None,
        &TaskResourceAttributes::default()
    )));
}
