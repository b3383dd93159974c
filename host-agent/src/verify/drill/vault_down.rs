//! The `vault-down` drill (C3): Vault is sealed (`PUT sys/seal` with
//! hostctl's admin token); while it is sealed, the Secrets External Secrets
//! synced on every cluster must stay; Vault is unsealed with the key hostctl
//! keeps, and every cluster's ExternalSecrets must be synced again.

use super::env::DrillEnv;
use super::record::{DrillStore, Running};
use super::{DrillError, DrillName, DrillReport, Observation, Pace, Started, until};
use crate::secrets::{VaultTarget, key_dir};
use crate::verify::Verdict;
use hyper::Method;
use vault::{ADMIN_TOKEN, KeyDir, UNSEAL_KEY, VaultClient};

const SEALED: &str = "Vault can be taken away: sealed for the drill";
const STAY: &str = "synced secrets stay while Vault is sealed";
const RESYNC: &str = "after the unseal with hostctl's key, ExternalSecrets sync again";

/// Runs the drill; Vault is unsealed again whatever happens.
pub async fn run(
    env: &mut DrillEnv<'_>,
    store: &DrillStore,
    pace: Pace,
) -> Result<DrillReport, DrillError> {
    let started = Started::now();
    let mut steps = Vec::new();
    super::restore(env, store, DrillName::VaultDown, pace, &mut steps).await?;
    let keys = KeyDir::new(key_dir(env.home));
    if !keys.exists(UNSEAL_KEY)? {
        let observations = vec![Observation::new(
            "C3",
            STAY,
            Verdict::NotInstalled,
            vec!["this home has not bootstrapped Vault (`hostctl up` does, with mgmt)".into()],
        )];
        return Ok(started.report(DrillName::VaultDown, steps, observations));
    }
    let client = client(env)?;
    if vault::status(&client).await?.sealed {
        return Err(DrillError::Precondition(
            "Vault is sealed already: `hostctl vault unseal` first, then run the drill".into(),
        ));
    }
    let admin = keys.read(ADMIN_TOKEN)?.ok_or_else(|| {
        DrillError::Precondition(format!(
            "no admin token in {}: `hostctl up` makes one",
            keys.path().display()
        ))
    })?;

    store.mark_running(
        DrillName::VaultDown,
        &Running {
            sealed_vault: true,
            ..Running::default()
        },
    )?;
    steps.push("sealing Vault (PUT /v1/sys/seal)".into());
    let sealed = client
        .with_token(admin)
        .call(Method::PUT, "/v1/sys/seal", None)
        .await;
    let mut observations = Vec::new();
    let during = match sealed {
        Ok(_) => {
            let status = vault::status(&client).await;
            observations.push(match &status {
                Ok(s) if s.sealed => Observation::new(
                    "C3",
                    SEALED,
                    Verdict::Holds,
                    vec!["sys/health: sealed".into()],
                ),
                Ok(_) => {
                    Observation::new("C3", SEALED, Verdict::Broken, vec!["still unsealed".into()])
                }
                Err(e) => Observation::new("C3", SEALED, Verdict::CannotTell, vec![e.to_string()]),
            });
            Ok(super::secrets_synced(env, false, STAY).await)
        }
        Err(e) => Err(e),
    };
    // Unseal before judging anything, even when sealing failed.
    unseal(env, &mut steps).await?;
    store.clear_running(DrillName::VaultDown)?;
    observations.push(during?);
    let shared: &DrillEnv<'_> = env;
    let resynced = until(pace, || async move {
        let o = super::secrets_synced(shared, false, RESYNC).await;
        (o.verdict != Verdict::Broken).then_some(o)
    })
    .await;
    observations.push(match resynced {
        Some(o) => o,
        None => super::secrets_synced(env, false, RESYNC).await,
    });
    Ok(started.report(DrillName::VaultDown, steps, observations))
}

fn client(env: &DrillEnv<'_>) -> Result<VaultClient, DrillError> {
    let pki = env
        .pki
        .ok_or_else(|| DrillError::Precondition("no PKI in this home".into()))?;
    VaultTarget::from_env(env.resolved, pki)
        .and_then(|t| t.client())
        .map_err(|e| DrillError::Precondition(e.to_string()))
}

/// Unseals Vault with the key hostctl keeps (a no-op when unsealed).
pub async fn unseal(env: &DrillEnv<'_>, steps: &mut Vec<String>) -> Result<(), DrillError> {
    let client = client(env)?;
    let keys = KeyDir::new(key_dir(env.home));
    let opened = vault::unseal(&client, &keys).await?;
    steps.push(match opened {
        true => "unsealed Vault with the key in $HOSTCTL_HOME/pki/vault".into(),
        false => "Vault was not sealed".into(),
    });
    Ok(())
}
