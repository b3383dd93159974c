//! `hostctl recover cluster` end to end on the local provider: app1 made
//! by the real `up` with `backups: { managed: true }` (the real Garage on
//! the host, Velero through the helm STAND-IN), then every machine of the
//! cluster is lost. The test plays Velero's controller on the stand-in API
//! server of the rebuilt cluster: the backups of the daily schedule appear
//! as Velero's sync from the bucket would list them, and the recovery's
//! Restore is given a phase. The first Restore ends PartiallyFailed, so
//! the first run stops at that step; the rerun continues with the same
//! backup, creates a new Restore and completes. It proves the rebuilt
//! cluster's Velero was installed with its location read-only until the
//! restore and read-write after it, and that the newest Completed backup
//! of the schedule was the one restored.

use super::Rig;
use super::velero_play::{RESTORES, VeleroPlay, cluster_state};
use serde_json::json;
use tests::bootstrap::calls;

const NET: u8 = 77;

/// The host's object store listens on fixed loopback ports (admin 3903,
/// RPC 3901), so the two tests that run one take turns.
static ONE_STORE: std::sync::Mutex<()> = std::sync::Mutex::new(());
/// Turns on `backups: { managed: true }` in the rig's topology and points
/// `up` at the real Garage; `None` (skipped) without one.
fn with_backups(rig: &mut Rig) -> Option<()> {
    let garage = test_support::garage::garage_or_skip("recover_cluster")?;
    let text = std::fs::read_to_string(&rig.env.topology).expect("topology");
    std::fs::write(
        &rig.env.topology,
        format!("{text}\nbackups:\n  managed: true\n"),
    )
    .expect("write topology");
    rig.vars
        .push(("HOSTCTL_GARAGE".to_owned(), garage.display().to_string()));
    Some(())
}

/// The access mode of each Velero install the helm stand-in saw, in order.
fn velero_access_modes(rig: &Rig) -> Vec<String> {
    calls(&rig.helm_dir.join("calls.jsonl"))
        .iter()
        .filter(|c| {
            c["argv"].as_array().is_some_and(|a| {
                a.first() == Some(&json!("upgrade")) && a.iter().any(|x| x == "velero")
            })
        })
        .filter_map(|c| c["values"].as_str())
        .filter_map(|v| {
            v.lines().find_map(|l| {
                let l = l.trim().trim_start_matches("- ");
                l.strip_prefix("accessMode: ").map(str::to_owned)
            })
        })
        .collect()
}

#[test]
fn a_lost_cluster_is_rebuilt_read_only_restored_from_its_newest_backup_and_handed_back() {
    if !tests::can_run_netns("bootstrap") {
        return;
    }
    let _store = ONE_STORE.lock().unwrap_or_else(|e| e.into_inner());
    let mut rig = Rig::new(NET);
    if with_backups(&mut rig).is_none() {
        return;
    }
    let api = rig.api();
    let out = rig.up_ok();
    let helm = calls(&rig.helm_dir.join("calls.jsonl"));
    assert_eq!(
        velero_access_modes(&rig),
        ["ReadWrite"],
        "the first up:\n{out}\n{helm:#?}"
    );

    // The whole cluster is lost.
    api.stop();
    for node in [rig.cp.clone(), rig.worker.clone()] {
        rig.lose_machine(&node);
    }
    let api = rig.api_with(cluster_state("app1"));
    let velero = VeleroPlay::start(api.state.clone(), Vec::new());

    let (ok, first) = rig.recover_with_up(&["cluster", rig.cluster, "--within", "60"]);
    assert!(!ok, "the first Restore fails:\n{first}");
    assert!(first.contains("[5/7] restore it … failed"), "{first}");
    assert!(first.contains("PartiallyFailed"), "{first}");
    assert_eq!(
        velero_access_modes(&rig),
        ["ReadWrite", "ReadOnly"],
        "the rebuilt cluster's Velero must start read-only"
    );

    let (ok, second) = rig.recover_with_up(&["cluster", rig.cluster, "--within", "60"]);
    eprintln!("first run:\n{first}\nrerun:\n{second}");
    assert!(ok, "the rerun completes:\n{second}");
    assert!(
        second.contains(
            "[4/7] choose the backup Velero synced from the store … done in an earlier run"
        ),
        "{second}"
    );
    assert!(
        second.contains("[7/7] wait for the API server … done in"),
        "{second}"
    );
    assert!(second.contains("(RTO 2h: met)"), "{second}");
    let names = velero.restores();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_ne!(names[0], names[1], "a new Restore after the failed one");
    let state = api.state.lock().expect("state");
    let restore = &state.objects[&format!("{RESTORES}/{}", names[1])];
    assert_eq!(
        restore["spec"]["backupName"], "velero-daily-20261203030000",
        "the newest Completed backup of the schedule: {restore:#}"
    );
    drop(state);
    let modes = velero_access_modes(&rig);
    assert_eq!(
        modes.last().map(String::as_str),
        Some("ReadWrite"),
        "{modes:?}"
    );
    assert!(
        !rig.env.home().join("recover/app1-cluster.json").exists(),
        "the finished recovery's record is removed"
    );
    // `status` shows the store and each cluster's newest copies.
    let status = rig.env.hostctl_ok(&["status"]);
    assert!(status.contains("backups: object store running"), "{status}");
    assert!(status.contains("backups app1: etcd "), "{status}");

    api.stop();
    rig.env.finish();
}

