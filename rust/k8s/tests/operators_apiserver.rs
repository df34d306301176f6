//! The operator plugins against a real kube-apiserver (scripts/k8s-test starts one): the
//! minimal CRDs of `tests/k8s/crds` installed, a job created under the attempt's name, a
//! second start adopting it, statuses written as the operators write them read back as
//! attempt statuses (waking the driver through the watcher), abort deleting the resource, a
//! fresh plugin (a restarted propeller) finding the running job. Says SKIPPED without
//! `ALULA_KUBECONFIG`, like tests/apiserver.rs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alula_idl::flyteidl::core::{
    task_template::Target, Container, Identifier, LiteralMap, TaskTemplate,
    WorkflowExecutionIdentifier,
};
use alula_k8s::operators::OperatorPlugin;
use alula_k8s::{PodPlugin, PodPluginConfig};
use alula_propeller::{Attempt, AttemptStatus, Plugin, PluginError, Waker};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use tokio::sync::mpsc;

const ROOT: &str = "/tmp/alula-k8s-operators-it";

async fn client() -> Option<kube::Client> {
    let Ok(path) = std::env::var("ALULA_KUBECONFIG") else {
        println!(
            "SKIPPED: set ALULA_KUBECONFIG (scripts/k8s-test does) to run against an API server"
        );
        return None;
    };
    let kubeconfig = Kubeconfig::read_from(&path).expect("read ALULA_KUBECONFIG");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    Some(kube::Client::try_from(config).expect("client"))
}

