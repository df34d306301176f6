//! Roles per project (and optionally per domain), what each permits, and the bindings that give
//! them to users, groups and machine clients.

use serde::{Deserialize, Serialize};

use crate::principal::{Principal, PrincipalKind};

/// What an RPC needs of its caller on the project (and domain) it touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Read anything of the project: entities, executions, their data and logs.
    View,
    /// Start, stop and steer executions: launch, relaunch, recover, terminate, approve gates,
    /// set signals.
    Launch,
    /// Register tasks, workflows and launch plans, upload code; activate launch plans.
    Register,
    /// Project settings, matchable attributes, roles; privileged registrations (a service
    /// account of the caller's choosing); the data plane's events.
    Administer,
}

/// A set of permissions, each role holding all of the one below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Runner,
    Developer,
    Admin,
}

impl Role {
    pub const ALL: [Self; 4] = [Self::Viewer, Self::Runner, Self::Developer, Self::Admin];

    pub fn grants(self, permission: Permission) -> bool {
        let needed = match permission {
            Permission::View => Self::Viewer,
            Permission::Launch => Self::Runner,
            Permission::Register => Self::Developer,
            Permission::Administer => Self::Admin,
        };
        self >= needed
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Runner => "runner",
            Self::Developer => "developer",
            Self::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == value)
    }
}

/// Whom a binding names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Subject {
    /// A person: matched against the token's `sub`, its `email` when verified and its
    /// `preferred_username` when the deployment trusts it (the principal carries those two only
    /// then: [`crate::identity`]). Never a client, whatever its claims say.
    User(String),
    /// A group from the identity provider's groups claim.
    Group(String),
    /// A machine client (the built-in server's client id, or an IdP client's).
    Client(String),
}

impl Subject {
    pub fn matches(&self, principal: &Principal) -> bool {
        match self {
            Self::User(name) => {
                principal.kind == PrincipalKind::User
                    && !name.is_empty()
                    && (principal.subject == *name
                        || principal.email.eq_ignore_ascii_case(name)
                        || principal.preferred_username == *name)
            }
            Self::Group(group) => principal.groups.iter().any(|g| g == group),
            Self::Client(id) => {
                principal.kind == PrincipalKind::Client
                    && !id.is_empty()
                    && (principal.subject == *id || principal.client_id == *id)
            }
        }
    }

    /// `user:alice@example.com`, `group:ml`, `client:ci`: how the CLI and the audit log write it.
    pub fn parse(value: &str) -> Option<Self> {
        let (kind, name) = value.split_once(':')?;
        let name = name.trim();
        if name.is_empty() {
            return None;
        }
        match kind {
            "user" => Some(Self::User(name.into())),
            "group" => Some(Self::Group(name.into())),
            "client" => Some(Self::Client(name.into())),
            _ => None,
        }
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User(n) => write!(f, "user:{n}"),
            Self::Group(n) => write!(f, "group:{n}"),
            Self::Client(n) => write!(f, "client:{n}"),
        }
    }
}

/// `ALL` in a binding's project or domain: every one.
pub const ANY: &str = "*";

/// One grant of a role to a subject on a project (`*`: all) and domain (`*`: all).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Binding {
    pub subject: Subject,
    pub project: String,
    pub domain: String,
    pub role: Role,
}

impl Binding {
    fn covers(&self, project: Option<&str>, domain: Option<&str>) -> bool {
        let fits = |bound: &str, asked: Option<&str>| match asked {
            // A request on no particular project (listing projects) or domain is covered only
            // by a binding over all of them.
            None => bound == ANY,
            Some(asked) => bound == ANY || bound == asked,
        };
        fits(&self.project, project) && fits(&self.domain, domain)
    }
}

/// The highest role `bindings` give `principal` on `project`/`domain` (`None` meaning a request
/// about no single one: only bindings over all count).
pub fn role_of<'a>(
    bindings: impl IntoIterator<Item = &'a Binding>,
    principal: &Principal,
    project: Option<&str>,
    domain: Option<&str>,
) -> Option<Role> {
    bindings
        .into_iter()
        .filter(|b| b.covers(project, domain) && b.subject.matches(principal))
        .map(|b| b.role)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(groups: &[&str]) -> Principal {
        Principal {
            subject: "u-1".into(),
            kind: PrincipalKind::User,
            name: "Alice".into(),
            email: "alice@example.com".into(),
            preferred_username: "alice".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            client_id: "flytectl".into(),
            issuer: "https://idp.example".into(),
            expires_at: 0,
        }
    }

    fn bind(subject: &str, project: &str, domain: &str, role: Role) -> Binding {
        Binding {
            subject: Subject::parse(subject).expect("subject"),
            project: project.into(),
            domain: domain.into(),
            role,
        }
    }

    #[test]
    fn roles_are_ordered_sets() {
        assert!(Role::Viewer.grants(Permission::View));
        assert!(!Role::Viewer.grants(Permission::Launch));
        assert!(Role::Runner.grants(Permission::Launch));
        assert!(!Role::Runner.grants(Permission::Register));
        assert!(Role::Developer.grants(Permission::Register));
        assert!(!Role::Developer.grants(Permission::Administer));
        assert!(Role::Admin.grants(Permission::Administer));
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
    }

    #[test]
    fn the_highest_matching_binding_wins() {
        let bindings = [
            bind("group:ml", "flytesnacks", "*", Role::Viewer),
            bind(
                "user:alice@example.com",
                "flytesnacks",
                "development",
                Role::Developer,
            ),
            bind("user:bob", "*", "*", Role::Admin),
            bind("client:alice", "*", "*", Role::Admin),
        ];
        let alice = user(&["ml"]);
        let role = |p, d| role_of(&bindings, &alice, p, d);
        assert_eq!(
            role(Some("flytesnacks"), Some("development")),
            Some(Role::Developer)
        );
        assert_eq!(
            role(Some("flytesnacks"), Some("production")),
            Some(Role::Viewer)
        );
        assert_eq!(role(Some("flytesnacks"), None), Some(Role::Viewer));
        assert_eq!(role(Some("other"), Some("development")), None);
        // No binding over all projects: nothing on project-less requests.
        assert_eq!(role(None, None), None);
        // A user is never a client of the same name, nor the reverse.
        let mut client = user(&[]);
        client.kind = PrincipalKind::Client;
        client.subject = "alice".into();
        assert_eq!(
            role_of(&bindings, &client, Some("x"), Some("y")),
            Some(Role::Admin)
        );
        client.subject = "bob".into();
        client.client_id = "bob".into();
        assert_eq!(role_of(&bindings, &client, Some("x"), Some("y")), None);
    }

    #[test]
    fn subjects_parse() {
        assert_eq!(
            Subject::parse("group:ml"),
            Some(Subject::Group("ml".into()))
        );
        assert_eq!(
            Subject::parse("client:ci")
                .map(|s| s.to_string())
                .as_deref(),
            Some("client:ci")
        );
        for bad in ["", "ml", "team:ml", "user:", "user: "] {
            assert_eq!(Subject::parse(bad), None, "{bad}");
        }
    }
}
