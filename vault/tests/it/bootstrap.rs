//! The bootstrap's lifecycle on a real server: first run, second run,
//! restart, lost files.

use std::os::unix::fs::PermissionsExt;

use vault::{ADMIN_TOKEN, Change, ROOT_TOKEN, UNSEAL_KEY, VaultError};

use crate::lab::Fixture;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[tokio::test]
async fn first_run_configures_everything_and_a_second_run_changes_nothing() {
    let Some(f) = Fixture::start("first_run_configures_everything", &["app1", "app2"]) else {
        return;
    };
    let before = vault::status(&f.client()).await;
    // The server may still be starting: the bootstrap waits for it.
    let first = f.bootstrap().await;
    let c = &first.changes;
    assert_eq!(c[0], Change::Initialised, "{c:?}");
    assert_eq!(c[1], Change::Unsealed, "{c:?}");
    for expected in [
        Change::Config("/v1/sys/policies/acl/hostctl-admin".into()),
        Change::Config("/v1/sys/policies/acl/eso-app2".into()),
        Change::Config("/v1/auth/jwt-app1/role/eso".into()),
        Change::AdminToken,
        Change::RootTokenRevoked,
        Change::Mount("secret".into()),
        Change::AuthMount("jwt-app1".into()),
        Change::AuthMount("jwt-app2".into()),
        Change::Mount("pki_int".into()),
        Change::Intermediate,
        Change::Config("/v1/pki_int/roles/cert-manager".into()),
    ] {
        assert!(
            c.contains(&expected),
            "{expected:?} missing from {c:?} (status before: {before:?})"
        );
    }

    let dir = f.key_dir();
    assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    for name in [UNSEAL_KEY, ADMIN_TOKEN] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    assert!(
        !dir.join(ROOT_TOKEN).exists(),
        "the root token file outlives its revocation"
    );

    let second = f.bootstrap().await;
    assert!(
        second.is_empty(),
        "a second run changed {:?}",
        second.changes
    );

    let status = vault::status(&f.client()).await.expect("status");
    assert!(status.initialized && !status.sealed, "{status:?}");
    assert!(status.version.starts_with("2."), "{status:?}");
    // Nothing secret in what `hostctl status -o json` would print.
    let shown = serde_json::to_string(&status).unwrap();
    let admin = std::fs::read_to_string(dir.join(ADMIN_TOKEN)).unwrap();
    assert!(!shown.contains(admin.trim()), "{shown}");
}

#[tokio::test]
async fn a_restarted_vault_is_sealed_and_the_unseal_path_opens_it() {
    let Some(mut f) = Fixture::start("a_restarted_vault_is_sealed", &["app1"]) else {
        return;
    };
    f.bootstrap().await;
    f.bao.restart().expect("restart");
    let client = f.client();
    let sealed = vault::wait_ready(&client, f.config.wait)
        .await
        .expect("back");
    assert!(sealed.initialized && sealed.sealed, "{sealed:?}");

    let keys = vault::KeyDir::new(f.key_dir());
    assert!(
        vault::unseal(&client, &keys).await.expect("unseal"),
        "it was sealed"
    );
    assert!(!vault::status(&client).await.unwrap().sealed);
    assert!(
        !vault::unseal(&client, &keys).await.expect("again"),
        "already unsealed"
    );

    // After another restart the bootstrap itself unseals, and that is all.
    f.bao.restart().expect("restart");
    let report = f.bootstrap().await;
    assert_eq!(report.changes, vec![Change::Unsealed]);
}

#[tokio::test]
async fn a_lost_unseal_key_or_admin_token_is_an_error_naming_the_file() {
    let Some(mut f) = Fixture::start("a_lost_unseal_key_is_an_error", &["app1"]) else {
        return;
    };
    f.bootstrap().await;
    let dir = f.key_dir();

    let admin = dir.join(ADMIN_TOKEN);
    let saved = std::fs::read(&admin).unwrap();
    std::fs::remove_file(&admin).unwrap();
    let err = f.try_bootstrap().await.expect_err("no token left");
    assert!(matches!(err, VaultError::NoToken { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&admin.display().to_string()) && msg.contains("generate-root"),
        "{msg}"
    );
    std::fs::write(&admin, saved).unwrap();
    std::fs::set_permissions(&admin, std::fs::Permissions::from_mode(0o600)).unwrap();

    let key = dir.join(UNSEAL_KEY);
    std::fs::remove_file(&key).unwrap();
    f.bao.restart().expect("restart");
    let err = f.try_bootstrap().await.expect_err("no key");
    assert!(
        matches!(err, VaultError::UnsealKeyMissing { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&key.display().to_string()) && msg.contains("restore"),
        "{msg}"
    );
    assert!(msg.contains("never re-initialises"), "{msg}");
    let status = vault::status(&f.client()).await.unwrap();
    assert!(status.initialized && status.sealed, "untouched: {status:?}");
    let err = vault::unseal(&f.client(), &vault::KeyDir::new(&dir))
        .await
        .expect_err("no key");
    assert!(
        err.to_string().contains(&key.display().to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn secrets_never_show_in_debug_output() {
    let Some(f) = Fixture::start("secrets_never_show_in_debug_output", &["app1"]) else {
        return;
    };
    f.bootstrap().await;
    let keys = vault::KeyDir::new(f.key_dir());
    for name in [UNSEAL_KEY, ADMIN_TOKEN] {
        let secret = keys.read(name).unwrap().expect(name);
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(format!("{secret}"), "<redacted>");
        let client = format!("{:?}", f.client().with_token(secret.clone()));
        assert!(!client.contains(secret.expose()), "{client}");
    }
    let report = format!("{:?}", f.bootstrap().await);
    let admin = keys.read(ADMIN_TOKEN).unwrap().unwrap();
    assert!(!report.contains(admin.expose()), "{report}");
}

#[tokio::test]
async fn a_wiped_vault_is_initialised_again_and_the_old_files_are_kept_aside() {
    let Some(mut f) = Fixture::start("a_wiped_vault_is_initialised_again", &["app1"]) else {
        return;
    };
    f.bootstrap().await;
    let dir = f.key_dir();
    let old_key = std::fs::read_to_string(dir.join(UNSEAL_KEY)).unwrap();
    // The storage is lost (a new PV): the server comes back uninitialised.
    let data = f.bao.dir.join("data");
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    f.bao.restart().expect("restart");

    let report = f.bootstrap().await;
    let aside: Vec<&String> = report
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::SetAside(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(
        aside.len(),
        2,
        "unseal key and admin token: {:?}",
        report.changes
    );
    let kept = aside
        .iter()
        .find(|p| p.contains(&format!("{UNSEAL_KEY}.replaced-")))
        .expect("the old key is kept");
    assert_eq!(std::fs::read_to_string(kept).unwrap(), old_key);
    assert_eq!(mode(std::path::Path::new(kept.as_str())), 0o600);
    assert!(
        report.changes.contains(&Change::Initialised),
        "{:?}",
        report.changes
    );
    assert_ne!(
        std::fs::read_to_string(dir.join(UNSEAL_KEY)).unwrap(),
        old_key
    );
    assert!(f.bootstrap().await.is_empty());
}
