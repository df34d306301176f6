//! The security settings (`[auth]`, TLS, `insecure_no_auth`) parse as documented, and the rules
//! checked before anything binds refuse what they must: an API open to the network without
//! authentication, OIDC without an issuer, half a TLS pair, a leeway over 5 minutes, and bindings
//! with a bad subject or role.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

use alula_admin::auth::AuthMode;
use alula_auth::{Role, Subject};
use alula_server::{security, FileConfig};

fn config(text: &str) -> FileConfig {
    toml::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn refusal(text: &str, host: &str) -> String {
    let file = config(text);
    security::check(&file, host, true)
        .expect_err("the settings must be refused")
        .to_string()
}

#[test]
fn no_auth_is_refused_off_loopback_unless_said_on_purpose() {
    for host in ["0.0.0.0", "::", "10.0.0.5", "[::]"] {
        let message = refusal("", host);
        assert!(message.contains("without authentication"), "{message}");
        assert!(
            message.contains("insecure_no_auth"),
            "{message}: says what to set"
        );
    }
    for host in ["127.0.0.1", "::1", "localhost", "127.0.0.2"] {
        security::check(&config(""), host, true).unwrap();
    }
    security::check(&config("insecure_no_auth = true"), "0.0.0.0", true).unwrap();
    security::check(&config("[auth]\nmode = \"builtin\""), "0.0.0.0", true).unwrap();
    // A propeller-only replica serves no API: probes and metrics only.
    security::check(&config(""), "0.0.0.0", false).unwrap();
    assert!(!security::is_loopback("0.0.0.0"));
    assert!(!security::is_loopback("::"));
}

#[test]
fn contradictory_settings_are_refused() {
    let oidc = refusal("[auth]\nmode = \"oidc\"", "127.0.0.1");
    assert!(oidc.contains("issuer"), "{oidc}");
    security::check(
        &config("[auth]\nmode = \"oidc\"\nissuer = \"https://idp.example\""),
        "127.0.0.1",
        true,
    )
    .unwrap();

    let half = refusal("tls_cert = \"/etc/alula/tls.crt\"", "127.0.0.1");
    assert!(half.contains("tls_key"), "{half}");
    let half = refusal("tls_key = \"/etc/alula/tls.key\"", "127.0.0.1");
    assert!(half.contains("tls_cert"), "{half}");

    let leeway = refusal(
        "[auth]\nmode = \"builtin\"\nleeway_seconds = 301",
        "127.0.0.1",
    );
    assert!(leeway.contains("leeway_seconds"), "{leeway}");
    security::check(
        &config("[auth]\nmode = \"builtin\"\nleeway_seconds = 300"),
        "127.0.0.1",
        true,
    )
    .unwrap();
}

#[test]
fn bindings_are_validated_naming_the_bad_value() {
    let bad_role = refusal(
        "[[auth.bindings]]\nsubject = \"group:ml\"\nrole = \"owner\"",
        "127.0.0.1",
    );
    assert!(bad_role.contains("\"owner\""), "{bad_role}");
    let bad_subject = refusal(
        "[[auth.bindings]]\nsubject = \"team:ml\"\nrole = \"viewer\"",
        "127.0.0.1",
    );
    assert!(bad_subject.contains("\"team:ml\""), "{bad_subject}");
    // Unknown keys are typos, not silently ignored settings.
    assert!(toml::from_str::<FileConfig>("[auth]\nmod = \"builtin\"").is_err());
    assert!(toml::from_str::<FileConfig>("[auth]\nmode = \"ldap\"").is_err());
}

#[test]
fn the_auth_table_becomes_auth_settings() {
    let file = config(
        r#"
        tls_cert = "/tls/tls.crt"
        tls_key = "/tls/tls.key"
        previous_signing_keys = ["old-key"]
        task_user = "nobody"

        [auth]
        mode = "oidc"
        issuer = "https://idp.example/realms/alula/"
        audience = "alula-api"
        cli_client_id = "alula-cli"
        console_client_id = "console"
        console_client_secret = "s3cr3t-value"
        groups_claim = "roles"
        scopes = ["openid"]
        token_lifetime_seconds = 600
        leeway_seconds = 10

        [[auth.bindings]]
        subject = "group:ml"
        role = "developer"

        [[auth.bindings]]
        subject = "user:alice@example.com"
        project = "flytesnacks"
        domain = "development"
        role = "admin"
        "#,
    );
    // The console's secret never shows in the settings' Debug output.
    assert!(!format!("{file:?}").contains("s3cr3t-value"));
    let tls = security::tls_files(&file).unwrap().unwrap();
    assert_eq!(tls.cert.to_str(), Some("/tls/tls.crt"));
    assert_eq!(file.task_user.as_deref(), Some("nobody"));
    assert_eq!(
        file.previous_signing_keys,
        Some(vec!["old-key".to_string()])
    );

    let settings = security::auth_settings(&file).unwrap();
    assert_eq!(settings.mode, AuthMode::Oidc);
    assert_eq!(settings.issuer, "https://idp.example/realms/alula");
    assert_eq!(settings.audience, "alula-api");
    assert_eq!(settings.cli_client_id, "alula-cli");
    assert_eq!(settings.console_client_id, "console");
    assert_eq!(
        settings.console_client_secret.as_ref().map(|s| s.expose()),
        Some("s3cr3t-value")
    );
    assert_eq!(settings.groups_claim, "roles");
    assert_eq!(settings.scopes, ["openid"]);
    assert_eq!(settings.token_lifetime.as_secs(), 600);
    assert_eq!(settings.leeway.as_secs(), 10);
    assert_eq!(settings.bindings.len(), 2);
    assert_eq!(settings.bindings[0].subject, Subject::Group("ml".into()));
    assert_eq!(
        (
            settings.bindings[0].project.as_str(),
            settings.bindings[0].domain.as_str()
        ),
        ("*", "*")
    );
    assert_eq!(settings.bindings[1].role, Role::Admin);
    assert_eq!(settings.bindings[1].domain, "development");
}

#[test]
fn the_builtin_issuer_is_the_public_url() {
    let file = config("[auth]\nmode = \"builtin\"");
    let mut settings = security::auth_settings(&file).unwrap();
    security::builtin_issuer(&mut settings, "https://alula.example:8088/");
    assert_eq!(settings.issuer, "https://alula.example:8088");
    assert_eq!(settings.audience, "alula");
    assert_eq!(settings.token_lifetime.as_secs(), 3600);

    // Off: nothing to fill in.
    let mut off = security::auth_settings(&config("")).unwrap();
    security::builtin_issuer(&mut off, "http://127.0.0.1:8088");
    assert_eq!(off.mode, AuthMode::Off);
    assert_eq!(off.issuer, "");
}

#[test]
fn variables_parse_strictly() {
    assert_eq!(security::parse_mode("builtin").unwrap(), AuthMode::Builtin);
    assert_eq!(security::parse_mode("OIDC").unwrap(), AuthMode::Oidc);
    assert_eq!(security::parse_mode("off").unwrap(), AuthMode::Off);
    assert!(security::parse_mode("on").is_err());
    assert!(security::parse_flag("X", "1").unwrap());
    assert!(!security::parse_flag("X", "false").unwrap());
    assert!(security::parse_flag("X", "maybe").is_err());
}
