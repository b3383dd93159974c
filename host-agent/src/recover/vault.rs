//! mgmt's lost-cluster recovery starts with Vault: the rebuilt mgmt's
//! Vault was initialised by `up` with a new keyring (its bootstrap set the
//! old key files aside as `<file>.replaced-<stamp>` under `pki/vault/`),
//! so it holds none of the old secrets, and External Secrets and
//! cert-manager on every cluster read from it. The host's newest raft
//! snapshot is restored into it (`snapshot-force`: the snapshot is another
//! cluster's), after which the data — and the keyring — are the old
//! Vault's: it is unsealed with the old key, and the key files swap back
//! (the old ones current again, the rebuilt Vault's set aside).

use crate::storage::s3::S3;
use crate::storage::vault_snapshot::{self, VaultSnapshotError};
use std::path::{Path, PathBuf};
use vault::{ADMIN_TOKEN, KeyDir, ROOT_TOKEN, UNSEAL_KEY, VaultClient, WaitPolicy};

/// Why Vault could not be brought back.
#[derive(Debug, thiserror::Error)]
pub enum VaultRecoveryError {
    #[error(transparent)]
    Snapshot(#[from] VaultSnapshotError),
    #[error(transparent)]
    Vault(#[from] vault::VaultError),
    /// The rebuilt Vault has no admin token in the home.
    #[error(
        "{}: no admin token of the rebuilt Vault; run `hostctl up --only mgmt` first (its \
         bootstrap initialises the new Vault)", path.display()
    )]
    NoAdminToken { path: PathBuf },
    /// No key set aside by the rebuild unseals the restored data.
    #[error(
        "none of the old unseal keys in {} ({tried}) unseals the restored Vault; the \
         snapshot's key must be put back there as `{UNSEAL_KEY}.replaced-<stamp>`",
        dir.display()
    )]
    NoOldKey { dir: PathBuf, tried: String },
}

/// What was restored, and with whose key.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The snapshot's object key in the `vault` bucket.
    pub snapshot: String,
    /// The stamp of the key files that unsealed it.
    pub key_stamp: String,
}

/// The three files a Vault generation has.
const FILES: [&str; 3] = [UNSEAL_KEY, ADMIN_TOKEN, ROOT_TOKEN];

/// The stamps of the key generations set aside in `dir`, newest first
/// (`unseal.key.replaced-<stamp>`; stamps are Unix seconds, and any other
/// suffix sorts after them).
pub fn set_aside_stamps(dir: &Path) -> Vec<String> {
    let prefix = format!("{UNSEAL_KEY}.replaced-");
    let mut stamps: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .map(str::to_owned)
        })
        .collect();
    stamps.sort_by_key(|s| std::cmp::Reverse(s.parse::<u64>().unwrap_or(0)));
    stamps
}

/// Renames generation `from`'s files to generation `to`'s names
/// (`None`: the current names), the files that exist.
fn move_generation(keys: &KeyDir, from: Option<&str>, to: Option<&str>) -> std::io::Result<()> {
    let name = |file: &str, stamp: Option<&str>| match stamp {
        Some(s) => keys.file(&format!("{file}.replaced-{s}")),
        None => keys.file(file),
    };
    for file in FILES {
        let (src, dst) = (name(file, from), name(file, to));
        if src.exists() {
            std::fs::rename(&src, &dst)?;
        }
    }
    Ok(())
}

fn io(keys: &KeyDir) -> impl Fn(std::io::Error) -> VaultRecoveryError + '_ {
    move |e| {
        VaultRecoveryError::Vault(fsio::Error::at("renaming key files in", keys.path())(e).into())
    }
}

/// Restores the host's newest (or `name`d) Vault snapshot into the rebuilt
/// Vault at `vault` (no token), unseals it with the snapshot's key (the
/// newest set-aside generation that unseals it), and makes that
/// generation current. Resumable: run again after a failure, it restores
/// again (the same snapshot: the newest does not change while mgmt is
/// down) and tries the keys again.
pub async fn restore_into_rebuilt(
    vault: &VaultClient,
    keys: &KeyDir,
    s3: &S3,
    home: &Path,
    name: Option<&str>,
    wait: WaitPolicy,
) -> Result<Restored, VaultRecoveryError> {
    let admin = keys
        .read(ADMIN_TOKEN)?
        .ok_or_else(|| VaultRecoveryError::NoAdminToken {
            path: keys.file(ADMIN_TOKEN),
        })?;
    let snapshot = vault_snapshot::restore(&vault.with_token(admin), s3, home, name).await?;
    // The rebuilt Vault's generation is no key to this data any more.
    let rebuilt = format!(
        "rebuilt-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    );
    move_generation(keys, None, Some(&rebuilt)).map_err(io(keys))?;
    let candidates: Vec<String> = set_aside_stamps(keys.path())
        .into_iter()
        .filter(|s| *s != rebuilt)
        .collect();
    for stamp in &candidates {
        move_generation(keys, Some(stamp), None).map_err(io(keys))?;
        if unsealed_with_current(vault, keys, wait).await? {
            return Ok(Restored {
                snapshot: snapshot.key,
                key_stamp: stamp.clone(),
            });
        }
        tracing::info!(stamp, "an old key did not unseal the restored Vault");
        move_generation(keys, None, Some(stamp)).map_err(io(keys))?;
    }
    Err(VaultRecoveryError::NoOldKey {
        dir: keys.path().to_path_buf(),
        tried: if candidates.is_empty() {
            "none set aside".to_owned()
        } else {
            candidates.join(", ")
        },
    })
}

/// Whether the current generation opens the restored Vault. Vault seals
/// itself a moment after `snapshot-force` brings in another keyring, so
/// this polls: sealed → the current key unseals it (or it is the wrong
/// key: `false`); unsealed and the current admin token is valid → done.
async fn unsealed_with_current(
    vault: &VaultClient,
    keys: &KeyDir,
    wait: WaitPolicy,
) -> Result<bool, VaultRecoveryError> {
    let deadline = std::time::Instant::now() + wait.deadline;
    let token = keys.read(ADMIN_TOKEN)?;
    loop {
        let state = vault::wait_ready(vault, wait).await?;
        if state.sealed {
            return match vault::unseal(vault, keys).await {
                Ok(_) => {
                    vault::wait_active(vault, wait).await?;
                    Ok(true)
                }
                Err(_) => Ok(false),
            };
        }
        if let Some(token) = &token
            && vault
                .with_token(token.clone())
                .read("/v1/auth/token/lookup-self")
                .await
                .is_ok_and(|a| a.is_some())
        {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(wait.interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_aside_generations_are_listed_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "unseal.key",
            "unseal.key.replaced-1700000000",
            "unseal.key.replaced-1800000000",
            "admin.token.replaced-1800000000",
            "unseal.key.replaced-rebuilt-1900000000",
        ] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        assert_eq!(
            set_aside_stamps(dir.path()),
            ["1800000000", "1700000000", "rebuilt-1900000000"]
        );
    }
}