/// Installs the CRD of `file` (tests/k8s/crds) and waits until it is served.
async fn install_crd(client: &kube::Client, file: &str, ar: &ApiResource) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/k8s/crds")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("CRD file");
    let crd: CustomResourceDefinition = serde_saphyr::from_str(&text).expect("CRD parses");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    match crds.create(&PostParams::default(), &crd).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating the CRD {}: {e}", path.display()),
    }
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", ar);
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.list(&Default::default()).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "{} is not served after 30 s",
            ar.plural
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn attempt(tag: &str, task_type: &str, custom: serde_json::Value) -> Attempt {
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
        r#type: task_type.into(),
        custom: Some(serde_json::from_value(custom).expect("struct")),
        target: Some(Target::Container(Container {
            image: "python:3.12".into(),
            args: vec![
                "pyflyte-execute".into(),
                "--inputs".into(),
                "{{.input}}".into(),
            ],
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

fn plugin(client: &kube::Client, name: &str) -> OperatorPlugin {
    let pods = Arc::new(PodPlugin::new(
        client.clone(),
        PodPluginConfig {
            namespace: "default".into(),
            storage_root: ROOT.into(),
            pod_storage_prefix: ROOT.into(),
            ..Default::default()
        },
    ));
    OperatorPlugin::named(name, client.clone(), pods).expect("operator")
}

fn waker() -> (Waker, mpsc::UnboundedReceiver<u64>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Waker::new(tx, 1), rx)
}

/// Writes the resource's status through the status subresource, as an operator does.
async fn set_status(api: &Api<DynamicObject>, name: &str, status: serde_json::Value) {
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .expect("status patch");
}

#[tokio::test]
async fn a_ray_job_is_created_adopted_read_and_aborted() {
    let Some(client) = client().await else { return };
    let ray = plugin(&client, "ray");
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("ray.io", "v1", "RayJob"),
        "rayjobs",
    );
    install_crd(&client, "rayjobs.yaml", &ar).await;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let watcher = ray.spawn_watcher();

    let a = attempt(
        "ray",
        "ray",
        json!({"rayCluster": {"workerGroupSpec": [{"groupName": "w", "replicas": 2}]}}),
    );
    let (w, mut wakes) = waker();
    ray.start(&a, w.clone()).await.expect("create");
    let name = alula_k8s::pod::pod_name(&a);
    let job = api.get(&name).await.expect("the RayJob exists");
    assert_eq!(
        job.data["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"],
        2
    );
    assert!(job.data["spec"]["entrypoint"]
        .as_str()
        .unwrap_or_default()
        .starts_with("pyflyte-execute --inputs "));
    match ray.start(&a, w.clone()).await {
        Err(PluginError::AlreadyStarted(n)) => assert_eq!(n, name),
        other => panic!("a second start adopts the job, got {other:?}"),
    }
    assert_eq!(
        ray.check(&a, w.clone()).await.expect("check"),
        AttemptStatus::Running
    );

    // A restarted propeller (a fresh plugin) finds the running job by the attempt's name.
    let restarted = plugin(&client, "ray");
    assert_eq!(
        restarted.check(&a, w.clone()).await.expect("check"),
        AttemptStatus::Running
    );

    while wakes.try_recv().is_ok() {}
    set_status(
        &api,
        &name,
        json!({"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}),
    )
    .await;
    tokio::time::timeout(Duration::from_secs(20), wakes.recv())
        .await
        .expect("the watcher wakes the driver when the status changes");
    assert!(matches!(
        ray.check(&a, w.clone()).await.expect("check"),
        AttemptStatus::Exited {
            exit_code: Some(0),
            ..
        }
    ));

    // A failing job: its message reaches the attempt.
    let b = attempt("rayfail", "ray", json!({}));
    ray.start(&b, w.clone()).await.expect("create");
    let b_name = alula_k8s::pod::pod_name(&b);
    set_status(&api, &b_name, json!({"jobDeploymentStatus": "Complete", "jobStatus": "FAILED", "message": "ZeroDivisionError: boom"})).await;
    match ray.check(&b, w.clone()).await.expect("check") {
        AttemptStatus::Killed { code, message, .. } => {
            assert_eq!(code, "RayJobFailed");
            assert_eq!(message, "ZeroDivisionError: boom");
        }
        other => panic!("a failed job fails the attempt, got {other:?}"),
    }

    // Abort deletes the job; it is then not running, and not lost either.
    ray.abort(&b).await.expect("abort");
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.get_opt(&b_name).await.expect("get").is_some() {
        assert!(Instant::now() < deadline, "the aborted job is still there");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        ray.check(&b, w.clone()).await.expect("check"),
        AttemptStatus::NotStarted
    );

    // Deleted by someone else after we saw it: lost.
    api.delete(&name, &Default::default())
        .await
        .expect("delete");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match ray.check(&a, w.clone()).await.expect("check") {
            AttemptStatus::Lost { message } => {
                assert!(message.contains(&name), "{message}");
                break;
            }
            other => assert!(Instant::now() < deadline, "still {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ray.finalize(&a).await.expect("finalize");
    watcher.abort();
}

#[tokio::test]
async fn every_operator_creates_its_resource_and_reads_its_failure() {
    let Some(client) = client().await else { return };
    let cases = [
        (
            "spark",
            "sparkapplications.yaml",
            json!({"sparkConf": {"spark.executor.instances": "2"}}),
            json!({"applicationState": {"state": "FAILED", "errorMessage": "driver failed"}}),
            "driver failed",
        ),
        (
            "pytorch",
            "pytorchjobs.yaml",
            json!({"workerReplicas": {"common": {"replicas": 2}}}),
            json!({"conditions": [{"type": "Failed", "status": "True", "reason": "PyTorchJobFailed", "message": "worker 1 exited", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
            "PyTorchJobFailed: worker 1 exited",
        ),
        (
            "tensorflow",
            "tfjobs.yaml",
            json!({"workerReplicas": {"common": {"replicas": 1}}}),
            json!({"conditions": [{"type": "Failed", "status": "True", "reason": "TFJobFailed", "message": "chief exited", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
            "TFJobFailed: chief exited",
        ),
        (
            "mpi",
            "mpijobs.yaml",
            json!({"workerReplicas": {"common": {"replicas": 1}}, "slots": 2}),
            json!({"conditions": [{"type": "Failed", "status": "True", "reason": "MPIJobFailed", "message": "launcher exited", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
            "MPIJobFailed: launcher exited",
        ),
    ];
    for (name, crd, custom, status, message) in cases {
        let p = plugin(&client, name);
        let ar = alula_k8s::operators::operator(name)
            .expect("operator")
            .api_resource();
        install_crd(&client, crd, &ar).await;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
        let a = attempt(name, name, custom);
        let (w, _wakes) = waker();
        p.start(&a, w.clone())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let job = alula_k8s::pod::pod_name(&a);
        assert_eq!(
            p.check(&a, w.clone()).await.expect("check"),
            AttemptStatus::Running,
            "{name}"
        );
        set_status(&api, &job, status).await;
        match p.check(&a, w.clone()).await.expect("check") {
            AttemptStatus::Killed { message: m, .. } => assert_eq!(m, message, "{name}"),
            other => panic!("{name}: expected a failure, got {other:?}"),
        }
        p.abort(&a).await.expect("abort");
        p.finalize(&a).await.expect("finalize");
    }
}
