//! The security variables override the file (one test: the environment is the process's).

#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

use alula_admin::auth::AuthMode;
use alula_server::{security, FileConfig};

#[test]
fn security_variables_override_the_file() {
    let vars = [
        ("ALULA_AUTH", "oidc"),
        ("ALULA_OIDC_ISSUER", "https://idp.example"),
        ("ALULA_OIDC_AUDIENCE", "api"),
        ("ALULA_OIDC_CLIENT_ID", "cli"),
        ("ALULA_CONSOLE_CLIENT_ID", "web"),
        ("ALULA_CONSOLE_CLIENT_SECRET", "hidden-value"),
        ("ALULA_INSECURE_NO_AUTH", "true"),
        ("ALULA_TLS_CERT", "/tls/tls.crt"),
        ("ALULA_TLS_KEY", "/tls/tls.key"),
        ("ALULA_TASK_USER", "alula-task"),
        ("ALULA_PREVIOUS_SIGNING_KEYS", "k1, k2"),
    ];
    for (name, value) in vars {
        // This test binary has this one test: no other thread reads the environment.
        std::env::set_var(name, value);
    }
    let file = FileConfig::load(None).unwrap();
    let settings = security::auth_settings(&file).unwrap();
    assert_eq!(settings.mode, AuthMode::Oidc);
    assert_eq!(settings.issuer, "https://idp.example");
    assert_eq!(settings.audience, "api");
    assert_eq!(settings.cli_client_id, "cli");
    assert_eq!(settings.console_client_id, "web");
    assert_eq!(
        settings.console_client_secret.as_ref().map(|s| s.expose()),
        Some("hidden-value")
    );
    assert_eq!(file.insecure_no_auth, Some(true));
    assert!(security::tls_files(&file).unwrap().is_some());
    assert_eq!(file.task_user.as_deref(), Some("alula-task"));
    assert_eq!(
        file.previous_signing_keys,
        Some(vec!["k1".to_string(), "k2".to_string()])
    );
    assert!(!format!("{file:?}").contains("hidden-value"));

    std::env::set_var("ALULA_AUTH", "sometimes");
    let error = FileConfig::load(None).expect_err("a bad mode").to_string();
    assert!(error.contains("sometimes"), "{error}");
}
