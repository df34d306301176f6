//! The caller of a request, as the authentication layer found it. It travels in the request's
//! extensions (gRPC, REST and console alike), so authorization reads it in one place.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A person (logged in through an identity provider) or a machine client (client credentials).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    User,
    Client,
}

/// An authenticated identity, read from a verified token's claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Users: the token's `sub`, stable and unique at its issuer. Clients: their client id
    /// (see [`crate::identity`]).
    pub subject: String,
    pub kind: PrincipalKind,
    /// The `name` claim: for showing only, never an identity.
    pub name: String,
    /// The `email` claim, only when the provider says it verified it (`email_verified`).
    pub email: String,
    /// The `preferred_username` claim, only when the deployment trusts it
    /// (`[auth] trust_username_claim`): at some providers people choose their own.
    pub preferred_username: String,
    /// The groups claim (name configurable, `groups` by default): role bindings may name them.
    pub groups: Vec<String>,
    /// The OAuth2 client the token was issued to (`client_id`, `azp` or `cid`), if said.
    pub client_id: String,
    pub issuer: String,
    /// Unix seconds after which the token is refused.
    pub expires_at: i64,
}

impl Principal {
    /// What executions record as their principal and the audit log names: the subject (the
    /// `sub` of a person, the id of a client), as flyteadmin records it. Never an email or a
    /// username: those can change hands, and a renamed person's history must stay theirs.
    pub fn display_name(&self) -> &str {
        &self.subject
    }

    /// A readable name for pages (the console's header): the `name` claim, else the trusted
    /// username, the verified email, the subject. Never for records or decisions.
    pub fn label(&self) -> &str {
        [
            &self.name,
            &self.preferred_username,
            &self.email,
            &self.subject,
        ]
        .into_iter()
        .find(|s| !s.trim().is_empty())
        .map_or("", |s| s.as_str())
    }
}

/// Who is calling. The authentication layer inserts one into every request that reaches the
/// API from the network; in-process callers (the propeller) call the services unguarded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// Authentication is off (`alula start` on loopback): everything is allowed, as before.
    Unchecked,
    /// Authentication is on and no credentials came with the request.
    Anonymous,
    /// Credentials came and were refused; the reason is what UNAUTHENTICATED says (never the
    /// token itself).
    Refused(String),
    Authenticated(Arc<Principal>),
}

impl Caller {
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Self::Authenticated(p) => Some(p),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_name_the_subject_and_pages_the_readable_name() {
        let mut alice = Principal {
            subject: "248289761001".into(),
            kind: PrincipalKind::User,
            name: "Alice".into(),
            email: "alice@example.com".into(),
            preferred_username: "alice".into(),
            groups: Vec::new(),
            client_id: "flytectl".into(),
            issuer: "https://idp".into(),
            expires_at: 0,
        };
        // A rename at the provider changes none of what executions and the audit log record.
        assert_eq!(alice.display_name(), "248289761001");
        assert_eq!(alice.label(), "Alice");
        alice.name.clear();
        assert_eq!(alice.label(), "alice");
        alice.preferred_username.clear();
        assert_eq!(alice.label(), "alice@example.com");
        alice.email.clear();
        assert_eq!(alice.label(), "248289761001");
    }
}
