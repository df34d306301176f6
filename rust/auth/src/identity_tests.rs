#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::keys::TokenClaims;
use crate::roles::{role_of, Binding, Role, Subject};

fn claims(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

fn principal(value: Value) -> Principal {
    principal_of(&claims(value), &ClaimsPolicy::default()).unwrap()
}

fn admin_of(subject: &str) -> Binding {
    Binding {
        subject: Subject::parse(subject).unwrap(),
        project: "*".into(),
        domain: "*".into(),
        role: Role::Admin,
    }
}

fn is_admin(subject: &str, principal: &Principal) -> bool {
    role_of(&[admin_of(subject)], principal, Some("p"), Some("d")) == Some(Role::Admin)
}

#[test]
fn people_and_their_groups() {
    let user = principal(json!({"sub": "u-1", "azp": "flytectl", "exp": 5,
                                "groups": ["ml", 3, "ops"], "iss": "https://idp/"}));
    assert_eq!(user.kind, PrincipalKind::User);
    assert_eq!(user.subject, "u-1");
    assert_eq!(user.client_id, "flytectl");
    assert_eq!(user.groups, ["ml", "ops"]);
    assert_eq!(user.issuer, "https://idp");
    assert_eq!(user.expires_at, 5);
    assert!(matches!(
        principal_of(&claims(json!({"sub": ""})), &ClaimsPolicy::default()),
        Err(TokenError::Malformed(_))
    ));
}

#[test]
fn an_unverified_email_names_no_one() {
    // The attack: a user of the provider sets their own email to the boss's.
    let claimed = json!({"sub": "mallory-1", "email": "boss@corp", "email_verified": false});
    let mallory = principal(claimed.clone());
    assert_eq!(mallory.email, "");
    assert!(!is_admin("user:boss@corp", &mallory));
    let mut without_flag = claimed;
    without_flag
        .as_object_mut()
        .unwrap()
        .remove("email_verified");
    assert!(!is_admin("user:boss@corp", &principal(without_flag)));

    for verified in [json!(true), json!("true")] {
        let boss =
            principal(json!({"sub": "b-1", "email": "Boss@Corp", "email_verified": verified}));
        assert_eq!(boss.email, "Boss@Corp");
        assert!(is_admin("user:boss@corp", &boss));
    }
}

#[test]
fn usernames_name_people_only_when_the_deployment_trusts_them() {
    let token = json!({"sub": "mallory-1", "preferred_username": "boss"});
    let mallory = principal(token.clone());
    assert_eq!(mallory.preferred_username, "");
    assert!(!is_admin("user:boss", &mallory));

    let trusting = ClaimsPolicy {
        trust_username_claim: true,
        ..ClaimsPolicy::default()
    };
    let boss = principal_of(&claims(token), &trusting).unwrap();
    assert_eq!(boss.preferred_username, "boss");
    assert!(is_admin("user:boss", &boss));
}

#[test]
fn the_subject_always_names_a_person() {
    let alice = principal(json!({"sub": "248289761001", "preferred_username": "x"}));
    assert!(is_admin("user:248289761001", &alice));
    assert!(!is_admin("client:248289761001", &alice));
}

#[test]
fn keycloak_service_accounts_are_clients() {
    for id_claim in ["client_id", "clientId"] {
        let mut token = json!({
            "sub": "5f0c2c5e-6d2b-4a57-9d3e-1d0f7c9f6c2a",
            "azp": "ci",
            "preferred_username": "service-account-ci",
            "email_verified": false,
            "realm_access": {"roles": ["offline_access"]},
            "scope": "profile email",
        });
        token[id_claim] = "ci".into();
        let ci = principal(token);
        assert_eq!(ci.kind, PrincipalKind::Client, "{id_claim}");
        assert_eq!(ci.subject, "ci");
        assert_eq!(ci.client_id, "ci");
        assert!(is_admin("client:ci", &ci));
        assert!(!is_admin("user:service-account-ci", &ci));
    }
    // A person whose username merely looks like a service account's is still a person.
    let person = principal(json!({"sub": "u-2", "azp": "flytectl",
                                  "preferred_username": "service-account-ci"}));
    assert_eq!(person.kind, PrincipalKind::User);
    assert!(!is_admin("client:ci", &person));
}

#[test]
fn entra_app_tokens_are_clients() {
    // v2 with the `idtyp` optional claim.
    let v2 = principal(json!({
        "aud": "api://alula", "iss": "https://login.microsoftonline.com/t/v2.0",
        "sub": "9a1e-sp", "oid": "9a1e-sp", "tid": "t", "idtyp": "app",
        "azp": "11111111-2222-3333-4444-555555555555", "azpacr": "1",
        "roles": ["Alula.Run"], "ver": "2.0",
    }));
    assert_eq!(v2.kind, PrincipalKind::Client);
    assert_eq!(v2.subject, "11111111-2222-3333-4444-555555555555");
    // v1 without `idtyp`: no delegated scope and the subject is the service principal.
    let v1 = principal(json!({
        "sub": "9a1e-sp", "oid": "9a1e-sp", "tid": "t", "appid": "app-1",
        "roles": ["Alula.Run"], "ver": "1.0", "name": "boss",
    }));
    assert_eq!(v1.kind, PrincipalKind::Client);
    assert_eq!(v1.subject, "app-1");
    assert!(is_admin("client:app-1", &v1));
    assert!(!is_admin("user:boss", &v1));
    // A person signed in through the same app: delegated scopes, a user subject.
    let person = principal(json!({
        "sub": "pairwise-7", "oid": "user-oid", "tid": "t", "idtyp": "user",
        "azp": "app-1", "scp": "access_as_user", "preferred_username": "alice@corp",
    }));
    assert_eq!(person.kind, PrincipalKind::User);
}

#[test]
fn okta_and_auth0_client_credentials_are_clients() {
    let okta = principal(json!({"sub": "0oa1ci", "cid": "0oa1ci", "scp": ["alula"]}));
    assert_eq!(okta.kind, PrincipalKind::Client);
    assert_eq!(okta.subject, "0oa1ci");
    let auth0 = principal(json!({"sub": "ci@clients", "azp": "ci",
                                 "gty": "client-credentials", "name": "boss"}));
    assert_eq!(auth0.kind, PrincipalKind::Client);
    assert_eq!(auth0.subject, "ci");
    assert_eq!(auth0.client_id, "ci");
    assert!(is_admin("client:ci", &auth0));
    assert!(!is_admin("user:ci@clients", &auth0));
}

#[test]
fn built_in_tokens_are_clients() {
    let built_in = TokenClaims::for_client(
        "https://alula",
        "alula",
        "ci",
        "all",
        Duration::from_secs(60),
    );
    let ci = principal(serde_json::to_value(built_in).unwrap());
    assert_eq!(ci.kind, PrincipalKind::Client);
    assert_eq!((ci.subject.as_str(), ci.client_id.as_str()), ("ci", "ci"));
}

#[test]
fn groups_come_from_the_configured_claim() {
    let c = claims(json!({"sub": "u", "roles": "admins",
                          "realm_access": {"roles": ["a", "b"]}}));
    assert_eq!(groups_of(&c, "roles"), ["admins"]);
    assert_eq!(groups_of(&c, "realm_access.roles"), ["a", "b"]);
    assert!(groups_of(&c, "groups").is_empty());
    assert!(groups_of(&c, "realm_access.nothing").is_empty());
}
