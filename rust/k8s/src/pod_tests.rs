use alula_idl::flyteidl::core::{
    resources::ResourceEntry, Resources, TaskMetadata, TaskNodeOverrides,
};
use k8s_openapi::api::core::v1::Toleration;

use super::*;
use crate::testutil::{attempt, config, task};

fn entry(name: ResourceName, value: &str) -> ResourceEntry {
    ResourceEntry {
        name: name as i32,
        value: value.into(),
    }
}

fn quantities(m: &Option<BTreeMap<String, Quantity>>) -> BTreeMap<&str, &str> {
    m.iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.0.as_str()))
        .collect()
}

#[test]
fn builds_the_container_with_filled_templates() {
    let t = task(
        &["pyflyte-execute"],
        &[
            "--inputs",
            "{{.input}}",
            "--output-prefix",
            "{{ .outputPrefix }}",
            "--raw-output-data-prefix",
            "{{.rawOutputDataPrefix}}",
            "--checkpoint-path",
            "{{.checkpointOutputPrefix}}",
            "--prev-checkpoint",
            "{{.prevCheckpointPrefix}}",
            "--dir",
            "{{$InputPrefix}}",
        ],
    );
    let mut a = attempt(t);
    a.prev_checkpoint_prefix = Some("/data/p/d/e1/n0/prev".into());
    let pod = build_pod(&a, &config()).unwrap();
    let spec = pod.spec.unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    let c = &spec.containers[0];
    assert_eq!(c.name, PRIMARY_CONTAINER);
    assert_eq!(c.image.as_deref(), Some("python:3.12"));
    assert_eq!(
        c.command.as_deref(),
        Some(&["pyflyte-execute".to_string()][..])
    );
    let root = "s3://bucket/root/p/d/e1/n0";
    assert_eq!(
        c.args.clone().unwrap(),
        vec![
            "--inputs".to_string(),
            format!("{root}/0/inputs.pb"),
            "--output-prefix".into(),
            format!("{root}/0/out"),
            "--raw-output-data-prefix".into(),
            format!("{root}/0/raw"),
            "--checkpoint-path".into(),
            format!("{root}/0/ck"),
            "--prev-checkpoint".into(),
            format!("{root}/prev"),
            "--dir".into(),
            format!("{root}/0"),
        ]
    );
    // The attempt's value wins over the template's for the same name, and appears once.
    let env: Vec<(String, String)> = c
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        env,
        vec![
            ("A".to_string(), "attempt".to_string()),
            ("FLYTE_ATTEMPT_NUMBER".into(), "0".into())
        ]
    );
}

#[test]
fn platform_env_comes_first_and_secrets_become_env_from() {
    let mut cfg = config();
    cfg.default_env_vars = BTreeMap::from([
        (
            "AWS_ENDPOINT_URL".to_string(),
            "http://minio:9000".to_string(),
        ),
        ("A".to_string(), "platform".to_string()),
    ]);
    cfg.default_env_from_secrets = vec!["alula-s3".into()];
    let pod = build_pod(&attempt(task(&["run"], &[])), &cfg).unwrap();
    let c = &pod.spec.unwrap().containers[0];
    let env: Vec<(String, String)> = c
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    // The task's and the attempt's `A` win over the platform's.
    assert_eq!(
        env,
        vec![
            (
                "AWS_ENDPOINT_URL".to_string(),
                "http://minio:9000".to_string()
            ),
            ("A".into(), "attempt".into()),
            ("FLYTE_ATTEMPT_NUMBER".into(), "0".into())
        ]
    );
    let secrets: Vec<String> = c
        .env_from
        .iter()
        .flatten()
        .filter_map(|e| e.secret_ref.as_ref().map(|s| s.name.clone()))
        .collect();
    assert_eq!(secrets, vec!["alula-s3".to_string()]);

    let plain = build_pod(&attempt(task(&["run"], &[])), &config()).unwrap();
    assert_eq!(plain.spec.unwrap().containers[0].env_from, None);
}

#[test]
fn labels_and_annotations_identify_the_attempt() {
    let mut a = attempt(task(&["run"], &[]));
    a.retry_attempt = 2;
    a.array_index = Some(7);
    let pod = build_pod(&a, &config()).unwrap();
    let labels = pod.metadata.labels.unwrap();
    assert_eq!(labels[MANAGED_BY_LABEL], "alula");
    assert_eq!(labels["execution-id"], "e1");
    assert_eq!(labels["node-id"], "n0");
    assert_eq!(labels["attempt"], "2");
    assert_eq!(labels["task-name"], "wf.my_task");
    assert!(!labels.contains_key("interruptible"));
    let ann = pod.metadata.annotations.unwrap();
    assert_eq!(ann["alula.dev/array-index"], "7");
    assert_eq!(ann["alula.dev/task"], "p/d/wf.my_task@v1");
    assert_eq!(pod.metadata.name.as_deref(), Some("p-d-e1-n0-7-2"));
    assert_eq!(pod.metadata.namespace.as_deref(), Some("flyte"));
}

