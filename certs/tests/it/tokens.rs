//! Enrolment tokens: single use, expiring, bound to one node, stored hashed.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use certs::{Clock, TokenError, TokenStore};
use common::{TestResult, init};

/// A clock tests can move forward.
#[derive(Clone)]
struct FakeClock(Arc<Mutex<SystemTime>>);

impl FakeClock {
    fn new() -> Self {
        FakeClock(Arc::new(Mutex::new(
            UNIX_EPOCH + Duration::from_secs(1_900_000_000),
        )))
    }
    fn advance(&self, by: Duration) {
        if let Ok(mut t) = self.0.lock() {
            *t += by;
        }
    }
}

impl Clock for FakeClock {
    fn now(&self) -> SystemTime {
        self.0.lock().map(|t| *t).unwrap_or(UNIX_EPOCH)
    }
}

fn store(dir: &std::path::Path, clock: &FakeClock) -> TokenStore {
    TokenStore::with_clock(dir.join("tokens.json"), Arc::new(clock.clone()))
}

#[test]
fn token_format_has_enough_entropy() -> TestResult {
    let dir = tempfile::tempdir()?;
    let t = TokenStore::new(dir.path().join("tokens.json"))
        .issue("app1-cp", Duration::from_secs(60))?;
    let parts: Vec<&str> = t.split('.').collect();
    assert_eq!(parts.len(), 3, "{t}");
    assert_eq!(parts[0], "hct1");
    assert_eq!(parts[1].len(), 8);
    assert_eq!(parts[2].len(), 32, "32 chars of [a-z0-9] = 165 bits");
    assert!(
        t[5..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.')
    );
    Ok(())
}

#[test]
fn a_token_works_exactly_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let clock = FakeClock::new();
    let s = store(dir.path(), &clock);
    let t = s.issue("app1-cp", Duration::from_secs(600))?;
    s.consume(&t, "app1-cp")?;
    assert!(matches!(
        s.consume(&t, "app1-cp"),
        Err(TokenError::AlreadyUsed)
    ));
    Ok(())
}

#[test]
fn a_used_token_stays_used_after_reload() -> TestResult {
    let dir = tempfile::tempdir()?;
    let clock = FakeClock::new();
    let t = store(dir.path(), &clock).issue("app1-cp", Duration::from_secs(600))?;
    store(dir.path(), &clock).consume(&t, "app1-cp")?;
    // A fresh store (e.g. after a daemon restart) reads the used mark from disk.
    let reloaded = store(dir.path(), &clock);
    assert!(matches!(
        reloaded.consume(&t, "app1-cp"),
        Err(TokenError::AlreadyUsed)
    ));
    Ok(())
}

#[test]
fn expired_token_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let clock = FakeClock::new();
    let s = store(dir.path(), &clock);
    let t = s.issue("app1-cp", Duration::from_secs(600))?;
    let other = s.issue("app1-w1", Duration::from_secs(600))?;
    clock.advance(Duration::from_secs(599));
    s.consume(&other, "app1-w1")?;
    clock.advance(Duration::from_secs(1));
    assert!(matches!(s.consume(&t, "app1-cp"), Err(TokenError::Expired)));
    Ok(())
}

#[test]
fn token_for_another_node_is_refused_but_not_burnt() -> TestResult {
    let dir = tempfile::tempdir()?;
    let clock = FakeClock::new();
    let s = store(dir.path(), &clock);
    let t = s.issue("app1-cp", Duration::from_secs(600))?;
    match s.consume(&t, "app2-cp") {
        Err(TokenError::WrongNode { issued_for }) => assert_eq!(issued_for, "app1-cp"),
        other => panic!("expected WrongNode, got {other:?}"),
    }
    s.consume(&t, "app1-cp")?;
    Ok(())
}

#[test]
fn unknown_and_forged_tokens_are_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let clock = FakeClock::new();
    let s = store(dir.path(), &clock);
    let t = s.issue("app1-cp", Duration::from_secs(600))?;
    // Right id, wrong secret.
    let (head, secret) = t.rsplit_once('.').ok_or("no dot")?;
    let forged = format!("{head}.{}", secret.chars().rev().collect::<String>());
    assert!(matches!(
        s.consume(&forged, "app1-cp"),
        Err(TokenError::Unknown)
    ));
    assert!(matches!(
        s.consume("hct1.aaaaaaaa.bbbb", "app1-cp"),
        Err(TokenError::Unknown)
    ));
    assert!(matches!(
        s.consume("garbage", "app1-cp"),
        Err(TokenError::Unknown)
    ));
    // Failed attempts did not burn the real token.
    s.consume(&t, "app1-cp")?;
    Ok(())
}

#[test]
fn store_file_holds_hashes_not_secrets_and_is_0600() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let clock = FakeClock::new();
    let s = store(dir.path(), &clock);
    let t1 = s.issue("app1-cp", Duration::from_secs(600))?;
    let t2 = s.issue("app1-w1", Duration::from_secs(600))?;
    s.consume(&t2, "app1-w1")?;
    let path = dir.path().join("tokens.json");
    let text = std::fs::read_to_string(&path)?;
    for t in [&t1, &t2] {
        let secret = t.rsplit('.').next().ok_or("no secret")?;
        assert!(!text.contains(secret), "secret on disk");
    }
    assert!(
        text.contains("app1-cp") && text.contains("sha256"),
        "{text}"
    );
    assert_eq!(
        std::fs::metadata(&path)?.permissions().mode() & 0o777,
        0o600
    );
    Ok(())
}

#[test]
fn damaged_store_is_an_error_not_an_empty_store() -> TestResult {
    let dir = tempfile::tempdir()?;
    let clock = FakeClock::new();
    let s = store(dir.path(), &clock);
    let t = s.issue("app1-cp", Duration::from_secs(600))?;
    let path = dir.path().join("tokens.json");
    let text = std::fs::read_to_string(&path)?;
    std::fs::write(&path, &text[..text.len() / 2])?;
    match s.consume(&t, "app1-cp") {
        Err(TokenError::Store(e)) => assert!(e.to_string().contains("tokens.json"), "{e}"),
        other => panic!("expected a store error, got {other:?}"),
    }
    Ok(())
}

#[test]
fn concurrent_consumers_get_exactly_one_success() -> TestResult {
    let (_home, pki) = init()?;
    let s = Arc::new(pki.token_store());
    let t = s.issue("app1-cp", Duration::from_secs(600))?;
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (s, t) = (Arc::clone(&s), t.clone());
            std::thread::spawn(move || s.consume(&t, "app1-cp").is_ok())
        })
        .collect();
    let mut ok = 0;
    for h in handles {
        if h.join().map_err(|_| "thread panicked")? {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
    assert!(s.path().ends_with("pki/agent/tokens.json"));
    Ok(())
}
