//! `alula-server auth ...` / `alula auth ...`: the built-in authorization server's clients, role
//! bindings, signing keys and the audit log, read and changed in the server's database (found
//! the way the server finds it: `--config FILE`, `--data DIR`, `ALULA_*`), without binding ports.
//!
//! ```text
//! auth create-client NAME [--role R] [--project P] [--domain D] [--description TEXT]
//! auth list-clients
//! auth revoke-client NAME
//! auth grant SUBJECT ROLE [--project P] [--domain D]
//! auth revoke SUBJECT [--project P] [--domain D]
//! auth bindings
//! auth rotate-key
//! auth audit [--project P] [--limit N]
//! ```
//!
//! Every command takes `[--config FILE] [--data DIR]`. A client's secret is printed once, by
//! `create-client`: the database keeps only its hash.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use alula_admin::auth::Auth;
use alula_admin::Store;
use alula_auth::roles::ANY;
use alula_auth::secret::{hash_secret, new_client_secret, Secret};
use alula_auth::{Role, Subject};
use anyhow::{bail, Context, Result};

use crate::FileConfig;

/// The client `alula start --auth` creates for its user.
pub const ADMIN_CLIENT: &str = "alula-admin";

pub const USAGE: &str = "usage: alula auth COMMAND [--config FILE] [--data DIR]
commands:
  create-client NAME [--role R] [--project P] [--domain D] [--description TEXT]
  list-clients
  revoke-client NAME
  grant SUBJECT ROLE [--project P] [--domain D]
  revoke SUBJECT [--project P] [--domain D]
  bindings
  rotate-key
  audit [--project P] [--limit N]
roles: viewer, runner, developer, admin; subjects: user:NAME, group:NAME, client:ID";

/// A command line split into its words and its `--flag value` options.
#[derive(Debug, Default)]
struct Parsed {
    words: Vec<String>,
    options: Vec<(String, String)>,
}

const OPTIONS: [&str; 7] = [
    "--config",
    "--data",
    "--role",
    "--project",
    "--domain",
    "--limit",
    "--description",
];

impl Parsed {
    fn new(args: &[String]) -> Result<Self> {
        let mut parsed = Self::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            if let Some((flag, value)) = arg.split_once('=').filter(|(f, _)| f.starts_with("--")) {
                parsed.option(flag, value.to_string())?;
            } else if arg.starts_with("--") {
                let value = args
                    .next()
                    .with_context(|| format!("{arg} needs a value\n{USAGE}"))?;
                parsed.option(arg, value.clone())?;
            } else {
                parsed.words.push(arg.clone());
            }
        }
        Ok(parsed)
    }

    fn option(&mut self, flag: &str, value: String) -> Result<()> {
        if !OPTIONS.contains(&flag) {
            bail!("unknown option {flag}\n{USAGE}");
        }
        self.options.push((flag.to_string(), value));
        Ok(())
    }

    fn get(&self, flag: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(f, _)| f == flag)
            .map(|(_, v)| v.as_str())
    }

    /// Only the options `allowed` (and the database ones) make sense for this command.
    fn only(&self, command: &str, allowed: &[&str]) -> Result<()> {
        for (flag, _) in &self.options {
            if !matches!(flag.as_str(), "--config" | "--data") && !allowed.contains(&flag.as_str())
            {
                bail!("auth {command} takes no {flag}");
            }
        }
        Ok(())
    }

    fn scope(&self) -> (String, String) {
        (
            self.get("--project").unwrap_or(ANY).to_string(),
            self.get("--domain").unwrap_or(ANY).to_string(),
        )
    }
}

/// The server settings the command's options and the environment give.
pub fn load_settings(config: Option<&str>, data: Option<&str>) -> Result<FileConfig> {
    let mut file = FileConfig::load(config)?;
    if let Some(data) = data {
        file.storage_root = Some(PathBuf::from(data));
    }
    Ok(file)
}

