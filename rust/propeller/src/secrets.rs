//! Secrets a task asks for (`secret_requests=`), named the way flytekit's `SecretsManager` looks
//! them up: an environment variable `_FSEC_<GROUP>[_<VERSION>]_<KEY>` (upper case) or a file
//! `<FLYTE_SECRETS_DEFAULT_DIR>/<group>[/<version>]/<key>` (lower case). The pod plugin mounts
//! Kubernetes secrets under these names; the local plugins ([`local_env`]) read a secrets folder
//! or the server's own environment and hand the values over as `_FSEC_...` variables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alula_idl::flyteidl::core::{secret::MountType, Secret, TaskTemplate};

use crate::plugin::{Attempt, PluginError};

/// flytekit's default `FLYTE_SECRETS_ENV_PREFIX`.
pub const ENV_PREFIX: &str = "_FSEC_";
/// Where Flyte's secrets webhook mounts secret files in a pod (`FLYTE_SECRETS_DEFAULT_DIR`).
pub const POD_SECRETS_DIR: &str = "/etc/flyte/secrets";
pub const DEFAULT_DIR_VAR: &str = "FLYTE_SECRETS_DEFAULT_DIR";
pub const ENV_PREFIX_VAR: &str = "FLYTE_SECRETS_ENV_PREFIX";
pub const FILE_PREFIX_VAR: &str = "FLYTE_SECRETS_FILE_PREFIX";
/// The server's setting for the local plugins' secrets folder (`<dir>/<group>/<key>`); without
/// it, flytekit's own `FLYTE_SECRETS_DEFAULT_DIR` of the server's environment is used.
pub const LOCAL_DIR_VAR: &str = "ALULA_SECRETS_DIR";

/// The secrets an attempt needs: the task's own, then the execution's (flyteadmin adds an
/// execution's security context to every task), each `(group, version, key)` once.
pub fn requested(task: &TaskTemplate, execution: Option<&[Secret]>) -> Vec<Secret> {
    let own = task
        .security_context
        .as_ref()
        .map(|s| s.secrets.as_slice())
        .unwrap_or_default();
    let mut out: Vec<Secret> = Vec::new();
    for s in own.iter().chain(execution.unwrap_or_default()) {
        if !out
            .iter()
            .any(|o| (&o.group, &o.group_version, &o.key) == (&s.group, &s.group_version, &s.key))
        {
            out.push(s.clone());
        }
    }
    out
}

/// The secrets of `attempt` (its task's and its execution's).
pub fn of_attempt(attempt: &Attempt) -> Vec<Secret> {
    let execution = attempt
        .settings
        .security_context
        .as_ref()
        .map(|s| s.secrets.as_slice());
    requested(&attempt.task, execution)
}

fn parts(s: &Secret) -> impl Iterator<Item = &str> {
    [s.group.as_str(), s.group_version.as_str(), s.key.as_str()]
        .into_iter()
        .filter(|p| !p.is_empty())
}

/// The variable flytekit reads the secret from (with the default prefix).
pub fn env_var_name(s: &Secret) -> String {
    let joined: Vec<String> = parts(s).map(str::to_uppercase).collect();
    format!("{ENV_PREFIX}{}", joined.join("_"))
}

/// The file flytekit reads the secret from, relative to the secrets folder.
pub fn relative_file(s: &Secret) -> PathBuf {
    parts(s).map(str::to_lowercase).collect()
}

/// Whether the secret is mounted as a file (Flyte mounts `ANY` as a file).
pub fn as_file(s: &Secret) -> bool {
    MountType::try_from(s.mount_requirement).unwrap_or(MountType::Any) != MountType::EnvVar
}

/// "group/key" (with the version when there is one), for messages.
pub fn describe(s: &Secret) -> String {
    parts(s).collect::<Vec<_>>().join("/")
}

