//! Single-use, expiring enrolment tokens — the only secret a VM's user-data
//! carries. A node presents its token with its CSR once; after that it
//! authenticates with the certificate it got.
//!
//! Token format: `hct1.<id>.<secret>`, where `id` is 8 characters of
//! `[a-z0-9]` (a lookup key, not secret) and `secret` is 32 characters of
//! `[a-z0-9]` (≈165 bits from the thread-local CSPRNG). The store keeps only
//! SHA-256 of the whole token, compared in constant time, so reading
//! `tokens.json` does not let anyone enrol. A token is marked used and the
//! store is synced to disk *before* `consume` returns `Ok`, so a crash right
//! after enrolment cannot make the token usable again.
//!
//! The store is re-read from disk on every operation (under an in-process
//! mutex), so a `hostctl` CLI issuing tokens and the daemon consuming them see
//! each other's changes. Two *processes* writing at the same instant are not
//! serialised; hostctl issues tokens from the daemon, so that does not occur.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{PkiError, TokenError};
use crate::pki::validate_name;
use crate::store::{self, KEY_MODE};

const PREFIX: &str = "hct1";
const ID_LEN: usize = 8;
const SECRET_LEN: usize = 32;
/// Spent or expired entries are kept this long (so a replay is reported as
/// `AlreadyUsed`/`Expired` rather than `Unknown`), then pruned on `issue`.
const KEEP_SPENT: Duration = Duration::from_secs(7 * 86_400);

/// Source of the current time, injectable so tests can expire tokens
/// without sleeping.
pub trait Clock: Send + Sync {
    /// The current wall-clock time, against which token expiry is checked
    /// and from which new tokens' expiry is computed.
    fn now(&self) -> SystemTime;
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

impl<F: Fn() -> SystemTime + Send + Sync> Clock for F {
    fn now(&self) -> SystemTime {
        self()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    version: u32,
    /// Keyed by token id.
    tokens: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    node: String,
    /// Lowercase hex SHA-256 of the full token string.
    sha256: String,
    issued_at: u64,
    expires_at: u64,
    used_at: Option<u64>,
}

/// The enrolment-token store at `pki/agent/tokens.json`. Share one instance
/// (e.g. in an `Arc`) between tokio tasks: operations are short, synchronous
/// file I/O serialised by an internal mutex.
pub struct TokenStore {
    path: PathBuf,
    clock: Arc<dyn Clock>,
    lock: Mutex<()>,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random_alnum(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

fn digest_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The id part of a well-formed `hct1.<id>.<secret>` token.
fn token_id(token: &str) -> Option<&str> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(PREFIX), Some(id), Some(_), None) => Some(id),
        _ => None,
    }
}

/// Equality whose running time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

impl TokenStore {
    /// The id part of a well-formed token (not secret: a lookup key that
    /// appears in the node's user-data and the store).
    pub fn id_of(token: &str) -> Option<&str> {
        token_id(token)
    }

    /// A store at `path` using the system clock. The file is created on the
    /// first `issue`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_clock(path, Arc::new(SystemClock))
    }

