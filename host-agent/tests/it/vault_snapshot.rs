//! mgmt's Vault snapshotted into the host's store and restored, against a
//! **real OpenBao** (raft storage, TLS under the home's lab root,
//! bootstrapped by hostctl) and a **real Garage** (set up by hostctl's
//! `storage up`): the snapshot lands in the `vault` bucket with the digest
//! it streamed with; a secret written after it is gone once it is restored
//! with `snapshot-force` while one written before is there (a real round
//! trip, not an echo). A token without hostctl's policy is refused with
//! 403 and leaves no file; a copy damaged in the store is refused before
//! anything reaches Vault.

use crate::storage_garage::{Fixture, fixture};
use host_agent::secrets::{self, VaultTarget};
use host_agent::storage::error::StorageError;
use host_agent::storage::plan::VAULT_BUCKET;
use host_agent::storage::sigv4::{self, Signer, Unsigned};
use host_agent::storage::vault_snapshot::{self, VaultSnapshotError};
use host_agent::storage::{offsite, s3::S3};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use test_support::openbao::{Bao, bao_or_skip, start_under_lab_root};
use vault::{Secret, VaultClient, WaitPolicy};

const WAIT: WaitPolicy = WaitPolicy {
    deadline: Duration::from_secs(120),
    interval: Duration::from_millis(200),
};

/// Both servers, hostctl's admin token, and an orphan token with only
/// Vault's `default` policy (made with the root token before the bootstrap
/// revokes it).
struct Lab {
    store: Fixture,
    home: tempfile::TempDir,
    server: Bao,
    admin: VaultClient,
    outsider: VaultClient,
    s3: S3,
    _dir: tempfile::TempDir,
}