/// The server's database, as `run` opens it.
pub async fn open_store(file: &FileConfig) -> Result<(PathBuf, Store)> {
    let (storage_root, database_url) = crate::storage_and_database(file)?;
    let store = Store::connect(&database_url).await.with_context(|| {
        format!(
            "opening database {}",
            crate::without_password(&database_url)
        )
    })?;
    // It may have just been made (a first `alula auth` on a new folder): private like `run`'s.
    crate::restrict_database_file(&database_url);
    Ok((storage_root, store))
}

/// Runs one `auth` command (its arguments after `auth`) and returns what it prints.
pub async fn run_command(args: &[String]) -> Result<String> {
    let parsed = Parsed::new(args)?;
    let Some((command, operands)) = parsed.words.split_first() else {
        bail!("{USAGE}");
    };
    if command == "help" || command == "--help" {
        return Ok(format!("{USAGE}\n"));
    }
    let file = load_settings(parsed.get("--config"), parsed.get("--data"))?;
    let (_, store) = open_store(&file).await?;
    let result = command_on(&store, &file, command, operands, &parsed).await;
    store.close().await;
    result
}

fn role_arg(value: &str) -> Result<Role> {
    Role::parse(value)
        .with_context(|| format!("role {value:?} is none of viewer, runner, developer, admin"))
}

fn subject_arg(value: &str) -> Result<Subject> {
    Subject::parse(value)
        .with_context(|| format!("subject {value:?} is none of user:NAME, group:NAME, client:ID"))
}

fn one<'a>(operands: &'a [String], what: &str) -> Result<&'a str> {
    match operands {
        [only] => Ok(only),
        _ => bail!("expected {what}\n{USAGE}"),
    }
}

