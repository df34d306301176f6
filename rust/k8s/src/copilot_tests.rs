use alula_idl::flyteidl::core::{
    literal, primitive, scalar, task_template::Target, Literal, LiteralMap, LiteralType, Primitive,
    Scalar, SimpleType, TypedInterface, Variable, VariableMap,
};
use k8s_openapi::api::core::v1::Pod;

use super::*;
use crate::pod::build_pod;
use crate::testutil::{attempt, config, task};

fn raw_container(input_path: &str, output_path: &str, format: LiteralMapFormat) -> TaskTemplate {
    let mut t = task(&["sh", "-c"], &["echo {{.inputs.x}} > /var/outputs/y"]);
    t.r#type = "raw-container".into();
    if let Some(Target::Container(c)) = &mut t.target {
        c.data_config = Some(DataLoadingConfig {
            enabled: true,
            input_path: input_path.into(),
            output_path: output_path.into(),
            format: format as i32,
            io_strategy: None,
        });
    }
    let int = LiteralType {
        r#type: Some(alula_idl::flyteidl::core::literal_type::Type::Simple(
            SimpleType::Integer as i32,
        )),
        ..Default::default()
    };
    let var = |name: &str| VariableMap {
        variables: [(
            name.to_string(),
            Variable {
                r#type: Some(int.clone()),
                ..Default::default()
            },
        )]
        .into(),
    };
    t.interface = Some(TypedInterface {
        inputs: Some(var("x")),
        outputs: Some(var("y")),
    });
    t
}

/// An attempt with the input `x` = 5.
fn with_x(t: TaskTemplate) -> alula_propeller::Attempt {
    let mut a = attempt(t);
    let five = Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::Primitive(Primitive {
                value: Some(primitive::Value::Integer(5)),
            })),
        }))),
        ..Default::default()
    };
    a.inputs = std::sync::Arc::new(LiteralMap {
        literals: [("x".to_string(), five)].into(),
    });
    a
}

fn containers(pod: &Pod) -> Vec<&str> {
    let spec = pod.spec.as_ref().expect("spec");
    spec.init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .map(|c| c.name.as_str())
        .collect()
}

fn mounts(c: &Container) -> Vec<(&str, &str)> {
    c.volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.name.as_str(), m.mount_path.as_str()))
        .collect()
}

#[test]
fn a_raw_container_gets_the_downloader_and_the_uploader() {
    let t = raw_container("/var/inputs", "/var/outputs/", LiteralMapFormat::Yaml);
    let pod = build_pod(&with_x(t.clone()), &config()).expect("pod");
    assert_eq!(containers(&pod), ["downloader", "task", "uploader"]);
    let spec = pod.spec.as_ref().expect("spec");
    let image = CopilotConfig::default().image;

    let down = &spec.init_containers.as_ref().expect("init")[0];
    assert_eq!(down.image.as_deref(), Some(image.as_str()));
    assert_eq!(down.command, Some(vec!["alula-copilot".to_string()]));
    assert_eq!(
        down.args.clone().expect("args"),
        [
            "download",
            "--inputs",
            "s3://bucket/root/p/d/e1/n0/0/inputs.pb",
            "--to",
            "/var/inputs",
            "--format",
            "yaml"
        ]
    );
    assert_eq!(mounts(down), [("alula-inputs", "/var/inputs")]);

    // The task's own container: its templated command, both folders.
    let main = &spec.containers[0];
    assert_eq!(main.image.as_deref(), Some("python:3.12"));
    assert_eq!(
        main.args.clone().expect("args"),
        ["echo 5 > /var/outputs/y"]
    );
    assert_eq!(
        mounts(main),
        [
            ("alula-inputs", "/var/inputs"),
            ("alula-outputs", "/var/outputs")
        ]
    );

    let up = &spec.containers[1];
    let args = up.args.clone().expect("args");
    assert_eq!(
        &args[..7],
        [
            "upload",
            "--from",
            "/var/outputs",
            "--output-prefix",
            "s3://bucket/root/p/d/e1/n0/0/out",
            "--raw-output-prefix",
            "s3://bucket/root/p/d/e1/n0/0/raw",
        ]
    );
    assert_eq!(args[7], "--interface");
    let iface = base64::engine::general_purpose::STANDARD
        .decode(&args[8])
        .expect("base64");
    assert_eq!(
        TypedInterface::decode(iface.as_slice()).expect("interface"),
        t.interface.clone().expect("interface")
    );
    assert_eq!(
        &args[9..],
        [
            "--wait-for",
            "pod:task",
            "--service-account-dir",
            "/var/run/secrets/kubernetes.io/serviceaccount"
        ]
    );
    assert_eq!(mounts(up), [("alula-outputs", "/var/outputs")]);
    let env = up.env.as_ref().expect("env");
    let field = |name: &str| {
        env.iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value_from.as_ref())
            .and_then(|f| f.field_ref.as_ref())
            .map(|f| f.field_path.clone())
    };
    assert_eq!(field("POD_NAME").as_deref(), Some("metadata.name"));
    assert_eq!(
        field("POD_NAMESPACE").as_deref(),
        Some("metadata.namespace")
    );
    // The task's environment reaches the copilot too (storage credentials, endpoints).
    assert!(env.iter().any(|e| e.name == "A"), "{env:?}");

    let volumes: Vec<_> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| (v.name.as_str(), v.empty_dir.is_some()))
        .collect();
    assert_eq!(volumes, [("alula-inputs", true), ("alula-outputs", true)]);
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
}