async fn lab(test: &str) -> Option<Lab> {
    let bao = bao_or_skip(test)?;
    let store = fixture(test)?;
    store.storage.up().await.expect("storage up");
    let s3 = store.storage.host_client().unwrap();
    let (home, pki) = test_support::kube_api::pki();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = start_under_lab_root(&bao, dir.path(), &pki).unwrap();
    let resolved = topology::default_topology().resolve(None).unwrap();
    let target = VaultTarget::locate(&resolved, &pki, Some(server.address())).unwrap();
    let client = target.client().unwrap();

    // Initialised as the bootstrap would, keeping root long enough for
    // the outsider's token; the bootstrap then carries on from the files.
    vault::wait_ready(&client, WAIT).await.unwrap();
    let init = client
        .call(
            http::Method::PUT,
            "/v1/sys/init",
            Some(&json!({"secret_shares": 1, "secret_threshold": 1})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let keys = vault::KeyDir::new(secrets::key_dir(home.path()));
    keys.ensure().unwrap();
    let secret = |v: &serde_json::Value| Secret::new(v.as_str().unwrap());
    keys.write(vault::UNSEAL_KEY, &secret(&init["keys_base64"][0]))
        .unwrap();
    keys.write(vault::ROOT_TOKEN, &secret(&init["root_token"]))
        .unwrap();
    vault::unseal(&client, &keys).await.unwrap();
    let root = client.with_token(secret(&init["root_token"]));
    let body = json!({"policies": ["default"], "no_parent": true, "ttl": "1h"});
    let created = eventually("the outsider's token", || async {
        root.write("/v1/auth/token/create", &body).await.ok()
    })
    .await;
    let outsider = client.with_token(secret(&created["auth"]["client_token"]));

    secrets::bootstrap(&resolved, &pki, home.path(), &target, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", server.log()));
    let admin = client.with_token(keys.read(vault::ADMIN_TOKEN).unwrap().unwrap());
    Some(Lab {
        store,
        home,
        server,
        admin,
        outsider,
        s3,
        _dir: dir,
    })
}

/// Polls `probe` (bounded, generous: a loaded machine) until it answers.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    probe: impl Fn() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn put(admin: &VaultClient, name: &str) {
    let path = format!("/v1/secret/data/mgmt/{name}");
    admin
        .write(&path, &json!({"data": {"written": name}}))
        .await
        .unwrap();
}

/// The secret's value, `None` when Vault says it does not exist; waits
/// while Vault is not answering (it reloads after a restore).
async fn get(admin: &VaultClient, name: &str) -> Option<String> {
    let path = format!("/v1/secret/data/mgmt/{name}");
    eventually(&format!("Vault to answer for {name}"), || async {
        admin.read(&path).await.ok()
    })
    .await
    .map(|v| v["data"]["data"]["written"].as_str().unwrap().to_owned())
}

/// Stores `body` as `key` recording `claimed` as its digest (a signed
/// `PUT` as hostctl's own, but with a digest that is not the body's).
async fn plant(s3: &S3, key: &str, body: Vec<u8>, claimed: &str) {
    use sha2::Digest;
    let actual = hex::encode(sha2::Sha256::digest(&body));
    let path = sigv4::encode_path(VAULT_BUCKET, key);
    let (host, length) = (s3.endpoint.to_string(), body.len().to_string());
    let date = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let headers = [
        ("host", host.as_str()),
        ("content-length", length.as_str()),
        ("x-amz-content-sha256", actual.as_str()),
        ("x-amz-date", date.as_str()),
        ("x-amz-meta-sha256", claimed),
    ];
    let authorization = Signer {
        access_key_id: &s3.access_key_id,
        secret_access_key: &s3.secret_access_key,
        region: &s3.region,
    }
    .authorization(&Unsigned {
        method: "PUT",
        path: &path,
        query: &[],
        headers: &headers,
        amz_date: &date,
        payload_sha256: &actual,
    });
    let mut request = hyper::Request::put(path).header("authorization", authorization);
    for (k, v) in headers {
        request = request.header(k, v);
    }
    let request = request
        .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(s3.endpoint).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let answer = sender.send_request(request).await.unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_snapshot_is_taken_when_due_and_not_again_until_it_is() {
    let Some(lab) = lab("scheduled Vault snapshot").await else {
        return;
    };
    let now = jiff::Timestamp::now();
    let first = vault_snapshot::take_if_due(&lab.admin, &lab.s3, lab.home.path(), now)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.server.log()))
        .expect("due without a copy");
    let stored = vault_snapshot::list(&lab.s3).await.unwrap();
    assert_eq!(
        stored.last().map(|e| e.key.as_str()),
        Some(first.key.as_str())
    );
    let soon = now
        .checked_add(jiff::SignedDuration::from_mins(30))
        .unwrap();
    let again = vault_snapshot::take_if_due(&lab.admin, &lab.s3, lab.home.path(), soon)
        .await
        .unwrap();
    assert!(again.is_none(), "taken again after 30 min: {again:?}");
    assert_eq!(
        vault_snapshot::list(&lab.s3).await.unwrap().len(),
        stored.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_is_stored_with_its_hash_and_restoring_it_undoes_later_writes() {
    let Some(lab) = lab("Vault snapshot round trip").await else {
        return;
    };
    put(&lab.admin, "before").await;
    // A host copy an earlier run failed to upload (its bytes do not matter
    // here): it goes up with the next snapshot.
    let dir = vault_snapshot::dir(lab.home.path());
    std::fs::create_dir_all(&dir).unwrap();
    let earlier = dir.join("20000101T000000Z.snap");
    std::fs::write(&earlier, b"an earlier snapshot").unwrap();
    let at = jiff::Timestamp::now();
    let taken = vault_snapshot::take(&lab.admin, &lab.s3, lab.home.path(), at, 7)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.server.log()));
    assert_eq!(taken.key, format!("mgmt/{}", vault_snapshot::file_name(at)));
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&taken.file), 0o600);
    let both = [earlier.clone(), taken.file.clone()];
    assert_eq!(files_in(&dir), both, "no part file left");
    let bytes = std::fs::read(&taken.file).unwrap();
    assert_eq!(&bytes[..2], [0x1f, 0x8b], "a gzip tar, as Vault sends it");
    assert_eq!(
        offsite::digest_file(&taken.file).await.unwrap(),
        (taken.size, taken.sha256.clone())
    );
    let head = lab.s3.head(VAULT_BUCKET, &taken.key).await.unwrap();
    let head = head.expect("the snapshot is in the bucket");
    assert_eq!(
        (head.size, head.sha256.as_deref()),
        (taken.size, Some(taken.sha256.as_str()))
    );
    let listed = vault_snapshot::list(&lab.s3).await.unwrap();
    assert_eq!(
        listed.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
        ["mgmt/20000101T000000Z.snap", taken.key.as_str()]
    );

    put(&lab.admin, "after").await;
    assert_eq!(get(&lab.admin, "after").await.as_deref(), Some("after"));
    let restored = vault_snapshot::restore(&lab.admin, &lab.s3, lab.home.path(), None)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.server.log()));
    assert_eq!(
        (restored.key.as_str(), restored.sha256.as_str()),
        (taken.key.as_str(), taken.sha256.as_str()),
        "the newest is restored"
    );
    assert_eq!(get(&lab.admin, "before").await.as_deref(), Some("before"));
    assert_eq!(
        get(&lab.admin, "after").await,
        None,
        "written after the snapshot"
    );
    assert_eq!(
        files_in(&dir),
        both,
        "the verified download is removed after the restore"
    );
    assert_eq!(
        lab.store
            .storage
            .status()
            .await
            .copies
            .iter()
            .find(|c| c.kind == "vault")
            .map(|c| (c.newest.clone(), c.state.as_str())),
        Some((Some(taken.key.clone()), "ok")),
        "storage status sees the snapshot against the RPO"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_the_policy_and_a_damaged_copy_are_refused_and_change_nothing() {
    let Some(lab) = lab("Vault snapshot refusals").await else {
        return;
    };
    let dir = vault_snapshot::dir(lab.home.path());
    let now = jiff::Timestamp::now();
    match vault_snapshot::take(&lab.outsider, &lab.s3, lab.home.path(), now, 7).await {
        Err(VaultSnapshotError::Vault(e)) => assert_eq!(e.status(), Some(403), "{e}"),
        other => panic!("expected 403, got {other:?}"),
    }
    assert!(files_in(&dir).is_empty(), "left {:?}", files_in(&dir));
    assert!(vault_snapshot::list(&lab.s3).await.unwrap().is_empty());

    let taken = vault_snapshot::take(&lab.admin, &lab.s3, lab.home.path(), now, 7)
        .await
        .unwrap();
    put(&lab.admin, "after").await;
    // A copy whose bytes are not those recorded with it: hostctl's own
    // check refuses it (Garage checked only that the body matched what
    // the writer signed).
    let mut bytes = std::fs::read(&taken.file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    plant(&lab.s3, &taken.key, bytes, &taken.sha256).await;
    let refused = vault_snapshot::restore(&lab.admin, &lab.s3, lab.home.path(), None).await;
    assert!(
        matches!(
            refused,
            Err(VaultSnapshotError::Storage(
                StorageError::HashMismatch { .. }
            ))
        ),
        "{refused:?}"
    );
    assert_eq!(get(&lab.admin, "after").await.as_deref(), Some("after"));
    assert_eq!(
        files_in(&dir),
        std::slice::from_ref(&taken.file),
        "the bad copy is deleted"
    );

    // Bit rot in the store: every block Garage keeps is damaged.
    let mut damaged = 0;
    let mut stack = vec![lab.store.storage.layout.data()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let mut bytes = std::fs::read(&path).unwrap();
                let middle = bytes.len() / 2;
                for b in bytes.iter_mut().skip(middle).take(64) {
                    *b ^= 0xff;
                }
                std::fs::write(&path, bytes).unwrap();
                damaged += 1;
            }
        }
    }
    assert!(damaged > 0, "the snapshot is stored in blocks");
    // Garage finds its blocks damaged and breaks off the transfer.
    let refused = vault_snapshot::restore(&lab.admin, &lab.s3, lab.home.path(), None).await;
    assert!(
        matches!(refused, Err(VaultSnapshotError::Storage(_))),
        "{refused:?}"
    );
    assert_eq!(
        get(&lab.admin, "after").await.as_deref(),
        Some("after"),
        "Vault was not touched"
    );
    assert_eq!(files_in(&dir), [taken.file], "nothing of the download left");
}

#[test]
fn restoring_without_yes_is_refused_and_says_which_unseal_key() {
    let home = tempfile::tempdir().unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hostctl"))
        .arg("--home")
        .arg(home.path())
        .args(["vault", "restore-snapshot"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--yes")
            && err.contains("unseal key of the Vault the snapshot was taken from"),
        "{err}"
    );
}
