//! Golden tests of the operator plugins: each custom resource built from a task that the real
//! flytekit plugin serialized (`fixtures/operators/<name>.pb`, written by
//! tests/k8s/make_operator_fixtures.py with flytekitplugins-* 1.16.31) is compared, as YAML,
//! with `fixtures/operators/<name>.yaml`, so that any change of mapping shows in review.
//!
//! After a deliberate change, rewrite the YAML with
//! `ALULA_UPDATE_GOLDEN=1 cargo test -p alula-k8s --test operators_golden` and review the diff.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use alula_idl::flyteidl::core::{
    LiteralMap, TaskNodeOverrides, TaskTemplate, WorkflowExecutionIdentifier,
};
use alula_k8s::operators::{build_resource, operator, OPERATORS};
use alula_k8s::PodPluginConfig;
use alula_propeller::{Attempt, AttemptSettings};
use prost::Message;

const STORAGE: &str = "s3://alula-data";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/operators")
}

/// The first attempt of node `n0` of execution `golden`, with the settings an execution of the
/// default launch plan carries.
fn attempt(task: TaskTemplate) -> Attempt {
    let at = |leaf: &str| PathBuf::from(format!("{STORAGE}/metadata/p/d/golden/n0/{leaf}"));
    Attempt {
        execution: WorkflowExecutionIdentifier {
            project: "p".into(),
            domain: "d".into(),
            name: "golden".into(),
            ..Default::default()
        },
        node_id: "n0".into(),
        retry_attempt: 0,
        array_index: None,
        task: Arc::new(task),
        overrides: None::<TaskNodeOverrides>,
        inputs: Arc::new(LiteralMap::default()),
        inputs_path: at("inputs.pb"),
        output_prefix: at("0"),
        raw_output_prefix: PathBuf::from(format!("{STORAGE}/raw/p/d/golden/n0/0")),
        checkpoint_prefix: at("0/_flytecheckpoints"),
        prev_checkpoint_prefix: None,
        env: BTreeMap::from([
            ("FLYTE_ATTEMPT_NUMBER".into(), "0".into()),
            ("FLYTE_INTERNAL_EXECUTION_ID".into(), "golden".into()),
        ]),
        settings: Arc::new(AttemptSettings {
            labels: BTreeMap::from([("team".into(), "ml".into())]),
            ..Default::default()
        }),
    }
}

fn config() -> PodPluginConfig {
    PodPluginConfig {
        namespace: "flyte".into(),
        storage_root: "/var/lib/alula/storage".into(),
        pod_storage_prefix: STORAGE.into(),
        ..Default::default()
    }
}

fn render(name: &str) -> String {
    let bytes = std::fs::read(fixtures().join(format!("{name}.pb"))).expect("fixture");
    let task = TaskTemplate::decode(bytes.as_slice()).expect("a TaskTemplate");
    assert_eq!(task.r#type, name, "the fixture's task type is its plugin's");
    let op = operator(name).expect("an operator plugin");
    let object = build_resource(op.as_ref(), &attempt(task), &config(), None)
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let value = serde_json::to_value(&object).expect("json");
    serde_saphyr::to_string(&value).expect("yaml")
}

#[test]
fn every_operator_builds_its_golden_resource() {
    let update = std::env::var_os("ALULA_UPDATE_GOLDEN").is_some();
    let mut changed = Vec::new();
    for name in OPERATORS {
        let got = render(name);
        let path = fixtures().join(format!("{name}.yaml"));
        if update {
            std::fs::write(&path, &got).expect("writing the golden file");
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if got != want {
            eprintln!("--- {} (golden)\n{want}\n+++ built\n{got}", path.display());
            changed.push(*name);
        }
    }
    assert!(
        changed.is_empty(),
        "the resources of {changed:?} differ from their golden YAML (printed above); if the \
         change is meant, rewrite them with ALULA_UPDATE_GOLDEN=1 and review the diff"
    );
}

#[test]
fn the_golden_resources_carry_what_flyte_sets() {
    // A few facts read straight off the golden files, so that a rewrite that loses one of them
    // fails here as well as in review.
    let read = |name: &str| -> serde_json::Value {
        let text =
            std::fs::read_to_string(fixtures().join(format!("{name}.yaml"))).expect("golden file");
        serde_saphyr::from_str(&text).expect("golden YAML")
    };
    let torch = read("pytorch");
    assert_eq!(torch["kind"], "PyTorchJob");
    assert_eq!(torch["apiVersion"], "kubeflow.org/v1");
    assert_eq!(torch["metadata"]["namespace"], "flyte");
    assert_eq!(
        torch["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"],
        2
    );
    assert_eq!(torch["spec"]["runPolicy"]["cleanPodPolicy"], "All");
    let spark = read("spark");
    assert_eq!(spark["kind"], "SparkApplication");
    assert_eq!(spark["spec"]["type"], "Python");
    // flytekit sends the driver's pod template with a bare primary container: the task's
    // container fills it in, and the template's own settings stay.
    let driver = &spark["spec"]["driver"];
    assert_eq!(driver["image"], "ghcr.io/alula/operators:1.0");
    assert_eq!(driver["labels"]["role"], "driver");
    assert_eq!(driver["tolerations"][0]["key"], "spark");
    let ray = read("ray");
    assert_eq!(ray["kind"], "RayJob");
    assert!(ray["spec"]["rayClusterSpec"]["headGroupSpec"].is_object());
    let tf = read("tensorflow");
    assert_eq!(tf["spec"]["tfReplicaSpecs"]["Worker"]["replicas"], 2);
    let mpi = read("mpi");
    assert_eq!(mpi["spec"]["slotsPerWorker"], 2);
    for doc in [&torch, &spark, &ray, &tf, &mpi] {
        assert_eq!(doc["metadata"]["labels"]["team"], "ml", "{}", doc["kind"]);
        assert_eq!(
            doc["metadata"]["labels"]["app.kubernetes.io/managed-by"], "alula",
            "{}",
            doc["kind"]
        );
    }
}
