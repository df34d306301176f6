//! The console's sessions whose access token is too big for a cookie.
//!
//! The session cookie normally holds the access token itself: stateless, so any replica serves
//! the browser and a restart logs no one out. But browsers drop a cookie over 4 KB without a
//! word, and an identity provider's token with many groups (Entra ID, Keycloak) is often 5-15
//! KB, so such a login used to fail silently. Splitting the token over several cookies was
//! rejected: every request (pages, scripts, images) would then carry ~10 KB of cookies, which
//! trips the 8 KB header-line limits of common proxies (nginx, ingress-nginx) in front of the
//! server, and a stolen set of cookies would still be the token.
//!
//! So a token longer than [`INLINE_MAX`] stays here, in memory, and the cookie holds a random
//! 256-bit handle to it; the token is checked on every request as before (signature, expiry,
//! revocation), and the handle dies with it ([`Sessions::token_of`]) or at logout.
//!
//! Several replicas: a handle is known only to the replica that signed the browser in, so
//! deployments whose tokens exceed [`INLINE_MAX`] and that run more than one replica need
//! session affinity for the console (e.g. ingress-nginx `affinity: cookie`); without it a
//! browser landing on another replica is sent to sign in again (its provider session makes that
//! quick). A restart likewise ends these sessions. The database would lift both limits, at the
//! price of a table written at every login; small tokens, the common case, need neither.

use std::collections::HashMap;
use std::sync::Mutex;

use alula_auth::secret::{random_b64, Secret};

/// Tokens up to this length go in the cookie itself: with the cookie's name and attributes
/// that stays under the 4096 bytes every browser keeps.
pub const INLINE_MAX: usize = 3500;
/// At most this many server-side sessions, and this many bytes of tokens, are kept; beyond
/// either, the session closest to its end is dropped first (its owner signs in again).
pub const MAX_SESSIONS: usize = 10_000;
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

/// A handle's length: 32 random bytes in unpadded base64url. No dots, so never a JWS.
const HANDLE_LEN: usize = 43;

struct Session {
    token: Secret,
    /// Unix seconds: the token's `exp`.
    expires_at: i64,
}

#[derive(Default)]
pub struct Sessions {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_handle: HashMap<String, Session>,
    bytes: usize,
}

impl Inner {
    fn remove(&mut self, handle: &str) -> Option<Session> {
        let session = self.by_handle.remove(handle)?;
        self.bytes = self.bytes.saturating_sub(session.token.expose().len());
        Some(session)
    }
}

/// Whether a session cookie's value is a handle (rather than a token).
pub fn is_handle(value: &str) -> bool {
    value.len() == HANDLE_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Sessions {
    /// The session cookie's value for `token`, valid until `expires_at` (unix seconds): the
    /// token itself when it fits a cookie, else a handle to it kept here.
    pub fn cookie_value(&self, token: &str, expires_at: i64, now: i64) -> Secret {
        if token.len() <= INLINE_MAX {
            return Secret::new(token);
        }
        let handle = random_b64(32);
        let mut inner = self.lock();
        inner.by_handle.retain(|_, s| s.expires_at > now);
        inner.bytes = inner
            .by_handle
            .values()
            .map(|s| s.token.expose().len())
            .sum();
        while !inner.by_handle.is_empty()
            && (inner.by_handle.len() >= MAX_SESSIONS
                || inner.bytes.saturating_add(token.len()) > MAX_BYTES)
        {
            let soonest = inner
                .by_handle
                .iter()
                .min_by_key(|(_, s)| s.expires_at)
                .map(|(h, _)| h.clone());
            if let Some(soonest) = soonest {
                inner.remove(&soonest);
            }
        }
        inner.bytes = inner.bytes.saturating_add(token.len());
        inner.by_handle.insert(
            handle.clone(),
            Session {
                token: Secret::new(token),
                expires_at,
            },
        );
        Secret::new(handle)
    }

    /// The token of the session `handle` names, unless it ended.
    pub fn token_of(&self, handle: &str, now: i64) -> Option<Secret> {
        let mut inner = self.lock();
        let expired = inner.by_handle.get(handle)?.expires_at <= now;
        if expired {
            inner.remove(handle);
            return None;
        }
        inner.by_handle.get(handle).map(|s| s.token.clone())
    }

    /// Ends the session `handle` names (logout); nothing for an unknown one or a token.
    pub fn end(&self, handle: &str) {
        self.lock().remove(handle);
    }

    pub fn len(&self) -> usize {
        self.lock().by_handle.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the map consistent enough: entries are
        // inserted and removed whole.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a panic is how a test reports failure"
    )]

    use super::*;

    fn big(n: usize, fill: char) -> String {
        format!("h.{}.s", fill.to_string().repeat(n))
    }

    #[test]
    fn small_tokens_stay_in_the_cookie_big_ones_here() {
        let sessions = Sessions::default();
        let small = "a.b.c";
        assert_eq!(sessions.cookie_value(small, 100, 0).expose(), small);
        assert!(sessions.is_empty());

        let token = big(10_000, 'x');
        let handle = sessions.cookie_value(&token, 100, 0);
        assert!(is_handle(handle.expose()), "{}", handle.expose());
        assert!(!is_handle(small) && !is_handle(&token));
        assert_eq!(
            sessions.token_of(handle.expose(), 50).unwrap().expose(),
            token
        );
        // Another handle, or the same after the token's expiry, is nothing.
        assert!(sessions.token_of(&random_b64(32), 50).is_none());
        assert!(sessions.token_of(handle.expose(), 100).is_none());
        assert!(sessions.is_empty(), "an expired session is dropped");

        let handle = sessions.cookie_value(&token, 100, 0);
        sessions.end(handle.expose());
        assert!(sessions.token_of(handle.expose(), 0).is_none());
    }

    #[test]
    fn the_map_is_capped_dropping_the_soonest_to_end() {
        let sessions = Sessions::default();
        let token = big(MAX_BYTES / 4, 'y');
        let handles: Vec<Secret> = (0..4)
            .map(|i| sessions.cookie_value(&token, 1000 + i, 0))
            .collect();
        assert!(sessions.len() <= 3, "{}", sessions.len());
        // The first (ending soonest) went; the last is there.
        assert!(sessions.token_of(handles[0].expose(), 0).is_none());
        assert!(sessions.token_of(handles[3].expose(), 0).is_some());
        assert!(sessions.lock().bytes <= MAX_BYTES);
    }
}
