use std::sync::Arc;

use alula_idl::flyteidl::core::{
    resources::ResourceEntry, secret::MountType, Identity, K8sObjectMetadata, K8sPod, Resources,
    Secret, TaskMetadata, TaskNodeOverrides,
};
use alula_idl::google::protobuf::Struct;
use alula_propeller::AttemptSettings;
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

fn env_of(c: &Container) -> BTreeMap<String, EnvVar> {
    c.env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.clone()))
        .collect()
}

fn value(c: &Container, name: &str) -> Option<String> {
    env_of(c).get(name).and_then(|e| e.value.clone())
}

fn secret(group: &str, key: &str, mount: MountType) -> Secret {
    Secret {
        group: group.into(),
        key: key.into(),
        mount_requirement: mount as i32,
        ..Default::default()
    }
}

#[test]
fn execution_settings_reach_the_pod() {
    let mut cfg = config();
    cfg.service_account = Some("platform-default".into());
    cfg.default_env_vars.insert("E".into(), "platform".into());
    cfg.interruptible_tolerations.push(Toleration {
        key: Some("spot".into()),
        operator: Some("Exists".into()),
        ..Default::default()
    });
    cfg.interruptible_node_selector
        .insert("spot".into(), "true".into());
    let mut t = task(&["run"], &[]);
    t.security_context = Some(SecurityContext {
        run_as: Some(Identity {
            k8s_service_account: "task-sa".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let mut a = attempt(t.clone());
    a.settings = Arc::new(AttemptSettings {
        labels: BTreeMap::from([
            ("team".into(), "ml".into()),
            // Ours are kept: the execution cannot relabel the attempt.
            ("node-id".into(), "forged".into()),
        ]),
        annotations: BTreeMap::from([("cost-center".into(), "42".into())]),
        envs: BTreeMap::from([
            ("E".into(), "execution".into()),
            ("A".into(), "execution".into()),
            ("FLYTE_ATTEMPT_NUMBER".into(), "9".into()),
        ]),
        security_context: Some(SecurityContext {
            run_as: Some(Identity {
                k8s_service_account: "exec-sa".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        interruptible: Some(true),
        ..Default::default()
    });
    let pod = build_pod(&a, &cfg).unwrap();
    let labels = pod.metadata.labels.clone().unwrap();
    assert_eq!(labels["team"], "ml");
    assert_eq!(labels["node-id"], "n0");
    assert_eq!(labels["interruptible"], "true");
    assert_eq!(
        pod.metadata.annotations.clone().unwrap()["cost-center"],
        "42"
    );
    let spec = pod.spec.unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("exec-sa"));
    assert_eq!(spec.tolerations.unwrap()[0].key.as_deref(), Some("spot"));
    assert_eq!(spec.node_selector.unwrap()["spot"], "true");
    let c = &spec.containers[0];
    // Execution envs sit above the platform's and below the task's and Flyte's own.
    assert_eq!(value(c, "E").as_deref(), Some("execution"));
    assert_eq!(value(c, "A").as_deref(), Some("attempt"));
    assert_eq!(value(c, "FLYTE_ATTEMPT_NUMBER").as_deref(), Some("0"));

    // The execution's "not interruptible" beats the task's "interruptible"; without an
    // execution account the task's is used.
    let mut t2 = t;
    t2.metadata = Some(TaskMetadata {
        interruptible_value: Some(InterruptibleValue::Interruptible(true)),
        ..Default::default()
    });
    let mut b = attempt(t2);
    b.settings = Arc::new(AttemptSettings {
        interruptible: Some(false),
        ..Default::default()
    });
    let pod = build_pod(&b, &cfg).unwrap();
    assert!(!pod.metadata.labels.unwrap().contains_key("interruptible"));
    let spec = pod.spec.unwrap();
    assert!(spec.tolerations.is_none());
    assert_eq!(spec.service_account_name.as_deref(), Some("task-sa"));
    // Nothing asked: the platform's account.
    let pod = build_pod(&attempt(task(&["run"], &[])), &cfg).unwrap();
    assert_eq!(
        pod.spec.unwrap().service_account_name.as_deref(),
        Some("platform-default")
    );
}

#[test]
fn secrets_are_injected_as_flytekit_reads_them() {
    let mut t = task(&["run"], &[]);
    let mut aliased = secret("db", "password", MountType::EnvVar);
    aliased.env_var = "DB_PASSWORD".into();
    let mut versioned = secret("certs", "CA.pem", MountType::File);
    versioned.group_version = "v2".into();
    t.security_context = Some(SecurityContext {
        secrets: vec![
            aliased,
            secret("certs", "client.pem", MountType::Any),
            versioned,
        ],
        ..Default::default()
    });
    let mut a = attempt(t);
    // The execution adds one of its own.
    a.settings = Arc::new(AttemptSettings {
        security_context: Some(SecurityContext {
            secrets: vec![secret("whole", "", MountType::File)],
            ..Default::default()
        }),
        ..Default::default()
    });
    let spec = build_pod(&a, &config()).unwrap().spec.unwrap();
    let c = &spec.containers[0];
    let env = env_of(c);
    let from = |name: &str| {
        let r = env[name]
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
            .unwrap();
        (r.name.clone(), r.key.clone())
    };
    assert_eq!(from("_FSEC_DB_PASSWORD"), ("db".into(), "password".into()));
    assert_eq!(from("DB_PASSWORD"), ("db".into(), "password".into()));
    assert_eq!(
        value(c, "FLYTE_SECRETS_ENV_PREFIX").as_deref(),
        Some("_FSEC_")
    );
    assert_eq!(
        value(c, "FLYTE_SECRETS_DEFAULT_DIR").as_deref(),
        Some("/etc/flyte/secrets")
    );
    assert_eq!(value(c, "FLYTE_SECRETS_FILE_PREFIX").as_deref(), Some(""));

    // One volume per group: `certs` holds both keys (one below its version folder).
    let volumes = spec.volumes.unwrap();
    assert_eq!(volumes.len(), 2, "{volumes:?}");
    let certs = volumes
        .iter()
        .find(|v| v.secret.as_ref().unwrap().secret_name.as_deref() == Some("certs"))
        .unwrap();
    let items: Vec<(String, String)> = certs
        .secret
        .as_ref()
        .unwrap()
        .items
        .iter()
        .flatten()
        .map(|i| (i.key.clone(), i.path.clone()))
        .collect();
    assert_eq!(
        items,
        vec![
            ("client.pem".to_string(), "client.pem".to_string()),
            ("CA.pem".into(), "v2/ca.pem".into())
        ]
    );
    let whole = volumes
        .iter()
        .find(|v| v.secret.as_ref().unwrap().secret_name.as_deref() == Some("whole"))
        .unwrap();
    assert!(whole.secret.as_ref().unwrap().items.is_none());
    let mounts: BTreeMap<String, String> = c
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.mount_path.clone(), m.name.clone()))
        .collect();
    assert_eq!(mounts["/etc/flyte/secrets/certs"], certs.name);
    assert_eq!(mounts["/etc/flyte/secrets/whole"], whole.name);
    assert!(c
        .volume_mounts
        .iter()
        .flatten()
        .all(|m| m.read_only == Some(true)));

    let mut bad = task(&["run"], &[]);
    bad.security_context = Some(SecurityContext {
        secrets: vec![secret("", "k", MountType::Any)],
        ..Default::default()
    });
    let err = build_pod(&attempt(bad), &config()).unwrap_err();
    assert!(err.to_string().contains("no group"), "{err}");
}

/// A flytekit `@task(pod_template=PodTemplate(primary_container_name="main", ...))`: a pod
/// target whose primary container carries flytekit's command and a sidecar.
fn pod_task() -> TaskTemplate {
    let spec: Struct = serde_json::from_value(serde_json::json!({
        "containers": [
            {"name": "main", "image": "python:3.12",
             "args": ["pyflyte-execute", "--inputs", "{{.input}}"],
             "env": [{"name": "OWN", "value": "1"}],
             "resources": {"requests": {"cpu": "2"}},
             "ports": [{"containerPort": 8080}]},
            {"name": "sidecar", "image": "envoy:1", "args": ["--out", "{{.outputPrefix}}"]}
        ],
        "volumes": [{"name": "scratch", "emptyDir": {}}],
        "tolerations": [{"key": "task", "operator": "Exists"}]
    }))
    .unwrap();
    let mut t = task(&[], &[]);
    t.target = Some(Target::K8sPod(K8sPod {
        metadata: Some(K8sObjectMetadata {
            labels: [("pod-label".to_string(), "x".to_string())].into(),
            annotations: Default::default(),
        }),
        pod_spec: Some(spec),
        primary_container_name: "main".into(),
        ..Default::default()
    }));
    t
}

#[test]
fn pod_tasks_run_their_pod_spec() {
    let pod = build_pod(&attempt(pod_task()), &config()).unwrap();
    assert_eq!(pod.metadata.labels.as_ref().unwrap()["pod-label"], "x");
    assert_eq!(
        pod.metadata.annotations.as_ref().unwrap()[PRIMARY_CONTAINER_ANNOTATION],
        "main"
    );
    let spec = pod.spec.unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    let main = &spec.containers[0];
    assert_eq!(main.name, "main");
    assert_eq!(
        main.args.clone().unwrap()[2],
        "s3://bucket/root/p/d/e1/n0/0/inputs.pb"
    );
    assert_eq!(main.ports.as_ref().unwrap()[0].container_port, 8080);
    assert_eq!(value(main, "OWN").as_deref(), Some("1"));
    assert_eq!(value(main, "FLYTE_ATTEMPT_NUMBER").as_deref(), Some("0"));
    let r = main.resources.clone().unwrap();
    assert_eq!(quantities(&r.requests)["cpu"], "2");
    assert_eq!(quantities(&r.limits)["cpu"], "2");
    assert_eq!(quantities(&r.requests)["memory"], "512Mi");
    let sidecar = &spec.containers[1];
    assert_eq!(
        sidecar.args.clone().unwrap()[1],
        "s3://bucket/root/p/d/e1/n0/0/out"
    );
    assert!(
        sidecar.resources.is_none(),
        "only the primary gets defaults"
    );
    assert_eq!(spec.volumes.unwrap()[0].name, "scratch");
    assert_eq!(spec.tolerations.unwrap()[0].key.as_deref(), Some("task"));

    // As flytekit writes it: the primary's name in the task's config, GPUs as `gpu`.
    let spec: Struct = serde_json::from_value(serde_json::json!({
        "containers": [{"name": "primary", "image": "python:3.12", "args": ["run"],
                        "resources": {"limits": {"gpu": "1"}, "requests": {"gpu": "1"}}},
                       {"name": "helper", "image": "busybox"}]
    }))
    .unwrap();
    let mut t = task(&[], &[]);
    t.r#type = "python-task".into();
    t.config = [(PRIMARY_CONTAINER_KEY.to_string(), "primary".to_string())].into();
    t.target = Some(Target::K8sPod(K8sPod {
        pod_spec: Some(spec),
        ..Default::default()
    }));
    assert!(
        runs(&t),
        "the pod plugin runs flytekit's pod template tasks"
    );
    let pod = build_pod(&attempt(t), &config()).unwrap();
    assert_eq!(
        pod.metadata.annotations.as_ref().unwrap()[PRIMARY_CONTAINER_ANNOTATION],
        "primary"
    );
    let r = pod.spec.unwrap().containers[0].resources.clone().unwrap();
    assert_eq!(quantities(&r.limits)["nvidia.com/gpu"], "1");
    assert!(!quantities(&r.limits).contains_key("gpu"));

    // A node's pod template override replaces a container task's target.
    let mut a = attempt(task(&["run"], &[]));
    if let Some(Target::K8sPod(k)) = pod_task().target {
        a.overrides = Some(TaskNodeOverrides {
            pod_template: Some(k),
            ..Default::default()
        });
    }
    let spec = build_pod(&a, &config()).unwrap().spec.unwrap();
    let names: Vec<_> = spec.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["main", "sidecar"]);

    // A primary container the pod lacks is refused.
    let mut t = pod_task();
    if let Some(Target::K8sPod(k)) = &mut t.target {
        k.primary_container_name = "nope".into();
    }
    let err = build_pod(&attempt(t), &config()).unwrap_err();
    assert!(err.to_string().contains("\"nope\""), "{err}");
}

#[test]
fn pod_templates_merge_as_flyte_does() {
    let base: PodTemplateSpec = serde_json::from_value(serde_json::json!({
        "metadata": {"labels": {"from-template": "yes", "project": "forged"},
                     "annotations": {"t": "1"}},
        "spec": {
            "containers": [
                {"name": "default", "image": "ignored:0",
                 "env": [{"name": "FROM_DEFAULT", "value": "d"}, {"name": "A", "value": "template"}],
                 "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]},
                {"name": "primary", "image": "primary-template:1",
                 "resources": {"limits": {"memory": "8Gi"}}}
            ],
            "volumes": [{"name": "shared", "emptyDir": {}}],
            "nodeSelector": {"zone": "a", "pool": "template"},
            "tolerations": [{"key": "template", "operator": "Exists"}],
            "priorityClassName": "high",
            "restartPolicy": "Always",
            "serviceAccountName": "template-sa"
        }
    }))
    .unwrap();
    let mut cfg = config();
    cfg.node_selector.insert("pool".into(), "tasks".into());

    // A container task: its one container is the primary.
    let pod = build_pod_with(&attempt(task(&["run"], &[])), &cfg, Some(&base)).unwrap();
    let labels = pod.metadata.labels.clone().unwrap();
    assert_eq!(labels["from-template"], "yes");
    assert_eq!(labels["project"], "p", "ours win over the template's");
    assert_eq!(pod.metadata.annotations.clone().unwrap()["t"], "1");
    let spec = pod.spec.unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(spec.priority_class_name.as_deref(), Some("high"));
    assert_eq!(spec.service_account_name.as_deref(), Some("template-sa"));
    let ns = spec.node_selector.unwrap();
    assert_eq!((ns["zone"].as_str(), ns["pool"].as_str()), ("a", "tasks"));
    assert_eq!(
        spec.tolerations.unwrap()[0].key.as_deref(),
        Some("template")
    );
    assert_eq!(spec.volumes.unwrap()[0].name, "shared");
    assert_eq!(spec.containers.len(), 1);
    let c = &spec.containers[0];
    assert_eq!(c.name, PRIMARY_CONTAINER);
    // The task's image beats the `primary` template's, which beats `default`'s.
    assert_eq!(c.image.as_deref(), Some("python:3.12"));
    assert_eq!(value(c, "FROM_DEFAULT").as_deref(), Some("d"));
    // Both A's are there, the task's last (the one that counts).
    let a_values: Vec<_> = c
        .env
        .iter()
        .flatten()
        .filter(|e| e.name == "A")
        .map(|e| e.value.clone().unwrap())
        .collect();
    assert_eq!(a_values.last().map(String::as_str), Some("attempt"));
    assert_eq!(c.volume_mounts.as_ref().unwrap()[0].mount_path, "/shared");
    let r = c.resources.clone().unwrap();
    assert_eq!(
        quantities(&r.limits)["memory"],
        "512Mi",
        "the task's limit wins"
    );

    // A pod task: `primary` applies to the primary only, `default` to every container; the
    // task's volumes and tolerations are added to the template's.
    let pod = build_pod_with(&attempt(pod_task()), &cfg, Some(&base)).unwrap();
    let spec = pod.spec.unwrap();
    let names: Vec<_> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(names, ["shared", "scratch"]);
    assert_eq!(spec.tolerations.unwrap().len(), 2);
    let sidecar = &spec.containers[1];
    assert_eq!(sidecar.image.as_deref(), Some("envoy:1"));
    assert_eq!(value(sidecar, "FROM_DEFAULT").as_deref(), Some("d"));
    assert!(
        sidecar.resources.is_none(),
        "primary's template is not the sidecar's"
    );
}