#[test]
fn pod_names_are_dns_labels_and_distinct() {
    let mut a = attempt(task(&["run"], &[]));
    a.execution.name = "Exec_Name".into();
    a.node_id = "n0-0-dn12".repeat(10);
    let long = pod_name(&a);
    assert!(long.len() <= 63, "{long}");
    assert!(long
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    assert!(long.starts_with("p-d-exec-name-n0-0-dn12"), "{long}");
    // Same name, other retry: another pod, although the cut readable part is equal.
    a.retry_attempt = 1;
    assert_ne!(pod_name(&a), long);
    // Deterministic.
    assert_eq!(pod_name(&a), pod_name(&a.clone()));
    // Sanitizing alone also adds the hash: `e.1` and `e-1` must not share a pod.
    let mut b = attempt(task(&["run"], &[]));
    b.execution.name = "e.1".into();
    let mut c = b.clone();
    c.execution.name = "e-1".into();
    assert_ne!(pod_name(&b), pod_name(&c));
    assert_eq!(pod_name(&c), "p-d-e-1-n0-0");
}

#[test]
fn label_values_are_cut_and_hashed() {
    assert_eq!(label_value("wf.my_task"), "wf.my_task");
    let v = label_value(&"x/".repeat(50));
    assert!(v.len() <= 63 && !v.contains('/'), "{v}");
    assert_eq!(label_value("").len(), 10);
}

#[test]
fn resources_merge_template_overrides_and_defaults() {
    let mut t = task(&["run"], &[]);
    if let Some(Target::Container(c)) = &mut t.target {
        c.resources = Some(Resources {
            requests: vec![entry(ResourceName::Cpu, "1"), entry(ResourceName::Gpu, "1")],
            limits: vec![
                entry(ResourceName::Cpu, "2"),
                entry(ResourceName::Storage, "1Gi"),
            ],
        });
    }
    let mut a = attempt(t);
    a.overrides = Some(TaskNodeOverrides {
        resources: Some(Resources {
            requests: vec![entry(ResourceName::Memory, "2Gi")],
            limits: vec![entry(ResourceName::Cpu, "4")],
        }),
        container_image: "other:1".into(),
        ..Default::default()
    });
    let mut cfg = config();
    cfg.default_limits.insert("memory".into(), "4Gi".into());
    let pod = build_pod(&a, &cfg).unwrap();
    let c = &pod.spec.unwrap().containers[0];
    assert_eq!(c.image.as_deref(), Some("other:1"));
    let r = c.resources.clone().unwrap();
    assert_eq!(
        quantities(&r.requests),
        BTreeMap::from([("cpu", "1"), ("memory", "2Gi"), ("nvidia.com/gpu", "1")])
    );
    assert_eq!(
        quantities(&r.limits),
        BTreeMap::from([("cpu", "4"), ("memory", "4Gi"), ("nvidia.com/gpu", "1")])
    );

    // Nothing given: the platform defaults, limits equal to requests.
    let pod = build_pod(&attempt(task(&["run"], &[])), &config()).unwrap();
    let r = pod.spec.unwrap().containers[0].resources.clone().unwrap();
    assert_eq!(
        quantities(&r.requests),
        BTreeMap::from([("cpu", "500m"), ("memory", "512Mi")])
    );
    assert_eq!(quantities(&r.limits), quantities(&r.requests));
}

#[test]
fn interruptible_tasks_get_their_scheduling() {
    let mut cfg = config();
    cfg.service_account = Some("runner".into());
    cfg.node_selector.insert("pool".into(), "tasks".into());
    cfg.interruptible_node_selector
        .insert("spot".into(), "true".into());
    cfg.interruptible_tolerations.push(Toleration {
        key: Some("spot".into()),
        operator: Some("Exists".into()),
        effect: Some("NoSchedule".into()),
        ..Default::default()
    });
    let plain = build_pod(&attempt(task(&["run"], &[])), &cfg).unwrap();
    let spec = plain.spec.unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("runner"));
    assert_eq!(spec.node_selector.unwrap().len(), 1);
    assert!(spec.tolerations.is_none());

    let mut t = task(&["run"], &[]);
    t.metadata = Some(TaskMetadata {
        interruptible_value: Some(InterruptibleValue::Interruptible(true)),
        ..Default::default()
    });
    let pod = build_pod(&attempt(t), &cfg).unwrap();
    assert_eq!(pod.metadata.labels.unwrap()["interruptible"], "true");
    let spec = pod.spec.unwrap();
    assert_eq!(spec.node_selector.unwrap()["spot"], "true");
    assert_eq!(spec.tolerations.unwrap()[0].key.as_deref(), Some("spot"));
}

#[test]
fn refuses_what_cannot_run() {
    let mut no_container = task(&["run"], &[]);
    no_container.target = None;
    assert!(matches!(
        build_pod(&attempt(no_container), &config()),
        Err(PluginError::Invalid(_))
    ));

    let bad_input = task(&["run", "{{.inputs.nope}}"], &[]);
    let err = build_pod(&attempt(bad_input), &config()).unwrap_err();
    assert!(err.to_string().contains("[nope]"), "{err}");

    let mut outside = attempt(task(&["run"], &[]));
    outside.output_prefix = "/elsewhere/out".into();
    assert!(matches!(
        build_pod(&outside, &config()),
        Err(PluginError::Invalid(_))
    ));

    assert!(matches!(
        build_pod(&attempt(task(&[], &[])), &config()),
        Err(PluginError::Invalid(_))
    ));
}