async fn command_on(
    store: &Store,
    file: &FileConfig,
    command: &str,
    operands: &[String],
    parsed: &Parsed,
) -> Result<String> {
    let mut out = String::new();
    match command {
        "create-client" => {
            parsed.only(
                command,
                &["--role", "--project", "--domain", "--description"],
            )?;
            let name = one(operands, "create-client NAME")?;
            let role = parsed.get("--role").map(role_arg).transpose()?;
            if role.is_none()
                && (parsed.get("--project").is_some() || parsed.get("--domain").is_some())
            {
                bail!("--project and --domain say where --role applies: give --role too");
            }
            let description = parsed.get("--description").unwrap_or_default();
            let secret = create_client(store, name, description).await?;
            let (project, domain) = parsed.scope();
            if let Some(role) = role {
                store
                    .put_role_binding(&Subject::Client(name.into()), &project, &domain, role)
                    .await?;
            }
            writeln!(out, "client_id: {name}")?;
            writeln!(out, "client_secret: {}", secret.expose())?;
            match role {
                Some(role) => writeln!(
                    out,
                    "role: {} on project {project}, domain {domain}",
                    role.as_str()
                )?,
                None => writeln!(out, "role: none yet (alula auth grant client:{name} ROLE)")?,
            }
            writeln!(
                out,
                "\nThe secret is shown this once. Save it in a file only you can read, and use \
                 this flytekit config:\n"
            )?;
            out.push_str(&flytekit_config(
                file,
                name,
                Path::new(&format!("{name}.secret")),
            ));
        }
        "list-clients" => {
            parsed.only(command, &[])?;
            if !operands.is_empty() {
                bail!("list-clients takes no operand");
            }
            let clients = store.list_auth_clients().await?;
            let mut rows = vec![row(["CLIENT_ID", "CREATED", "STATUS", "DESCRIPTION"])];
            for c in clients {
                let status = match c.is_revoked() {
                    true => format!("revoked {}", time(c.revoked_at)),
                    false => "active".into(),
                };
                rows.push(vec![c.client_id, time(c.created_at), status, c.description]);
            }
            out = table(&rows);
        }
        "revoke-client" => {
            parsed.only(command, &[])?;
            let name = one(operands, "revoke-client NAME")?;
            if !store.revoke_auth_client(name).await? {
                match store.auth_client(name).await? {
                    Some(_) => bail!("client {name} is revoked already"),
                    None => bail!("no client {name}"),
                }
            }
            writeln!(
                out,
                "revoked client {name}: its tokens are refused from now on"
            )?;
        }
        "grant" => {
            parsed.only(command, &["--project", "--domain"])?;
            let [subject, role] = operands else {
                bail!("expected grant SUBJECT ROLE\n{USAGE}");
            };
            let (subject, role) = (subject_arg(subject)?, role_arg(role)?);
            let (project, domain) = parsed.scope();
            store
                .put_role_binding(&subject, &project, &domain, role)
                .await?;
            writeln!(
                out,
                "{subject} is {} on project {project}, domain {domain}",
                role.as_str()
            )?;
        }
        "revoke" => {
            parsed.only(command, &["--project", "--domain"])?;
            let subject = subject_arg(one(operands, "revoke SUBJECT")?)?;
            let (project, domain) = parsed.scope();
            if !store
                .delete_role_binding(&subject, &project, &domain)
                .await?
            {
                bail!(
                    "{subject} has no role on project {project}, domain {domain} in the database"
                );
            }
            writeln!(
                out,
                "{subject} has no role on project {project}, domain {domain} any more"
            )?;
        }
        "bindings" => {
            parsed.only(command, &[])?;
            let mut rows = vec![row(["SUBJECT", "PROJECT", "DOMAIN", "ROLE", "SOURCE"])];
            let settings = crate::security::auth_settings(file)?;
            let stored = store.role_bindings().await?;
            let listed = (settings.bindings.iter().map(|b| (b, "settings")))
                .chain(stored.iter().map(|b| (b, "database")));
            for (b, source) in listed {
                rows.push(vec![
                    b.subject.to_string(),
                    b.project.clone(),
                    b.domain.clone(),
                    b.role.as_str().into(),
                    source.into(),
                ]);
            }
            out = table(&rows);
        }
        "rotate-key" => {
            parsed.only(command, &[])?;
            let kid = Auth::rotate_signing_key(store).await?;
            writeln!(
                out,
                "new signing key {kid}: new tokens are signed with it; tokens signed before stay \
                 valid until they expire"
            )?;
        }
        "audit" => {
            parsed.only(command, &["--project", "--limit"])?;
            let limit = match parsed.get("--limit") {
                Some(n) => n
                    .parse::<u32>()
                    .with_context(|| format!("--limit {n:?} is not a number"))?,
                None => 50,
            };
            let entries = store
                .audit_entries(parsed.get("--project"), limit, None)
                .await?;
            let mut rows = vec![row([
                "TIME",
                "PRINCIPAL",
                "METHOD",
                "PROJECT",
                "DOMAIN",
                "RESOURCE",
                "CODE",
            ])];
            for e in entries.into_iter().map(|r| r.entry) {
                let method = e.method.rsplit('/').next().unwrap_or_default().to_string();
                rows.push(vec![
                    time(e.at),
                    e.principal,
                    method,
                    e.project,
                    e.domain,
                    e.resource,
                    e.code,
                ]);
            }
            out = table(&rows);
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
    Ok(out)
}

/// Creates client `name` with a new secret; refuses a name that exists (revoked ones too: a
/// revoked id is never given again).
pub async fn create_client(store: &Store, name: &str, description: &str) -> Result<Secret> {
    if name.trim().is_empty() || name.contains(char::is_whitespace) || name.contains(':') {
        bail!("client name {name:?}: no spaces or colons");
    }
    let secret = new_client_secret();
    if !store
        .create_client(name, &hash_secret(secret.expose()), description)
        .await?
    {
        bail!("client {name} exists already (revoked clients' names are not reused)");
    }
    Ok(secret)
}

/// What `alula start --auth` gives its user: a client and the file holding its secret.
#[derive(Debug, Clone)]
pub struct AdminClient {
    pub client_id: String,
    pub secret_file: PathBuf,
}

/// Ensures client [`ADMIN_CLIENT`] (role admin everywhere) exists and its secret is in
/// `<storage_root>/auth/alula-admin.secret` (mode 0600, in a folder of mode 0700).
pub async fn ensure_admin_client(file: &FileConfig) -> Result<AdminClient> {
    let (storage_root, store) = open_store(file).await?;
    let result = ensure_admin_client_in(&store, &storage_root).await;
    store.close().await;
    result
}

async fn ensure_admin_client_in(store: &Store, storage_root: &Path) -> Result<AdminClient> {
    let folder = storage_root.join("auth");
    private_folder(&folder)?;
    let secret_file = folder.join(format!("{ADMIN_CLIENT}.secret"));
    let admin = AdminClient {
        client_id: ADMIN_CLIENT.into(),
        secret_file: secret_file.clone(),
    };
    match store.auth_client(ADMIN_CLIENT).await? {
        Some(client) if !client.is_revoked() && secret_file.is_file() => Ok(admin),
        // The secret file is gone: the secret cannot be recovered, so the client gets a new
        // one (the old one stops working) and the file is written again.
        Some(client) if !client.is_revoked() => {
            let secret = new_client_secret();
            let hash = hash_secret(secret.expose());
            if !store.replace_client_secret(ADMIN_CLIENT, &hash).await? {
                bail!("client {ADMIN_CLIENT} vanished while its secret was replaced");
            }
            write_private(&secret_file, secret.expose())?;
            Ok(admin)
        }
        Some(_) => bail!(
            "client {ADMIN_CLIENT} was revoked (`alula auth revoke-client`); revoked ids are \
             never reused, so `alula start --auth` cannot make it again. Start with a new --data \
             folder, or create another admin client with `alula auth create-client NAME --role \
             admin`"
        ),
        None => {
            // Only when the client is made: an operator who later narrows or revokes its role
            // (`alula auth revoke client:alula-admin`) is not overruled by the next start.
            store
                .put_role_binding(&Subject::Client(ADMIN_CLIENT.into()), ANY, ANY, Role::Admin)
                .await?;
            let secret = create_client(store, ADMIN_CLIENT, "alula start --auth").await?;
            write_private(&secret_file, secret.expose())?;
            Ok(admin)
        }
    }
}

fn private_folder(folder: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {}", folder.display()))
}

/// Writes `text` to a file only its owner can read (created so, never world-readable first).
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// A flytekit config for client `client_id` of this server (its settings' endpoint and TLS).
pub fn flytekit_config(file: &FileConfig, client_id: &str, secret_file: &Path) -> String {
    let host = match file.host.as_deref().unwrap_or(crate::DEFAULT_HOST) {
        "0.0.0.0" | "::" | "[::]" => crate::DEFAULT_HOST,
        host => host,
    };
    let port = file.grpc_port.unwrap_or(8089);
    let mut text = format!("admin:\n  endpoint: dns:///{host}:{port}\n");
    match &file.tls_cert {
        Some(cert) => {
            let _ = writeln!(
                text,
                "  insecure: false\n  caCertFilePath: {}",
                cert.display()
            );
        }
        None => text.push_str("  insecure: true\n"),
    }
    let _ = writeln!(
        text,
        "  authType: ClientSecret\n  clientId: {client_id}\n  clientSecretLocation: {}",
        secret_file.display()
    );
    text
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Columns padded to their widest cell.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Unix microseconds as UTC, to the second.
fn time(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| micros.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a panic is how a test reports failure"
    )]

    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options_parse_and_unknown_ones_are_refused() {
        let p = Parsed::new(&args(
            "grant group:ml developer --project p1 --domain=development",
        ))
        .unwrap();
        assert_eq!(p.words, ["grant", "group:ml", "developer"]);
        assert_eq!(p.scope(), ("p1".to_string(), "development".to_string()));
        assert!(Parsed::new(&args("grant --force x")).is_err());
        assert!(Parsed::new(&args("grant --project")).is_err());
        assert!(p.only("grant", &["--project", "--domain"]).is_ok());
        assert!(p.only("bindings", &[]).is_err());
    }

    #[test]
    fn tables_align() {
        let t = table(&[row(["A", "BB"]), row(["ccc", "d"])]);
        assert_eq!(t, "A    BB\nccc  d\n");
        assert_eq!(time(0), "1970-01-01T00:00:00Z");
    }
}