/// A secret's name parts must be usable as a path component and a variable name part.
pub fn check(s: &Secret) -> Result<(), String> {
    if s.group.is_empty() {
        return Err(format!("secret {:?} has no group", describe(s)));
    }
    if s.key.is_empty() && !as_file(s) {
        return Err(format!(
            "secret group {:?} is requested as an environment variable but names no key",
            s.group
        ));
    }
    let bad = |p: &str| p.is_empty() || p == "." || p == ".." || p.contains(['/', '\\', '\0']);
    if parts(s).any(bad) {
        return Err(format!(
            "secret {:?}: group, version and key must be plain names",
            describe(s)
        ));
    }
    Ok(())
}

/// Reads each secret for a local task: the server's `_FSEC_...` variable, else the file under
/// `dir`. The values are returned as `_FSEC_...` variables (plus a requested `env_var` alias),
/// which is where flytekit and Alula look first. A secret found nowhere is an error naming it.
pub fn lookup(
    secrets: &[Secret],
    dir: Option<&Path>,
    server_env: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut env = BTreeMap::new();
    for s in secrets {
        check(s)?;
        if s.key.is_empty() {
            return Err(format!(
                "secret group {:?} names no key; a local task can only receive single keys",
                s.group
            ));
        }
        let var = env_var_name(s);
        let file = dir.map(|d| d.join(relative_file(s)));
        let value = match server_env(&var) {
            Some(v) => v,
            None => match &file {
                Some(f) => match std::fs::read_to_string(f) {
                    Ok(v) => v,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(missing(s, &var, file.as_deref()))
                    }
                    Err(e) => {
                        return Err(format!(
                            "secret {}: reading {}: {e}",
                            describe(s),
                            f.display()
                        ))
                    }
                },
                None => return Err(missing(s, &var, None)),
            },
        };
        if !s.env_var.is_empty() {
            env.insert(s.env_var.clone(), value.clone());
        }
        env.insert(var, value);
    }
    Ok(env)
}

fn missing(s: &Secret, var: &str, file: Option<&Path>) -> String {
    let where_ = match file {
        Some(f) => format!(
            "neither the server's environment variable {var} nor the file {} exists",
            f.display()
        ),
        None => format!(
            "the server's environment has no {var} and no secrets folder is set ({LOCAL_DIR_VAR})"
        ),
    };
    format!(
        "secret group {:?} key {:?} was requested but not found: {where_}",
        s.group, s.key
    )
}

/// The local plugins' secrets for `attempt`, from the server's environment and secrets folder.
pub fn local_env(attempt: &Attempt) -> Result<BTreeMap<String, String>, PluginError> {
    let secrets = of_attempt(attempt);
    if secrets.is_empty() {
        return Ok(BTreeMap::new());
    }
    let dir = std::env::var_os(LOCAL_DIR_VAR)
        .or_else(|| std::env::var_os(DEFAULT_DIR_VAR))
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    lookup(&secrets, dir.as_deref(), |k| std::env::var(k).ok()).map_err(PluginError::Invalid)
}

#[cfg(test)]
mod tests {
    use alula_idl::flyteidl::core::SecurityContext;

    use super::*;

    fn secret(group: &str, version: &str, key: &str, mount: MountType) -> Secret {
        Secret {
            group: group.into(),
            group_version: version.into(),
            key: key.into(),
            mount_requirement: mount as i32,
            env_var: String::new(),
        }
    }

    #[test]
    fn names_follow_flytekit() {
        let s = secret("My-Group", "", "Api_Key", MountType::Any);
        assert_eq!(env_var_name(&s), "_FSEC_MY-GROUP_API_KEY");
        assert_eq!(relative_file(&s), PathBuf::from("my-group/api_key"));
        assert!(as_file(&s));
        let v = secret("g", "v1", "k", MountType::EnvVar);
        assert_eq!(env_var_name(&v), "_FSEC_G_V1_K");
        assert_eq!(relative_file(&v), PathBuf::from("g/v1/k"));
        assert!(!as_file(&v));
        assert!(check(&secret("", "", "k", MountType::Any)).is_err());
        assert!(check(&secret("g", "", "", MountType::EnvVar)).is_err());
        assert!(check(&secret("g", "", "../x", MountType::Any)).is_err());
        assert!(check(&secret("g", "", "", MountType::File)).is_ok());
    }