/// mgmt: the same, with Vault first. mgmt's Vault is a real OpenBao on
/// the host; its snapshot is taken with `hostctl vault snapshot`, a secret
/// is written after it, then mgmt is lost with its Vault, and the rebuilt
/// mgmt gets a new, empty OpenBao that `up` bootstraps with a new keyring.
/// The recovery's Vault step restores the snapshot into it and unseals it
/// with the old key: the secret from before the snapshot is back.
#[test]
fn a_lost_mgmt_gets_its_vault_back_first() {
    if !tests::can_run_netns("bootstrap") {
        return;
    }
    let _store = ONE_STORE.lock().unwrap_or_else(|e| e.into_inner());
    let mut rig = Rig::for_cluster(78, "mgmt");
    if with_backups(&mut rig).is_none() {
        return;
    }
    let Some((vault, var)) = tests::bootstrap::vault_for_up(rig.env.home(), "recover mgmt") else {
        return;
    };
    rig.vars.push(var);
    let api = rig.api();
    rig.up_ok();
    let keys = vault::KeyDir::new(host_agent::secrets::key_dir(rig.env.home()));
    let old_key = keys.read(vault::UNSEAL_KEY).expect("key").expect("a key");
    let admin = admin_client(&vault.address(), rig.env.home(), &keys);
    write_secret(&admin, "before");
    let vars: Vec<(&str, &str)> = rig
        .vars
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let out = rig.env.hostctl_with_env(&["vault", "snapshot"], &vars);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    write_secret(&admin, "after");

    // mgmt is lost, and its Vault with it; the rebuilt mgmt's Vault is new.
    api.stop();
    for node in [rig.cp.clone(), rig.worker.clone()] {
        rig.lose_machine(&node);
    }
    drop(vault);
    std::fs::remove_dir_all(rig.env.home().join("stand-ins/openbao")).expect("lose Vault's data");
    let (vault, var) = tests::bootstrap::vault_for_up(rig.env.home(), "recover mgmt").expect("bao");
    rig.vars.retain(|(k, _)| k != &var.0);
    rig.vars.push(var);
    let api = rig.api_with(cluster_state("mgmt"));
    let _velero = VeleroPlay::start(api.state.clone(), Vec::new());

    let (ok, first) = rig.recover_with_up(&["cluster", rig.cluster, "--within", "60"]);
    assert!(!ok, "the first Restore fails:\n{first}");
    assert!(first.contains("[4/8] Vault first"), "{first}");
    let (ok, second) = rig.recover_with_up(&["cluster", rig.cluster, "--within", "60"]);
    eprintln!("first run:\n{first}\nrerun:\n{second}");
    assert!(ok, "the rerun completes:\n{second}");
    assert!(second.contains("(RTO 2h: met)"), "{second}");

    // The old key is current again and opens the old data.
    assert_eq!(
        keys.read(vault::UNSEAL_KEY)
            .expect("key")
            .expect("a key")
            .expose(),
        old_key.expose()
    );
    let admin = admin_client(&vault.address(), rig.env.home(), &keys);
    assert!(
        read_secret(&admin, "before"),
        "the secret from before the snapshot"
    );
    assert!(!read_secret(&admin, "after"), "the secret from after it");

    api.stop();
    drop(vault);
    rig.env.finish();
}

/// hostctl's admin token against the Vault at `address` (the lab root).
fn admin_client(address: &str, home: &std::path::Path, keys: &vault::KeyDir) -> vault::VaultClient {
    let pki = certs::Pki::open(home).expect("pki");
    let ca = pki.lab_root().expect("lab root").cert_pem().to_owned();
    vault::VaultClient::new(address, &ca)
        .expect("client")
        .with_token(
            keys.read(vault::ADMIN_TOKEN)
                .expect("token")
                .expect("a token"),
        )
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn write_secret(admin: &vault::VaultClient, name: &str) {
    block_on(admin.write(
        &format!("/v1/secret/data/mgmt/{name}"),
        &json!({"data": {"written": name}}),
    ))
    .expect("write a secret");
}

fn read_secret(admin: &vault::VaultClient, name: &str) -> bool {
    block_on(admin.read(&format!("/v1/secret/data/mgmt/{name}")))
        .expect("read a secret")
        .is_some()
}
