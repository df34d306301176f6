//! Who a verified token says its bearer is: a person or a machine client, and which of its
//! claims may name them in role bindings.
//!
//! Only claims the identity provider vouches for become part of a [`Principal`]'s identity:
//!
//! - `sub` always (stable and unique at the issuer);
//! - `email` only with `email_verified: true` (at many providers people set their own email);
//! - `preferred_username` only when the deployment says the provider's usernames are managed by
//!   its administrators ([`ClaimsPolicy::trust_username_claim`]): some providers let people
//!   rename themselves, so `user:boss` would otherwise be anyone's for the asking.
//!
//! A claim that is not vouched for is left empty in the principal rather than carried with a
//! flag, so nothing downstream (role bindings, user info, the console) can use it by mistake.
//!
//! Machine clients (client-credentials tokens) are recognised in the shapes the common
//! providers issue them, and named by their client id (`client:<id>`), never as users:
//!
//! - this server's built-in tokens, Okta and Ory Hydra: `sub` is the client id (`client_id`,
//!   `cid` or `azp`);
//! - Auth0: `gty: client-credentials` (`azp` the client);
//! - Keycloak: the client's service-account user, `preferred_username:
//!   service-account-<client>` together with the `client_id` (Keycloak 20+) or `clientId`
//!   claim naming that client: people's tokens never carry those claims;
//! - Microsoft Entra ID: `idtyp: app` (the optional claim), or an app-only token's shape when
//!   it is not configured: a tenant (`tid`), no delegated scopes (`scp`), and `sub` equal to
//!   `oid` (the service principal); the client is `azp` (v2) or `appid` (v1).

use serde_json::{Map, Value};

use crate::principal::{Principal, PrincipalKind};
use crate::verify::{time_claim, TokenError};

/// How a deployment reads identities from its provider's tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimsPolicy {
    /// The claim holding the user's groups (`groups`); a dotted name (`realm_access.roles`)
    /// reaches into nested objects when no claim has that exact name.
    pub groups_claim: String,
    /// Whether `preferred_username` names people (`[auth] trust_username_claim`): only when
    /// the provider does not let people choose or change it.
    pub trust_username_claim: bool,
}

impl Default for ClaimsPolicy {
    fn default() -> Self {
        Self {
            groups_claim: "groups".into(),
            trust_username_claim: false,
        }
    }
}

pub(crate) fn string_claim(claims: &Map<String, Value>, name: &str) -> String {
    claims
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// `true` or `"true"` (Cognito and some older providers write booleans as strings).
fn flag_claim(claims: &Map<String, Value>, name: &str) -> bool {
    match claims.get(name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// The groups claim: an array of strings (others ignored) or one string.
pub(crate) fn groups_of(claims: &Map<String, Value>, claim: &str) -> Vec<String> {
    let value = claims.get(claim).or_else(|| {
        let mut path = claim.split('.');
        let first = claims.get(path.next()?)?;
        path.try_fold(first, |value, step| value.get(step))
    });
    match value {
        Some(Value::String(group)) => vec![group.clone()],
        Some(Value::Array(groups)) => groups
            .iter()
            .filter_map(|g| g.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// The first non-empty claim of `names`.
fn first_claim(claims: &Map<String, Value>, names: &[&str]) -> String {
    names
        .iter()
        .map(|name| string_claim(claims, name))
        .find(|v| !v.is_empty())
        .unwrap_or_default()
}

/// The client id when the token was issued to a machine for itself; `None` for a person's.
fn machine_client(claims: &Map<String, Value>, subject: &str) -> Option<String> {
    let client_id = first_claim(claims, &["client_id", "cid", "azp", "appid", "clientId"]);
    // Auth0.
    if string_claim(claims, "gty") == "client-credentials" {
        return Some(first_claim(claims, &["azp", "client_id"])).filter(|id| !id.is_empty());
    }
    // Microsoft Entra ID: `idtyp` when configured, else the app-only token's shape.
    let entra_client = || first_claim(claims, &["azp", "appid"]);
    if string_claim(claims, "idtyp") == "app" {
        return Some(entra_client()).filter(|id| !id.is_empty());
    }
    let oid = string_claim(claims, "oid");
    if claims.contains_key("tid")
        && !claims.contains_key("scp")
        && !oid.is_empty()
        && oid == subject
    {
        let id = entra_client();
        if !id.is_empty() {
            return Some(id);
        }
    }
    // Keycloak's service-account user: its username is derived from the client's id, and the
    // client-id claim only service accounts carry must agree.
    let keycloak_client = first_claim(claims, &["client_id", "clientId"]);
    if !keycloak_client.is_empty()
        && string_claim(claims, "preferred_username")
            == format!("service-account-{keycloak_client}")
    {
        return Some(keycloak_client);
    }
    // The built-in server, Okta, Hydra: the subject is the client itself.
    (!client_id.is_empty() && subject == client_id).then_some(client_id)
}

/// The principal a verified token's claims describe, under `policy`.
pub(crate) fn principal_of(
    claims: &Map<String, Value>,
    policy: &ClaimsPolicy,
) -> Result<Principal, TokenError> {
    let subject = string_claim(claims, "sub");
    if subject.is_empty() {
        return Err(TokenError::Malformed("it has no sub claim".into()));
    }
    let issuer = string_claim(claims, "iss")
        .trim_end_matches('/')
        .to_string();
    let expires_at = time_claim(claims, "exp")?.unwrap_or_default();
    if let Some(client_id) = machine_client(claims, &subject) {
        // A machine is its client id: that is what `client:` bindings and the audit log name.
        // Its token's person-like claims (a Keycloak service account's username, say) are
        // dropped, so no `user:` binding can ever be matched by a client.
        return Ok(Principal {
            subject: client_id.clone(),
            kind: PrincipalKind::Client,
            name: String::new(),
            email: String::new(),
            preferred_username: String::new(),
            groups: groups_of(claims, &policy.groups_claim),
            client_id,
            issuer,
            expires_at,
        });
    }
    let email = if flag_claim(claims, "email_verified") {
        string_claim(claims, "email")
    } else {
        String::new()
    };
    let preferred_username = if policy.trust_username_claim {
        string_claim(claims, "preferred_username")
    } else {
        String::new()
    };
    Ok(Principal {
        kind: PrincipalKind::User,
        name: string_claim(claims, "name"),
        email,
        preferred_username,
        groups: groups_of(claims, &policy.groups_claim),
        client_id: first_claim(claims, &["client_id", "azp", "cid"]),
        issuer,
        expires_at,
        subject,
    })
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;