    #[test]
    fn task_and_execution_secrets_are_merged_once() {
        let task = TaskTemplate {
            security_context: Some(SecurityContext {
                secrets: vec![secret("a", "", "k", MountType::Any)],
                ..Default::default()
            }),
            ..Default::default()
        };
        let exec = [
            secret("a", "", "k", MountType::EnvVar),
            secret("b", "", "k", MountType::Any),
        ];
        let all = requested(&task, Some(&exec));
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].mount_requirement, MountType::Any as i32);
        assert_eq!(all[1].group, "b");
    }

    #[test]
    fn local_lookup_reads_env_then_folder_and_names_what_is_missing() {
        let dir = std::env::temp_dir().join(format!("alula-secrets-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("files")).unwrap();
        std::fs::write(dir.join("files/token"), "from-file").unwrap();
        let mut aliased = secret("files", "", "Token", MountType::File);
        aliased.env_var = "TOKEN".into();
        let wanted = [secret("envs", "", "pw", MountType::EnvVar), aliased];
        let env = lookup(&wanted, Some(&dir), |k| {
            (k == "_FSEC_ENVS_PW").then(|| "from-env".to_string())
        })
        .unwrap();
        assert_eq!(env["_FSEC_ENVS_PW"], "from-env");
        assert_eq!(env["_FSEC_FILES_TOKEN"], "from-file");
        assert_eq!(env["TOKEN"], "from-file");

        let err = lookup(
            &[secret("nope", "", "missing", MountType::Any)],
            Some(&dir),
            |_| None,
        )
        .unwrap_err();
        assert!(
            err.contains("\"nope\"") && err.contains("\"missing\"") && err.contains("nope/missing"),
            "{err}"
        );
        let err = lookup(&[secret("g", "", "k", MountType::Any)], None, |_| None).unwrap_err();
        assert!(
            err.contains("_FSEC_G_K") && err.contains(LOCAL_DIR_VAR),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The process plugin refuses an attempt whose secret exists nowhere, naming it, before it
    /// leaves any trace (no working folder, so no "started" marker).
    #[tokio::test]
    async fn the_process_plugin_fails_a_missing_secret() {
        use std::sync::Arc;

        use alula_idl::flyteidl::core::{task_template::Target, Container};

        use crate::plugin::{Plugin, Waker};
        use crate::process::{ProcessConfig, ProcessPlugin};

        let root = std::env::temp_dir().join(format!("alula-secret-plugin-{}", std::process::id()));
        let task = TaskTemplate {
            target: Some(Target::Container(Container {
                command: vec!["true".into()],
                ..Default::default()
            })),
            security_context: Some(SecurityContext {
                secrets: vec![secret(
                    "alula-test-no-such-group",
                    "",
                    "key",
                    MountType::Any,
                )],
                ..Default::default()
            }),
            ..Default::default()
        };
        let attempt = Attempt {
            execution: Default::default(),
            node_id: "n0".into(),
            retry_attempt: 0,
            array_index: None,
            task: Arc::new(task),
            overrides: None,
            inputs: Default::default(),
            inputs_path: root.join("inputs.pb"),
            output_prefix: root.join("out"),
            raw_output_prefix: root.join("raw"),
            checkpoint_prefix: root.join("ck"),
            prev_checkpoint_prefix: None,
            env: BTreeMap::new(),
            settings: Default::default(),
        };
        let plugin = ProcessPlugin::new(ProcessConfig {
            work_root: root.join("work"),
            ..Default::default()
        });
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        match plugin.start(&attempt, Waker::new(tx, 1)).await {
            Err(PluginError::Invalid(e)) => assert!(
                e.contains("\"alula-test-no-such-group\"") && e.contains("\"key\""),
                "{e}"
            ),
            other => panic!("expected a refusal naming the secret, got {other:?}"),
        }
        assert!(!root.join("work").exists());
    }
}
