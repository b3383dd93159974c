//! Raft snapshots on a real server: streamed to a 0600 file with its
//! SHA-256, cut off past the bound with nothing left, and refused (403)
//! for a token without the permission, again with nothing left.

use std::os::unix::fs::PermissionsExt;

use vault::VaultError;

use crate::lab::Fixture;

#[tokio::test]
async fn a_snapshot_streams_to_a_private_file_and_the_bound_and_refusals_leave_nothing() {
    let Some(f) = Fixture::start("raft snapshots", &["app1"]) else {
        return;
    };
    f.bootstrap().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("vault.snap");
    let listing = || std::fs::read_dir(dir.path()).expect("dir").count();

    match vault::snapshot::save(&f.admin(), &dest, 64).await {
        Err(VaultError::TooLarge { limit: 64, .. }) => {}
        other => panic!("expected the 64-byte bound to cut it off, got {other:?}"),
    }
    assert_eq!(listing(), 0, "a cut-off snapshot leaves no file");

    let nobody = f.client().with_token(vault::Secret::new("not-a-token"));
    let refused = vault::snapshot::save(&nobody, &dest, 1 << 30).await;
    assert_eq!(
        refused.as_ref().err().and_then(VaultError::status),
        Some(403),
        "{refused:?}"
    );
    assert_eq!(listing(), 0, "a refused snapshot leaves no file");

    let saved = vault::snapshot::save(&f.admin(), &dest, 1 << 30)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", f.bao.log()));
    let bytes = std::fs::read(&dest).expect("snapshot");
    assert_eq!(saved.size, bytes.len() as u64);
    assert!(saved.size > 64);
    assert_eq!(&bytes[..2], [0x1f, 0x8b], "a gzip tar");
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(saved.sha256, hex);
    let mode = std::fs::metadata(&dest).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(listing(), 1, "no part file beside it");
}
