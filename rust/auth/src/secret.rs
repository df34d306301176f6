//! Client secrets and anything else that must never reach a log line.
//!
//! Client secrets are stored as `sha256$<salt>$<digest>` (both base64url without padding), the
//! digest being SHA-256 over salt then secret. A fast hash is adequate here, unlike for
//! passwords: a secret is 256 random bits made by [`new_client_secret`], so no dictionary or
//! brute force can find one from its hash, and the salt keeps equal secrets (should a client
//! ever be given a secret chosen elsewhere) from hashing alike.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// A secret value whose `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The value itself: only for sending it where it belongs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The scheme tag of [`hash_secret`]'s output (room for another scheme later).
const SCHEME: &str = "sha256";
const SALT_BYTES: usize = 16;

/// `len` random bytes, base64url without padding (`rand`'s thread generator is a CSPRNG
/// seeded from the operating system).
pub fn random_b64(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::fill(bytes.as_mut_slice());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new client secret: 32 random bytes, base64url without padding.
pub fn new_client_secret() -> Secret {
    Secret(random_b64(32))
}

fn digest(salt: &[u8], secret: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(secret.as_bytes());
    hasher.finalize().into()
}

/// What the database keeps of a secret (never the secret).
pub fn hash_secret(secret: &str) -> String {
    let salt: [u8; SALT_BYTES] = rand::random();
    format!(
        "{SCHEME}${}${}",
        URL_SAFE_NO_PAD.encode(salt),
        URL_SAFE_NO_PAD.encode(digest(&salt, secret))
    )
}

/// Whether `secret` is the one `hash` was made from, in time independent of where they differ.
/// A `hash` of an unknown form matches nothing.
pub fn verify_secret(secret: &str, hash: &str) -> bool {
    let mut parts = hash.split('$');
    let (Some(SCHEME), Some(salt), Some(expected), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Ok(salt), Ok(expected)) = (
        URL_SAFE_NO_PAD.decode(salt),
        URL_SAFE_NO_PAD.decode(expected),
    ) else {
        return false;
    };
    // `ct_eq` on slices of different lengths is false without looking at the contents.
    bool::from(digest(&salt, secret).as_slice().ct_eq(expected.as_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_url_safe() {
        let a = new_client_secret();
        let b = new_client_secret();
        assert_ne!(a, b);
        assert_eq!(
            a.expose().len(),
            43,
            "32 bytes in base64url without padding"
        );
        assert!(a
            .expose()
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn a_hash_verifies_its_secret_only() {
        let secret = new_client_secret();
        let hash = hash_secret(secret.expose());
        assert!(hash.starts_with("sha256$"));
        assert!(!hash.contains(secret.expose()));
        assert!(verify_secret(secret.expose(), &hash));
        assert!(!verify_secret(new_client_secret().expose(), &hash));
        assert!(!verify_secret("", &hash));
        // One character off at the end.
        let mut near = secret.expose().to_string();
        let last = near.pop().map_or('a', |c| if c == 'a' { 'b' } else { 'a' });
        near.push(last);
        assert!(!verify_secret(&near, &hash));
    }

    #[test]
    fn salts_differ_between_hashes_of_one_secret() {
        let first = hash_secret("same");
        let second = hash_secret("same");
        assert_ne!(first, second);
        assert!(verify_secret("same", &first) && verify_secret("same", &second));
    }

    #[test]
    fn malformed_hashes_match_nothing() {
        let good = hash_secret("s");
        let digest_part = good.rsplit('$').next().unwrap_or_default();
        for bad in [
            "",
            "s",
            "sha256$",
            "sha256$$",
            "md5$AAAA$AAAA",
            "sha256$!!$AAAA",
            &format!("sha256$AAAA${digest_part}$extra"),
            &good.replacen("sha256", "sha512", 1),
            &good[..good.len() - 2],
        ] {
            assert!(!verify_secret("s", bad), "{bad:?}");
        }
    }

    #[test]
    fn debug_and_display_redact() {
        let secret = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(format!("{secret}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(<redacted>)");
    }
}
