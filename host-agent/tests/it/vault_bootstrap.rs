//! hostctl's Vault hook against a REAL Vault-API server (OpenBao's `bao`,
//! serving a certificate under the home's lab root, as mgmt's Vault does
//! with its phase-1 certificate): the bootstrap initialises, unseals and
//! configures it with the topology's clusters and the lab root as the
//! signer; the key files are private; a second run changes nothing; after
//! a restart the same call only unseals; the intermediate chains to the
//! lab root; and `hostctl vault status` shows the state and no secret.

use host_agent::daemon::vault_watch::{self, Look};
use host_agent::secrets::{self, VaultTarget};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;
use test_support::kube_api::pki;
use test_support::openbao::{bao_or_skip, start_under_lab_root};
use vault::{Change, WaitPolicy};

const WAIT: WaitPolicy = WaitPolicy {
    deadline: Duration::from_secs(120),
    interval: Duration::from_millis(200),
};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_hook_bootstraps_a_real_vault_idempotently_and_unseals_it_after_a_restart() {
    let Some(bao) = bao_or_skip("vault bootstrap hook") else {
        return;
    };
    let (home, pki) = pki();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_under_lab_root(&bao, dir.path(), &pki).unwrap();
    let resolved = topology::default_topology().resolve(None).unwrap();
    let target = VaultTarget::locate(&resolved, &pki, Some(server.address())).unwrap();
    assert_eq!(
        target.ca_pem,
        pki.lab_root().unwrap().cert_pem(),
        "trusts the lab root only"
    );

    let first = secrets::bootstrap(&resolved, &pki, home.path(), &target, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", server.log()));
    for want in [
        Change::Initialised,
        Change::Unsealed,
        Change::Intermediate,
        Change::RootTokenRevoked,
    ] {
        assert!(
            first.changes.contains(&want),
            "{want:?} missing from {first}"
        );
    }
    for cluster in ["mgmt", "app1", "app2"] {
        assert!(
            first
                .changes
                .contains(&Change::AuthMount(format!("jwt-{cluster}"))),
            "no JWT mount for {cluster}: {first}"
        );
    }
    let keys = secrets::key_dir(home.path());
    assert_eq!(mode(&keys), 0o700);
    for file in [vault::UNSEAL_KEY, vault::ADMIN_TOKEN] {
        assert_eq!(mode(&keys.join(file)), 0o600, "{file}");
    }
    assert!(!keys.join(vault::ROOT_TOKEN).exists(), "root token kept");

    // Each cluster's sample secret is seeded for its sample ExternalSecret.
    for cluster in ["mgmt", "app1", "app2"] {
        assert!(
            first
                .changes
                .contains(&Change::Config(format!("/v1/secret/data/{cluster}/sample"))),
            "{cluster}'s sample not seeded: {first}"
        );
    }
    let second = secrets::bootstrap(&resolved, &pki, home.path(), &target, WAIT)
        .await
        .unwrap();
    assert!(second.is_empty(), "a second run changed: {second}");

    // The intermediate Vault issues from chains to the lab root.
    let client = target.client().unwrap();
    let admin = vault::KeyDir::new(&keys)
        .read(vault::ADMIN_TOKEN)
        .unwrap()
        .expect("admin token");
    let issuer = client
        .with_token(admin)
        .call(http::Method::GET, "/v1/pki_int/issuer/default", None)
        .await
        .unwrap();
    let intermediate = issuer["data"]["certificate"].as_str().unwrap();
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("root.pem"), &target.ca_pem).unwrap();
    std::fs::write(files.path().join("int.pem"), intermediate).unwrap();
    let out = Command::new("openssl")
        .current_dir(files.path())
        .args(["verify", "-x509_strict", "-CAfile", "root.pem", "int.pem"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A restart leaves it sealed; the hook's next run only unseals.
    server.restart().unwrap();
    let sealed = vault::wait_ready(&client, WAIT).await.unwrap();
    assert!(sealed.sealed, "{sealed:?}");
    let third = secrets::bootstrap(&resolved, &pki, home.path(), &target, WAIT)
        .await
        .unwrap();
    assert_eq!(third.changes, [Change::Unsealed], "{third}");

    // The daemon's watcher: after a restart it finds Vault sealed and
    // unseals it; then all is fine; without the key file it leaves it be.
    server.restart().unwrap();
    vault::wait_ready(&client, WAIT).await.unwrap();
    let key_dir = vault::KeyDir::new(&keys);
    assert_eq!(vault_watch::look(&target, &key_dir).await, Look::Unsealed);
    assert_eq!(vault_watch::look(&target, &key_dir).await, Look::Fine);
    let elsewhere = vault::KeyDir::new(tempfile::tempdir().unwrap().path().join("vault"));
    assert_eq!(vault_watch::look(&target, &elsewhere).await, Look::NoKey);

    // And by hand: `hostctl vault status` sees it sealed after a restart,
    // `hostctl vault unseal` opens it; no secret in the output.
    server.restart().unwrap();
    vault::wait_ready(&client, WAIT).await.unwrap();
    let hostctl = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_hostctl"))
            .arg("--home")
            .arg(home.path())
            .args(args)
            .env("HOSTCTL_VAULT_ADDRESS", server.address())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let status: serde_json::Value =
        serde_json::from_str(&hostctl(&["-o", "json", "vault", "status"])).unwrap();
    assert_eq!(status["initialized"], true, "{status}");
    assert_eq!(status["sealed"], true, "{status}");
    assert_eq!(status["address"], server.address().as_str());
    let said = hostctl(&["vault", "unseal"]);
    assert!(said.contains("unsealed"), "{said}");
    let status = hostctl(&["-o", "json", "vault", "status"]);
    assert!(status.contains("\"sealed\": false"), "{status}");
    let unseal_key = std::fs::read_to_string(keys.join(vault::UNSEAL_KEY)).unwrap();
    let admin_token = std::fs::read_to_string(keys.join(vault::ADMIN_TOKEN)).unwrap();
    for secret in [unseal_key.trim(), admin_token.trim()] {
        assert!(
            !status.contains(secret) && !said.contains(secret),
            "a secret was printed"
        );
    }
}
