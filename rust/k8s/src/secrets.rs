//! Kubernetes secrets into a pod, as Flyte's secrets webhook does (`K8sSecretInjector`), under
//! the names flytekit's `SecretsManager` reads (see [`alula_propeller::secrets`]):
//!
//! - `ENV_VAR`: `_FSEC_<GROUP>_<KEY>` from a `secretKeyRef` to secret `<group>`, key `<key>`;
//!   `FLYTE_SECRETS_ENV_PREFIX=_FSEC_`.
//! - `FILE` and `ANY`: secret `<group>` mounted read-only at `/etc/flyte/secrets/<group>`, each
//!   requested key as the file `<key>` (the whole secret when no key is named);
//!   `FLYTE_SECRETS_DEFAULT_DIR=/etc/flyte/secrets`, `FLYTE_SECRETS_FILE_PREFIX=""`.
//! - a requested `env_var` alias gets the same `secretKeyRef`.
//!
//! Unlike the webhook, references are not optional: a missing secret or key keeps the
//! container from starting (`CreateContainerConfigError`), which fails the attempt with the
//! kubelet's message instead of a task that fails later not finding it.

use std::collections::BTreeMap;

use alula_idl::flyteidl::core::Secret;
use alula_propeller::secrets::{
    as_file, check, env_var_name, relative_file, DEFAULT_DIR_VAR, ENV_PREFIX, ENV_PREFIX_VAR,
    FILE_PREFIX_VAR, POD_SECRETS_DIR,
};
use alula_propeller::PluginError;
use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, KeyToPath, PodSpec, SecretKeySelector, SecretVolumeSource,
    Volume, VolumeMount,
};

use crate::pod::volume_name;

fn plain(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn from_secret(name: String, s: &Secret) -> EnvVar {
    EnvVar {
        name,
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: s.group.clone(),
                key: s.key.clone(),
                optional: None,
            }),
            ..Default::default()
        }),
    }
}

/// Sets `var` on `c`, replacing an earlier value of the same name.
fn set_env(c: &mut Container, var: EnvVar) {
    let env = c.env.get_or_insert_with(Vec::new);
    env.retain(|e| e.name != var.name);
    env.push(var);
}

/// Adds `secrets` to every container (and init container) of `spec`.
pub fn inject(spec: &mut PodSpec, secrets: &[Secret]) -> Result<(), PluginError> {
    if secrets.is_empty() {
        return Ok(());
    }
    let mut env: Vec<EnvVar> = Vec::new();
    // group (lower case, its folder) → (secret name, keys); `None`: the whole secret.
    let mut files: BTreeMap<String, (String, Option<Vec<String>>)> = BTreeMap::new();
    for s in secrets {
        check(s).map_err(PluginError::Invalid)?;
        if as_file(s) {
            let entry = files
                .entry(s.group.to_lowercase())
                .or_insert_with(|| (s.group.clone(), Some(Vec::new())));
            if s.key.is_empty() {
                entry.1 = None;
            } else if let Some(keys) = &mut entry.1 {
                keys.push(s.key.clone());
            }
            if !env.iter().any(|e| e.name == DEFAULT_DIR_VAR) {
                env.push(plain(DEFAULT_DIR_VAR, POD_SECRETS_DIR));
                env.push(plain(FILE_PREFIX_VAR, ""));
            }
        } else {
            env.push(from_secret(env_var_name(s), s));
            if !env.iter().any(|e| e.name == ENV_PREFIX_VAR) {
                env.push(plain(ENV_PREFIX_VAR, ENV_PREFIX));
            }
        }
        if !s.env_var.is_empty() && !s.key.is_empty() {
            env.push(from_secret(s.env_var.clone(), s));
        }
    }

    let mut mounts = Vec::new();
    for (folder, (name, keys)) in files {
        let volume = volume_name("secret", &name);
        // Each key at `<version>/<key>` (lower case) below the group's folder.
        let items = keys.map(|keys| {
            secrets
                .iter()
                .filter(|s| as_file(s) && s.group.to_lowercase() == folder && keys.contains(&s.key))
                .map(|s| KeyToPath {
                    key: s.key.clone(),
                    path: relative_file(s)
                        .strip_prefix(&folder)
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_else(|_| s.key.to_lowercase()),
                    mode: None,
                })
                .collect()
        });
        let volumes = spec.volumes.get_or_insert_with(Vec::new);
        if volumes.iter().any(|v| v.name == volume) {
            continue;
        }
        volumes.push(Volume {
            name: volume.clone(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(name),
                items,
                ..Default::default()
            }),
            ..Default::default()
        });
        mounts.push(VolumeMount {
            name: volume,
            mount_path: format!("{POD_SECRETS_DIR}/{folder}"),
            read_only: Some(true),
            ..Default::default()
        });
    }

    let init = spec.init_containers.iter_mut().flatten();
    for c in spec.containers.iter_mut().chain(init) {
        for var in &env {
            set_env(c, var.clone());
        }
        let existing = c.volume_mounts.get_or_insert_with(Vec::new);
        for m in &mounts {
            if !existing.iter().any(|e| e.mount_path == m.mount_path) {
                existing.push(m.clone());
            }
        }
        if existing.is_empty() {
            c.volume_mounts = None;
        }
    }
    Ok(())
}
