//! The pod plugin against a real kube-apiserver (`../shared/tools/kube-apiserver`: v1.20
//! with a fake kubelet that moves pods Pending → Running → Succeeded/Failed as their
//! `fake-kubelet/*` annotations say). Skipped unless `ALULA_KUBECONFIG` names its kubeconfig.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alula_idl::flyteidl::core::{
    secret::MountType, task_template::Target, Container, Identifier, Identity, LiteralMap, Secret,
    SecurityContext, TaskMetadata, TaskTemplate, WorkflowExecutionIdentifier,
};
use alula_k8s::{PodPlugin, PodPluginConfig};
use alula_propeller::{Attempt, AttemptSettings, AttemptStatus, Plugin, PluginError, Waker};
use k8s_openapi::api::core::v1::{EnvVar, Pod, PodTemplate, ServiceAccount};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::mpsc;

const ROOT: &str = "/tmp/alula-k8s-it";

async fn client() -> Option<kube::Client> {
    let Ok(path) = std::env::var("ALULA_KUBECONFIG") else {
        println!(
            "SKIPPED: set ALULA_KUBECONFIG to a kubeconfig (e.g. the one written by \
             ../shared/tools/kube-apiserver/up.sh) to run the pod plugin against an API server"
        );
        return None;
    };
    let kubeconfig = Kubeconfig::read_from(&path).expect("read ALULA_KUBECONFIG");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    Some(kube::Client::try_from(config).expect("client"))
}

/// A plugin whose pods the fake kubelet runs for `run_seconds` and ends with `exit_code`.
fn plugin(client: kube::Client, run_seconds: u32, exit_code: i32) -> PodPlugin {
    PodPlugin::new(
        client,
        PodPluginConfig {
            namespace: "default".into(),
            storage_root: ROOT.into(),
            pod_storage_prefix: ROOT.into(),
            default_annotations: BTreeMap::from([
                ("fake-kubelet/run-seconds".into(), run_seconds.to_string()),
                ("fake-kubelet/exit-code".into(), exit_code.to_string()),
            ]),
            ..Default::default()
        },
    )
}

/// An attempt of its own execution (unique per test run).
fn attempt(tag: &str) -> Attempt {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    let task = TaskTemplate {
        id: Some(Identifier {
            project: "p".into(),
            domain: "d".into(),
            name: "it.task".into(),
            version: "v1".into(),
            ..Default::default()
        }),
        target: Some(Target::Container(Container {
            image: "busybox:1.36".into(),
            command: vec!["sh".into(), "-c".into()],
            args: vec!["echo {{.input}} > {{.outputPrefix}}/x".into()],
            ..Default::default()
        })),
        ..Default::default()
    };
    let base = PathBuf::from(ROOT).join(tag);
    Attempt {
        execution: WorkflowExecutionIdentifier {
            project: "p".into(),
            domain: "d".into(),
            name: format!("{tag}{nanos:x}"),
            ..Default::default()
        },
        node_id: "n0".into(),
        retry_attempt: 0,
        array_index: None,
        task: Arc::new(task),
        overrides: None,
        inputs: Arc::new(LiteralMap::default()),
        inputs_path: base.join("inputs.pb"),
        output_prefix: base.join("out"),
        raw_output_prefix: base.join("raw"),
        checkpoint_prefix: base.join("ck"),
        prev_checkpoint_prefix: None,
        env: BTreeMap::from([("FLYTE_ATTEMPT_NUMBER".into(), "0".into())]),
        settings: Default::default(),
    }
}

fn waker() -> (Waker, mpsc::UnboundedReceiver<u64>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Waker::new(tx, 1), rx)
}

/// Starts, retrying while the API server is not ready for pods yet (the namespace's default
/// service account appears a moment after the controller manager starts).
async fn start(plugin: &PodPlugin, a: &Attempt, w: Waker) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match plugin.start(a, w.clone()).await {
            Ok(()) => return,
            Err(PluginError::Transient(e)) if Instant::now() < deadline => {
                println!("start: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("start failed: {e}"),
        }
    }
}

