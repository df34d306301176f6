//! The pod plugin against a real kube-apiserver (`../shared/tools/kube-apiserver`: v1.20
//! with a fake kubelet that moves pods Pending → Running → Succeeded/Failed as their
//! `fake-kubelet/*` annotations say). Skipped unless `ALULA_KUBECONFIG` names its kubeconfig.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alula_idl::flyteidl::core::{
    task_template::Target, Container, Identifier, LiteralMap, TaskTemplate,
    WorkflowExecutionIdentifier,
};
use alula_k8s::{PodPlugin, PodPluginConfig};
use alula_propeller::{Attempt, AttemptStatus, Plugin, PluginError, Waker};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
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
