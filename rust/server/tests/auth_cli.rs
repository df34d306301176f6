//! `alula-server auth ...` against a fresh data folder: clients (secret printed once, stored
//! hashed, duplicates refused, revocation), role bindings, key rotation, the audit log, and the
//! admin client `alula start --auth` creates.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

use alula_server::auth_cli::{self, run_command};

async fn auth(data: &std::path::Path, line: &str) -> anyhow::Result<String> {
    let mut args: Vec<String> = line.split_whitespace().map(String::from).collect();
    args.extend(["--data".to_string(), data.display().to_string()]);
    run_command(&args).await
}

fn field<'a>(output: &'a str, name: &str) -> &'a str {
    output
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {output}"))
}

#[tokio::test]
async fn clients_bindings_keys_and_audit() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();

    let created = auth(
        dir,
        "create-client ci --role developer --project flytesnacks",
    )
    .await
    .unwrap();
    assert_eq!(field(&created, "client_id"), "ci");
    let secret = field(&created, "client_secret").to_string();
    assert!(secret.len() >= 40, "32 random bytes: {secret}");
    assert!(created.contains("authType: ClientSecret"), "{created}");
    assert!(created.contains("clientId: ci"), "{created}");

    let duplicate = auth(dir, "create-client ci").await.unwrap_err().to_string();
    assert!(duplicate.contains("exists"), "{duplicate}");

    // Listed without the secret (or its hash).
    let listed = auth(dir, "list-clients").await.unwrap();
    assert!(
        listed.contains("ci") && listed.contains("active"),
        "{listed}"
    );
    assert!(!listed.contains(&secret), "{listed}");
    assert!(!listed.contains("sha256$"), "{listed}");

    let bindings = auth(dir, "bindings").await.unwrap();
    let ci_line = bindings
        .lines()
        .find(|l| l.starts_with("client:ci"))
        .unwrap_or_else(|| panic!("{bindings}"));
    assert!(
        ci_line.contains("flytesnacks") && ci_line.contains("developer"),
        "{ci_line}"
    );

    auth(dir, "grant group:ml viewer --domain production")
        .await
        .unwrap();
    let bindings = auth(dir, "bindings").await.unwrap();
    assert!(
        bindings
            .lines()
            .any(|l| l.starts_with("group:ml") && l.contains("production") && l.contains("viewer")),
        "{bindings}"
    );
    auth(dir, "revoke group:ml --domain production")
        .await
        .unwrap();
    assert!(!auth(dir, "bindings").await.unwrap().contains("group:ml"));
    let missing = auth(dir, "revoke group:ml").await.unwrap_err().to_string();
    assert!(missing.contains("no role"), "{missing}");

    let bad_role = auth(dir, "grant group:ml owner")
        .await
        .unwrap_err()
        .to_string();
    assert!(bad_role.contains("owner"), "{bad_role}");
    let bad_subject = auth(dir, "grant team:ml viewer")
        .await
        .unwrap_err()
        .to_string();
    assert!(bad_subject.contains("team:ml"), "{bad_subject}");

    auth(dir, "revoke-client ci").await.unwrap();
    let listed = auth(dir, "list-clients").await.unwrap();
    assert!(listed.contains("revoked"), "{listed}");
    let again = auth(dir, "revoke-client ci").await.unwrap_err().to_string();
    assert!(again.contains("revoked already"), "{again}");
    let unknown = auth(dir, "revoke-client nobody")
        .await
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("no client nobody"), "{unknown}");

    let rotated = auth(dir, "rotate-key").await.unwrap();
    assert!(rotated.contains("new signing key"), "{rotated}");

    let audit = auth(dir, "audit --project flytesnacks --limit 5")
        .await
        .unwrap();
    assert!(audit.starts_with("TIME"), "{audit}");

    let usage = auth(dir, "frobnicate").await.unwrap_err().to_string();
    assert!(usage.contains("usage: alula auth"), "{usage}");
}

#[tokio::test]
async fn the_start_admin_client_is_created_once_with_a_private_secret_file() {
    use std::os::unix::fs::PermissionsExt as _;

    let data = tempfile::tempdir().unwrap();
    let file = auth_cli::load_settings(None, Some(data.path().to_str().unwrap())).unwrap();
    let admin = auth_cli::ensure_admin_client(&file).await.unwrap();
    assert_eq!(admin.client_id, "alula-admin");
    let secret = std::fs::read_to_string(&admin.secret_file).unwrap();
    assert!(secret.len() >= 40);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&admin.secret_file), 0o600);
    assert_eq!(mode(admin.secret_file.parent().unwrap()), 0o700);

    // A second start keeps the client and its secret.
    let again = auth_cli::ensure_admin_client(&file).await.unwrap();
    assert_eq!(std::fs::read_to_string(&again.secret_file).unwrap(), secret);
    let bindings = auth(data.path(), "bindings").await.unwrap();
    assert!(
        bindings
            .lines()
            .any(|l| l.starts_with("client:alula-admin") && l.contains("admin")),
        "{bindings}"
    );

    // The secret file lost: the client gets a new secret, written again; the old one is dead.
    std::fs::remove_file(&admin.secret_file).unwrap();
    let renewed = auth_cli::ensure_admin_client(&file).await.unwrap();
    let new_secret = std::fs::read_to_string(&renewed.secret_file).unwrap();
    assert_ne!(new_secret, secret);
    assert_eq!(mode(&renewed.secret_file), 0o600);
    let (_root, store) = auth_cli::open_store(&file).await.unwrap();
    let row = store.auth_client("alula-admin").await.unwrap().unwrap();
    assert!(alula_auth::secret::verify_secret(
        &new_secret,
        &row.secret_hash
    ));
    assert!(!alula_auth::secret::verify_secret(
        &secret,
        &row.secret_hash
    ));
    store.close().await;
}