/// Checks whenever the watcher wakes us (or every 2 s) until `done` holds; returns the status
/// and how many wake-ups came.
async fn wait_for(
    plugin: &PodPlugin,
    a: &Attempt,
    w: &Waker,
    rx: &mut mpsc::UnboundedReceiver<u64>,
    done: impl Fn(&AttemptStatus) -> bool,
) -> (AttemptStatus, usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut wakes = 0;
    loop {
        let status = plugin.check(a, w.clone()).await.expect("check");
        if done(&status) {
            return (status, wakes);
        }
        assert!(Instant::now() < deadline, "still {status:?} after 60 s");
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
            wakes += 1;
        }
    }
}

#[tokio::test]
async fn a_pod_runs_to_success_and_is_finalized() {
    let Some(client) = client().await else { return };
    let plugin = plugin(client.clone(), 1, 0);
    let watcher = plugin.spawn_watcher();
    let a = attempt("ok");
    let (w, mut rx) = waker();
    start(&plugin, &a, w.clone()).await;

    let (status, wakes) =
        wait_for(&plugin, &a, &w, &mut rx, |s| s != &AttemptStatus::Running).await;
    assert_eq!(
        status,
        AttemptStatus::Exited {
            exit_code: Some(0),
            message: String::new()
        }
    );
    assert!(wakes > 0, "the watcher never woke the attempt");
    println!("succeeded after {wakes} wake-ups");

    // The pod as created: templated command with the pod's view of the paths.
    let name = alula_k8s::pod::pod_name(&a);
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let pod = pods.get(&name).await.expect("pod");
    let args = pod.spec.expect("spec").containers[0]
        .args
        .clone()
        .expect("args");
    assert_eq!(
        args,
        vec![format!("echo {ROOT}/ok/inputs.pb > {ROOT}/ok/out/x")]
    );

    plugin.finalize(&a).await.expect("finalize");
    let deadline = Instant::now() + Duration::from_secs(30);
    while pods.get_opt(&name).await.expect("get").is_some() {
        assert!(
            Instant::now() < deadline,
            "pod {name} not deleted by finalize"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    watcher.abort();
}

#[tokio::test]
async fn a_failing_pod_exits_with_its_code() {
    let Some(client) = client().await else { return };
    let plugin = plugin(client, 1, 3);
    let a = attempt("fail");
    let (w, mut rx) = waker();
    start(&plugin, &a, w.clone()).await;
    let (status, _) = wait_for(&plugin, &a, &w, &mut rx, |s| s != &AttemptStatus::Running).await;
    assert_eq!(
        status,
        AttemptStatus::Exited {
            exit_code: Some(3),
            message: "Error".into()
        }
    );
    plugin.finalize(&a).await.expect("finalize");
}

#[tokio::test]
async fn a_second_start_adopts_and_abort_removes_the_pod() {
    let Some(client) = client().await else { return };
    let plugin = plugin(client.clone(), 600, 0);
    let a = attempt("abort");
    let (w, _rx) = waker();
    start(&plugin, &a, w.clone()).await;
    // The same attempt again (a propeller restarted between start and recording it): the
    // existing pod is adopted, not duplicated.
    match plugin.start(&a, w.clone()).await {
        Err(PluginError::AlreadyStarted(name)) => assert_eq!(name, alula_k8s::pod::pod_name(&a)),
        other => panic!("expected AlreadyStarted, got {other:?}"),
    }
    assert_eq!(
        plugin.check(&a, w.clone()).await.expect("check"),
        AttemptStatus::Running
    );

    plugin.abort(&a).await.expect("abort");
    plugin.abort(&a).await.expect("abort is idempotent");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match plugin.check(&a, w.clone()).await.expect("check") {
            AttemptStatus::NotStarted => break,
            s => {
                assert!(
                    Instant::now() < deadline,
                    "pod still there after abort: {s:?}"
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
    let pods: Api<Pod> = Api::namespaced(client, "default");
    assert!(pods
        .get_opt(&alula_k8s::pod::pod_name(&a))
        .await
        .expect("get")
        .is_none());
}

/// Creates `object`, or leaves the one already there (from an earlier run) in place.
async fn ensure<K>(api: &Api<K>, object: &K)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), object).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating {object:?}: {e}"),
    }
}

#[tokio::test]
async fn the_pod_carries_settings_secrets_and_its_pod_template() {
    let Some(client) = client().await else { return };
    let ns = "default";
    let templates: Api<PodTemplate> = Api::namespaced(client.clone(), ns);
    let template: PodTemplate = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "alula-it-template"},
        "template": {
            "metadata": {"labels": {"from-template": "yes"}},
            "spec": {
                "containers": [{"name": "default", "image": "unused",
                    "env": [{"name": "FROM_TEMPLATE", "value": "1"}],
                    "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}],
                "volumes": [{"name": "scratch", "emptyDir": {}}]
            }
        }
    }))
    .expect("pod template");
    ensure(&templates, &template).await;
    // The admission controller refuses pods whose service account does not exist.
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let account: ServiceAccount =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "alula-it-runner"}}))
            .expect("service account");
    ensure(&accounts, &account).await;

    let plugin = plugin(client.clone(), 600, 0);
    let mut a = attempt("settings");
    let mut task = (*a.task).clone();
    task.metadata = Some(TaskMetadata {
        pod_template_name: "alula-it-template".into(),
        ..Default::default()
    });
    task.security_context = Some(SecurityContext {
        secrets: vec![
            Secret {
                group: "db".into(),
                key: "password".into(),
                mount_requirement: MountType::EnvVar as i32,
                ..Default::default()
            },
            Secret {
                group: "certs".into(),
                key: "ca.pem".into(),
                ..Default::default()
            },
        ],
        ..Default::default()
    });
    a.task = Arc::new(task);
    a.settings = Arc::new(AttemptSettings {
        labels: BTreeMap::from([("team".into(), "ml".into())]),
        annotations: BTreeMap::from([("cost-center".into(), "42".into())]),
        envs: BTreeMap::from([("FROM_EXECUTION".into(), "e".into())]),
        security_context: Some(SecurityContext {
            run_as: Some(Identity {
                k8s_service_account: "alula-it-runner".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    let (w, _rx) = waker();
    start(&plugin, &a, w).await;

    // Read back from the API server: what it stored is what the kubelet would run.
    let pods: Api<Pod> = Api::namespaced(client, ns);
    let pod = pods.get(&alula_k8s::pod::pod_name(&a)).await.expect("pod");
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("team").map(String::as_str), Some("ml"));
    assert_eq!(labels.get("from-template").map(String::as_str), Some("yes"));
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get("cost-center").map(String::as_str),
        Some("42")
    );
    let spec = pod.spec.clone().expect("spec");
    assert_eq!(
        spec.service_account_name.as_deref(),
        Some("alula-it-runner")
    );
    let c = &spec.containers[0];
    let env: BTreeMap<String, EnvVar> = c
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.clone()))
        .collect();
    let secret_ref = env["_FSEC_DB_PASSWORD"]
        .value_from
        .as_ref()
        .and_then(|v| v.secret_key_ref.as_ref())
        .expect("a secret reference");
    assert_eq!(
        (secret_ref.name.as_str(), secret_ref.key.as_str()),
        ("db", "password")
    );
    assert_eq!(env["FROM_TEMPLATE"].value.as_deref(), Some("1"));
    assert_eq!(env["FROM_EXECUTION"].value.as_deref(), Some("e"));
    assert_eq!(
        env["FLYTE_SECRETS_DEFAULT_DIR"].value.as_deref(),
        Some("/etc/flyte/secrets")
    );
    let volumes = spec.volumes.clone().unwrap_or_default();
    assert!(volumes
        .iter()
        .any(|v| v.name == "scratch" && v.empty_dir.is_some()));
    let certs = volumes
        .iter()
        .find(|v| v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some("certs"))
        .expect("the certs secret's volume");
    let mounts: BTreeMap<String, String> = c
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.mount_path.clone(), m.name.clone()))
        .collect();
    assert_eq!(mounts.get("/scratch").map(String::as_str), Some("scratch"));
    assert_eq!(mounts.get("/etc/flyte/secrets/certs"), Some(&certs.name));

    plugin.abort(&a).await.expect("abort");
    plugin.finalize(&a).await.expect("finalize");

    // A task naming a template that does not exist fails to start, naming it.
    let mut b = attempt("notemplate");
    let mut task = (*b.task).clone();
    task.metadata = Some(TaskMetadata {
        pod_template_name: "alula-it-no-such-template".into(),
        ..Default::default()
    });
    b.task = Arc::new(task);
    let (w, _rx) = waker();
    match plugin.start(&b, w).await {
        Err(PluginError::Invalid(e)) => assert!(e.contains("alula-it-no-such-template"), "{e}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A plugin whose pods no node accepts (the fake kubelet never touches them), so that the
/// test can write their status itself; grace periods are zero.
fn unschedulable_plugin(client: kube::Client) -> PodPlugin {
    PodPlugin::new(
        client,
        PodPluginConfig {
            namespace: "default".into(),
            storage_root: ROOT.into(),
            pod_storage_prefix: ROOT.into(),
            node_selector: BTreeMap::from([("alula-it".into(), "nowhere".into())]),
            image_pull_grace: Duration::ZERO,
            unschedulable_timeout: Duration::ZERO,
            ..Default::default()
        },
    )
}

/// Writes `status` into the pod's status subresource (what a kubelet would report).
async fn set_status(pods: &Api<Pod>, name: &str, status: serde_json::Value) {
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "status": status })),
    )
    .await
    .unwrap_or_else(|e| panic!("patching the status of {name}: {e}"));
}

