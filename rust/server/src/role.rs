//! What one `alula-server` process runs: the API, the propeller, or both, so that a cluster can
//! scale them apart (API replicas behind a load balancer, propeller replicas sharing the work by
//! database leases).

use anyhow::{bail, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Admin (gRPC + HTTP) and a propeller in one process: `alula start`, small deployments.
    #[default]
    All,
    /// Admin only: executions wait for propellers running elsewhere.
    Admin,
    /// The propeller only: no API; the HTTP port serves `/healthz`, `/readyz` and `/metrics`.
    /// With a `[control_plane]` it works for admin over gRPC and opens no database; without,
    /// it shares admin's database and runs admin's ingestion in process.
    Propeller,
}

impl Role {
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "all" => Ok(Self::All),
            "admin" => Ok(Self::Admin),
            "propeller" => Ok(Self::Propeller),
            other => bail!("role {other:?} is none of all, admin, propeller"),
        }
    }

    /// The role the settings ask for: `propeller = false` (the older switch) turns `all` into
    /// `admin`, and contradicts `propeller`.
    pub fn resolve(role: Option<Self>, propeller: Option<bool>) -> Result<Self> {
        match (role.unwrap_or_default(), propeller) {
            (Self::Propeller, Some(false)) => {
                bail!("role = \"propeller\" with propeller disabled leaves nothing to run")
            }
            (Self::All, Some(false)) => Ok(Self::Admin),
            (role, _) => Ok(role),
        }
    }

    pub fn serves_api(self) -> bool {
        matches!(self, Self::All | Self::Admin)
    }

    pub fn runs_propeller(self) -> bool {
        matches!(self, Self::All | Self::Propeller)
    }
}

/// The propeller's name in leases when the settings give none. The single process of role
/// `all` keeps one fixed name, so that a restart resumes its executions at once. Replicas of
/// role `propeller` need distinct names: the pod's (`POD_NAME` from the downward API; Kubernetes
/// also sets `HOSTNAME` to it) or the host's, which also tells an operator who holds what.
pub fn default_instance_id(role: Role) -> Result<String> {
    if role != Role::Propeller {
        return Ok("embedded".into());
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(name) = env("POD_NAME").or_else(|| env("HOSTNAME")) {
        return Ok(name.trim().to_string());
    }
    match std::fs::read_to_string("/proc/sys/kernel/hostname") {
        Ok(name) if !name.trim().is_empty() => Ok(name.trim().to_string()),
        _ => bail!(
            "role = \"propeller\" needs a distinct instance_id per replica: set instance_id, \
             ALULA_INSTANCE_ID or POD_NAME"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_old_switch_and_the_role_combine() {
        assert_eq!(Role::resolve(None, None).ok(), Some(Role::All));
        assert_eq!(Role::resolve(None, Some(false)).ok(), Some(Role::Admin));
        assert_eq!(
            Role::resolve(Some(Role::Propeller), Some(true)).ok(),
            Some(Role::Propeller)
        );
        assert!(Role::resolve(Some(Role::Propeller), Some(false)).is_err());
        assert_eq!(Role::parse("admin").ok(), Some(Role::Admin));
        assert!(Role::parse("scheduler").is_err());
        assert!(Role::Admin.serves_api() && !Role::Admin.runs_propeller());
        assert!(!Role::Propeller.serves_api() && Role::Propeller.runs_propeller());
    }

    #[test]
    fn only_propeller_replicas_get_a_host_name() {
        assert_eq!(
            default_instance_id(Role::All).ok().as_deref(),
            Some("embedded")
        );
        let name = default_instance_id(Role::Propeller).expect("a host name");
        assert!(!name.is_empty() && name != "embedded");
    }
}
