//! mgmt's Vault brought back after mgmt is lost, against **real OpenBao**
//! and a **real Garage**: Vault A is bootstrapped by hostctl, holds a
//! secret, is snapshotted into the store, then gets a secret after the
//! snapshot and is lost with its storage. Vault B (the rebuilt mgmt's) is
//! bootstrapped afresh — a new keyring, A's key files set aside — and
//! `recover::vault::restore_into_rebuilt` restores A's snapshot into it
//! and unseals it with A's key: A's secret from before the snapshot is
//! there, the one from after is not, A's key files are current again and
//! B's are set aside, and hostctl's bootstrap runs over the restored Vault
//! with A's admin token (what the recovery's hand-back `up` does).

use crate::storage_garage::fixture;
use host_agent::recover::vault::{restore_into_rebuilt, set_aside_stamps};
use host_agent::secrets::{self, VaultTarget};
use host_agent::storage::vault_snapshot;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use test_support::openbao::{bao_or_skip, start_under_lab_root};
use vault::{VaultClient, WaitPolicy};

const WAIT: WaitPolicy = WaitPolicy {
    deadline: Duration::from_secs(120),
    interval: Duration::from_millis(200),
};

async fn put(admin: &VaultClient, name: &str) {
    admin
        .write(
            &format!("/v1/secret/data/mgmt/{name}"),
            &json!({"data": {"written": name}}),
        )
        .await
        .unwrap();
}

async fn exists(admin: &VaultClient, name: &str) -> bool {
    admin
        .read(&format!("/v1/secret/data/mgmt/{name}"))
        .await
        .unwrap()
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rebuilt_vault_gets_the_old_data_and_the_old_key_back() {
    let test = "recover vault into a rebuilt Vault";
    let Some(bao) = bao_or_skip(test) else {
        return;
    };
    let Some(store) = fixture(test) else {
        return;
    };
    store.storage.up().await.expect("storage up");
    let s3 = store.storage.host_client().unwrap();
    let (home, pki) = test_support::kube_api::pki();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let resolved = topology::default_topology().resolve(None).unwrap();
    let keys = vault::KeyDir::new(secrets::key_dir(home.path()));

    // Vault A: bootstrapped, a secret, the snapshot, a later secret.
    let dir_a = tempfile::tempdir().unwrap();
    let server_a = start_under_lab_root(&bao, dir_a.path(), &pki).unwrap();
    let target_a = VaultTarget::locate(&resolved, &pki, Some(server_a.address())).unwrap();
    secrets::bootstrap(&resolved, &pki, home.path(), &target_a, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", server_a.log()));
    let a_key = keys.read(vault::UNSEAL_KEY).unwrap().unwrap();
    let a_admin = keys.read(vault::ADMIN_TOKEN).unwrap().unwrap();
    let admin_a = target_a.client().unwrap().with_token(a_admin.clone());
    put(&admin_a, "before").await;
    vault_snapshot::take(&admin_a, &s3, home.path(), jiff::Timestamp::now(), 3)
        .await
        .expect("snapshot");
    put(&admin_a, "after").await;
    drop(server_a);
    drop(dir_a);

    // Vault B: the rebuilt mgmt's, initialised afresh by the bootstrap.
    let dir_b = tempfile::tempdir().unwrap();
    let server_b = start_under_lab_root(&bao, dir_b.path(), &pki).unwrap();
    let target_b = VaultTarget::locate(&resolved, &pki, Some(server_b.address())).unwrap();
    secrets::bootstrap(&resolved, &pki, home.path(), &target_b, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", server_b.log()));
    let b_key = keys.read(vault::UNSEAL_KEY).unwrap().unwrap();
    assert_ne!(b_key.expose(), a_key.expose(), "B has its own keyring");
    assert_eq!(
        set_aside_stamps(keys.path()).len(),
        1,
        "A's files set aside"
    );
    let client_b = target_b.client().unwrap();
    let b_admin = client_b.with_token(keys.read(vault::ADMIN_TOKEN).unwrap().unwrap());
    assert!(!exists(&b_admin, "before").await, "B starts empty");

    let restored = restore_into_rebuilt(&client_b, &keys, &s3, home.path(), None, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", server_b.log()));
    assert!(restored.snapshot.starts_with("mgmt/"), "{restored:?}");

    // A's generation is current again; B's is set aside.
    assert_eq!(
        keys.read(vault::UNSEAL_KEY).unwrap().unwrap().expose(),
        a_key.expose()
    );
    assert_eq!(
        keys.read(vault::ADMIN_TOKEN).unwrap().unwrap().expose(),
        a_admin.expose()
    );
    assert!(
        set_aside_stamps(keys.path())
            .iter()
            .any(|s| s.starts_with("rebuilt-")),
        "{:?}",
        set_aside_stamps(keys.path())
    );
    // The data is A's as of the snapshot, read with A's admin token.
    let admin = client_b.with_token(a_admin);
    assert!(exists(&admin, "before").await);
    assert!(!exists(&admin, "after").await);
    // The hand-back's bootstrap runs over the restored Vault.
    secrets::bootstrap(&resolved, &pki, home.path(), &target_b, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", server_b.log()));
    drop(server_b);
}