fn container_status(state: serde_json::Value) -> serde_json::Value {
    serde_json::json!([{"name": "task", "ready": false, "restartCount": 0, "image": "busybox:1.36",
        "imageID": "", "state": state}])
}

#[tokio::test]
async fn pod_failures_are_classified_as_flyte_does() {
    let Some(client) = client().await else { return };
    let plugin = unschedulable_plugin(client.clone());
    let pods: Api<Pod> = Api::namespaced(client, "default");

    // Unschedulable, as the real scheduler reports it: lost with the scheduler's message.
    let a = attempt("unsched");
    let (w, mut rx) = waker();
    start(&plugin, &a, w.clone()).await;
    let (status, _) = wait_for(&plugin, &a, &w, &mut rx, |s| s != &AttemptStatus::Running).await;
    match &status {
        AttemptStatus::Lost { message } => {
            assert!(message.starts_with("Unschedulable"), "{message}");
            assert!(message.contains("node"), "the scheduler's words: {message}");
        }
        other => panic!("expected Lost, got {other:?}"),
    }
    plugin.finalize(&a).await.expect("finalize");

    let cases: [(&str, serde_json::Value, AttemptStatus); 4] = [
        (
            "pullbackoff",
            serde_json::json!({"phase": "Pending", "containerStatuses": container_status(
                serde_json::json!({"waiting": {"reason": "ImagePullBackOff",
                    "message": "Back-off pulling image \"busybox:nope\""}}))}),
            AttemptStatus::Failed {
                message: "ImagePullBackOff: Back-off pulling image \"busybox:nope\"".into(),
            },
        ),
        (
            "oom",
            serde_json::json!({"phase": "Failed", "containerStatuses": container_status(
                serde_json::json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}))}),
            AttemptStatus::Killed {
                exit_code: Some(137),
                code: "OOMKilled".into(),
                message: "OOMKilled".into(),
            },
        ),
        (
            "evicted",
            serde_json::json!({"phase": "Failed", "reason": "Evicted",
                "message": "The node was low on resource: memory."}),
            AttemptStatus::Lost {
                message: "Evicted: The node was low on resource: memory.".into(),
            },
        ),
        (
            "nosecret",
            serde_json::json!({"phase": "Pending", "containerStatuses": container_status(
                serde_json::json!({"waiting": {"reason": "CreateContainerConfigError",
                    "message": "secret \"db\" not found"}}))}),
            AttemptStatus::Failed {
                message: "CreateContainerConfigError: secret \"db\" not found".into(),
            },
        ),
    ];
    for (tag, pod_status, expected) in cases {
        let a = attempt(tag);
        let (w, _rx) = waker();
        start(&plugin, &a, w.clone()).await;
        set_status(&pods, &alula_k8s::pod::pod_name(&a), pod_status).await;
        assert_eq!(plugin.check(&a, w).await.expect("check"), expected, "{tag}");
        plugin.finalize(&a).await.expect("finalize");
    }
}
