//! Who may do what, independent of any transport:
//!
//! - [`principal`]: the caller as authentication found it ([`Caller`], [`Principal`]);
//! - [`roles`]: per-project roles and the permissions they grant, and role bindings;
//! - [`keys`]: the built-in authorization server's ES256 signing keys and the tokens it issues;
//! - [`identity`]: which of a token's claims say who its bearer is (a person or a machine
//!   client), and which may name them in role bindings;
//! - [`verify`]: checking a bearer JWT against an issuer's key set (built-in or an OIDC
//!   provider's JWKS), audience, expiry and an algorithm allow-list;
//! - [`oidc`]: an identity provider's discovery document;
//! - [`secret`]: client secrets (generated, stored hashed, compared in constant time) and a
//!   wrapper that keeps secrets out of logs.

pub mod identity;
pub mod keys;
pub mod oidc;
pub mod principal;
mod public_key;
pub mod roles;
pub mod secret;
pub mod verify;

pub use principal::{Caller, Principal, PrincipalKind};
pub use roles::{Binding, Permission, Role, Subject};