    /// A store with an injected clock (tests, simulations).
    pub fn with_clock(path: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> Self {
        TokenStore {
            path: path.into(),
            clock,
            lock: Mutex::new(()),
        }
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<TokenFile, PkiError> {
        if !store::exists(&self.path)? {
            return Ok(TokenFile {
                version: 1,
                tokens: BTreeMap::new(),
            });
        }
        let bytes = store::read_secret(&self.path)?;
        serde_json::from_slice(&bytes).map_err(|e| PkiError::Damaged {
            path: self.path.clone(),
            what: format!("not a valid token store ({e})"),
            fix: "remove it; outstanding enrolment tokens become invalid and must be issued again"
                .into(),
        })
    }

    fn save(&self, file: &TokenFile) -> Result<(), PkiError> {
        let json = serde_json::to_vec_pretty(file).map_err(|e| PkiError::Encode {
            what: "token store",
            reason: e.to_string(),
        })?;
        store::write_atomic(&self.path, &json, KEY_MODE)
    }

    /// Issues a token that lets `node` enrol once within `ttl`. The returned
    /// string is the only copy of the secret; put it in the VM's user-data.
    pub fn issue(&self, node: &str, ttl: Duration) -> Result<String, PkiError> {
        validate_name("node name", node)?;
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let now = unix(self.clock.now());
        let mut file = self.load()?;
        file.tokens.retain(|_, e| {
            let spent_at = e.used_at.unwrap_or(e.expires_at).min(e.expires_at);
            spent_at.saturating_add(KEEP_SPENT.as_secs()) > now
        });
        let mut id = random_alnum(ID_LEN);
        while file.tokens.contains_key(&id) {
            id = random_alnum(ID_LEN);
        }
        let token = format!("{PREFIX}.{id}.{}", random_alnum(SECRET_LEN));
        file.tokens.insert(
            id,
            Entry {
                node: node.to_owned(),
                sha256: digest_hex(&token),
                issued_at: now,
                expires_at: now.saturating_add(ttl.as_secs()),
                used_at: None,
            },
        );
        self.save(&file)?;
        Ok(token)
    }

    /// The node the token with `token`'s id was issued for, judged by the
    /// id alone (the secret part is not checked): `None` for a malformed
    /// token or an id this store never issued. The enrolment service uses
    /// it to attribute a refusal to a node only when the presented token
    /// really is that node's (ids are random and appear only in the node's
    /// user-data), so unauthenticated noise naming a node is not taken for
    /// that node's refusal.
    pub fn issued_for(&self, token: &str) -> Result<Option<String>, TokenError> {
        let Some(id) = token_id(token) else {
            return Ok(None);
        };
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let file = self.load()?;
        Ok(file.tokens.get(id).map(|e| e.node.clone()))
    }

    /// Whether the token with id `id` ([`TokenStore::id_of`]) is the newest
    /// issued for `node` — the one its machine holds now, since every
    /// (re)launch issues a new token. A refusal of that token says the
    /// machine is stuck until it gets a new one; a refusal of an older one
    /// says nothing about the machine. Two tokens of a node issued in the
    /// same second are both "not newest": a caller waits rather than act
    /// on the wrong one.
    pub fn is_newest_for(&self, id: &str, node: &str) -> Result<bool, TokenError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let file = self.load()?;
        let Some(entry) = file.tokens.get(id).filter(|e| e.node == node) else {
            return Ok(false);
        };
        Ok(!file
            .tokens
            .iter()
            .any(|(other, e)| other != id && e.node == node && e.issued_at >= entry.issued_at))
    }

    /// Spends `token` for `node`. Succeeds once; the used mark is on disk
    /// before this returns. A token presented for the wrong node is refused
    /// but not spent, so a misrouted request cannot lock the real node out.
    pub fn consume(&self, token: &str, node: &str) -> Result<(), TokenError> {
        let Some(id) = token_id(token) else {
            return Err(TokenError::Unknown);
        };
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut file = self.load()?;
        let Some(entry) = file.tokens.get_mut(id) else {
            return Err(TokenError::Unknown);
        };
        if !constant_time_eq(digest_hex(token).as_bytes(), entry.sha256.as_bytes()) {
            return Err(TokenError::Unknown);
        }
        let now = unix(self.clock.now());
        if entry.used_at.is_some() {
            return Err(TokenError::AlreadyUsed);
        }
        if now >= entry.expires_at {
            return Err(TokenError::Expired);
        }
        if entry.node != node {
            return Err(TokenError::WrongNode {
                issued_for: entry.node.clone(),
            });
        }
        entry.used_at = Some(now);
        self.save(&file)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn malformed_tokens_are_unknown() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = TokenStore::new(dir.path().join("tokens.json"));
        let good = store.issue("n1", Duration::from_secs(60))?;
        for bad in [
            "",
            "hct1",
            "hct1.x.y.z",
            &good.replacen("hct1", "hct2", 1),
            &format!("{good}x"),
        ] {
            assert!(
                matches!(store.consume(bad, "n1"), Err(TokenError::Unknown)),
                "{bad:?}"
            );
        }
        store.consume(&good, "n1")?;
        Ok(())
    }

    #[test]
    fn only_the_newest_token_of_a_node_is_its_current_one() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let now = Arc::new(Mutex::new(UNIX_EPOCH + Duration::from_secs(1_000_000)));
        let clock = {
            let now = now.clone();
            move || *now.lock().unwrap_or_else(|p| p.into_inner())
        };
        let store = TokenStore::with_clock(dir.path().join("tokens.json"), Arc::new(clock));
        let first = store.issue("n1", Duration::from_secs(3600))?;
        let id = |t: &str| TokenStore::id_of(t).unwrap_or_default().to_owned();
        assert!(store.is_newest_for(&id(&first), "n1")?);
        *now.lock().unwrap_or_else(|p| p.into_inner()) += Duration::from_secs(10);
        let second = store.issue("n1", Duration::from_secs(3600))?;
        let other = store.issue("n2", Duration::from_secs(3600))?;
        assert!(!store.is_newest_for(&id(&first), "n1")?, "relaunched since");
        assert!(store.is_newest_for(&id(&second), "n1")?);
        assert!(store.is_newest_for(&id(&other), "n2")?, "per node");
        assert!(
            !store.is_newest_for(&id(&other), "n1")?,
            "another node's token"
        );
        assert!(!store.is_newest_for("nosuchid", "n1")?);
        Ok(())
    }

    #[test]
    fn issued_for_names_the_node_of_the_id_whatever_the_secret()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = TokenStore::new(dir.path().join("tokens.json"));
        let good = store.issue("n1", Duration::from_secs(60))?;
        let id = good.split('.').nth(1).ok_or("no id")?;
        assert_eq!(store.issued_for(&good)?.as_deref(), Some("n1"));
        let wrong_secret = format!("hct1.{id}.{}", "0".repeat(SECRET_LEN));
        assert_eq!(store.issued_for(&wrong_secret)?.as_deref(), Some("n1"));
        for noise in ["", "hct1.zzzzzzzz.secret", "x.y", &format!("{good}.x")] {
            assert_eq!(store.issued_for(noise)?, None, "{noise:?}");
        }
        store.consume(&good, "n1")?;
        assert_eq!(
            store.issued_for(&good)?.as_deref(),
            Some("n1"),
            "a spent token still names its node"
        );
        Ok(())
    }
}