#[test]
fn flyte_folders_by_default_and_one_volume_for_one_folder() {
    let pod = build_pod(
        &with_x(raw_container("", "", LiteralMapFormat::Json)),
        &config(),
    )
    .expect("pod");
    let spec = pod.spec.as_ref().expect("spec");
    assert_eq!(
        mounts(&spec.containers[0]),
        [
            ("alula-inputs", DEFAULT_INPUT_PATH),
            ("alula-outputs", DEFAULT_OUTPUT_PATH)
        ]
    );

    let pod = build_pod(
        &with_x(raw_container(
            "/data/io",
            "/data/io",
            LiteralMapFormat::Proto,
        )),
        &config(),
    )
    .expect("pod");
    let spec = pod.spec.as_ref().expect("spec");
    assert_eq!(mounts(&spec.containers[0]), [("alula-inputs", "/data/io")]);
    assert_eq!(mounts(&spec.containers[1]), [("alula-inputs", "/data/io")]);
    assert_eq!(spec.volumes.as_ref().map(Vec::len), Some(1));
}

#[test]
fn other_tasks_and_disabled_data_config_get_no_copilot() {
    let pod = build_pod(&attempt(task(&["python"], &["-V"])), &config()).expect("pod");
    assert_eq!(containers(&pod), ["task"]);
    let mut t = raw_container("/in", "/out", LiteralMapFormat::Json);
    if let Some(Target::Container(c)) = &mut t.target {
        c.data_config.as_mut().expect("config").enabled = false;
    }
    let pod = build_pod(&with_x(t), &config()).expect("pod");
    assert_eq!(containers(&pod), ["task"]);
}

#[test]
fn the_copilot_image_is_a_setting() {
    let mut c = config();
    c.copilot.image = "registry.example.com/alula-task:9".into();
    let pod = build_pod(
        &with_x(raw_container("/in", "/out", LiteralMapFormat::Json)),
        &c,
    )
    .expect("pod");
    let spec = pod.spec.as_ref().expect("spec");
    assert_eq!(
        spec.containers[1].image.as_deref(),
        Some("registry.example.com/alula-task:9")
    );
    c.copilot.image.clear();
    let err = build_pod(
        &with_x(raw_container("/in", "/out", LiteralMapFormat::Json)),
        &c,
    )
    .expect_err("no image");
    assert!(err.to_string().contains("copilot"), "{err}");
}

#[test]
fn the_attempt_waits_for_the_uploader_after_the_task_container_ends() {
    use crate::status::attempt_status;
    use k8s_openapi::jiff::Timestamp;

    let t = raw_container("/in", "/out", LiteralMapFormat::Json);
    let mut pod = build_pod(&with_x(t), &config()).expect("pod");
    let status = |task: &str, uploader: &str| -> k8s_openapi::api::core::v1::PodStatus {
        serde_json::from_value(
            serde_json::json!({"phase": "Running", "containerStatuses": [
            {"name": "task", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
             "state": serde_json::from_str::<serde_json::Value>(task).expect("json")},
            {"name": "uploader", "ready": true, "restartCount": 0, "image": "x", "imageID": "",
             "state": serde_json::from_str::<serde_json::Value>(uploader).expect("json")}]}),
        )
        .expect("status")
    };
    let now = Timestamp::UNIX_EPOCH;
    pod.status = Some(status(
        r#"{"terminated": {"exitCode": 0}}"#,
        r#"{"running": {}}"#,
    ));
    assert!(uploading(&pod));
    assert!(matches!(
        attempt_status(&pod, &config(), now),
        alula_propeller::AttemptStatus::Running
    ));
    // A failed task container fails the attempt at once: there is nothing to upload.
    pod.status = Some(status(
        r#"{"terminated": {"exitCode": 2}}"#,
        r#"{"running": {}}"#,
    ));
    assert!(matches!(
        attempt_status(&pod, &config(), now),
        alula_propeller::AttemptStatus::Exited {
            exit_code: Some(2),
            ..
        }
    ));
    // Other pods are judged by their task container alone.
    let mut plain = build_pod(&attempt(task(&["true"], &[])), &config()).expect("pod");
    plain.status = pod.status.clone();
    assert!(!uploading(&plain));
}
