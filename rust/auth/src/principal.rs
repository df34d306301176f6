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
    /// The token's `sub`: stable and unique at its issuer. For the built-in server's clients,
    /// the client id.
    pub subject: String,
    pub kind: PrincipalKind,
    /// `name`, `email` and `preferred_username` claims when the token carries them.
    pub name: String,
    pub email: String,
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
    /// What executions record as their principal and the console shows: the most readable
    /// stable name the token gives.
    pub fn display_name(&self) -> &str {
        [&self.preferred_username, &self.email, &self.subject]
            .into_iter()
            .find(|s| !s.is_empty())
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
