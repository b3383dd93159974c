//! The lab root: created private with the rest of the PKI, stable across
//! opens, and the anchor of the CAs below it — checked with real OpenSSL,
//! down to a leaf signed by an intermediate (`-x509_strict`).

use crate::common::{TestResult, init, openssl, write, x509_text};
use certs::Pki;
use std::os::unix::fs::PermissionsExt;

/// A fresh P-256 key from OpenSSL (PEM), as another party makes one.
fn ec_key() -> Result<String, Box<dyn std::error::Error>> {
    let pem = openssl(
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ],
        b"",
    )?;
    Ok(String::from_utf8(pem)?)
}

#[test]
fn the_lab_root_is_created_private_and_kept_across_opens() -> TestResult {
    let (home, pki) = init()?;
    let root = pki.lab_root().ok_or("no lab root")?.cert_pem().to_owned();
    let dir = home.path().join("pki/lab");
    assert_eq!(std::fs::metadata(&dir)?.permissions().mode() & 0o777, 0o700);
    let key = std::fs::metadata(dir.join("ca.key"))?.permissions().mode() & 0o777;
    assert_eq!(key, 0o600);
    let again = Pki::open(home.path())?;
    assert_eq!(again.lab_root().ok_or("gone")?.cert_pem(), root);
    let text = x509_text(&root)?;
    assert!(text.contains("CA:TRUE, pathlen:1"), "{text}");
    Ok(())
}

#[test]
fn a_home_from_before_the_lab_root_opens_without_it() -> TestResult {
    let (home, _) = init()?;
    std::fs::remove_dir_all(home.path().join("pki/lab"))?;
    let pki = Pki::open(home.path())?;
    assert!(pki.lab_root().is_none());
    Ok(())
}

/// Signs a leaf with `ca_key` as openssl would for cert-manager, and checks
/// that `root` → `intermediate` → leaf verifies strictly.
fn leaf_chains(root: &str, intermediate: &str, ca_key: &str) -> TestResult {
    let dir = tempfile::tempdir()?;
    let p = |name: &str, text: &str| write(dir.path(), name, text);
    let (root_f, int_f, key_f) = (
        p("root.pem", root)?,
        p("int.pem", intermediate)?,
        p("int.key", ca_key)?,
    );
    let leaf_key = ec_key()?;
    let leaf_key_f = p("leaf.key", &leaf_key)?;
    let ext = p(
        "ext.cnf",
        "basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:vault.vault.svc\nextendedKeyUsage=serverAuth\n",
    )?;
    let csr = openssl(
        &[
            "req",
            "-new",
            "-key",
            &leaf_key_f.to_string_lossy(),
            "-subj",
            "/CN=vault.vault.svc",
        ],
        b"",
    )?;
    let leaf = openssl(
        &[
            "x509",
            "-req",
            "-CA",
            &int_f.to_string_lossy(),
            "-CAkey",
            &key_f.to_string_lossy(),
            "-days",
            "30",
            "-extfile",
            &ext.to_string_lossy(),
        ],
        &csr,
    )?;
    let leaf_f = p("leaf.pem", std::str::from_utf8(&leaf)?)?;
    let out = openssl(
        &[
            "verify",
            "-x509_strict",
            "-CAfile",
            &root_f.to_string_lossy(),
            "-untrusted",
            &int_f.to_string_lossy(),
            &leaf_f.to_string_lossy(),
        ],
        b"",
    )?;
    assert!(String::from_utf8(out)?.trim_end().ends_with(": OK"));
    Ok(())
}

#[test]
fn an_intermediate_for_a_cluster_chains_to_the_root_and_signs_leaves() -> TestResult {
    let (_home, pki) = init()?;
    let lab = pki.lab_root().ok_or("no lab root")?;
    let int = lab.issue_intermediate("hostctl app1 cert-manager CA")?;
    let text = x509_text(&int.cert_pem)?;
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    assert!(text.contains("Issuer: CN = hostctl lab root CA"), "{text}");
    leaf_chains(lab.cert_pem(), &int.cert_pem, int.key_pem.expose())?;
    // A second intermediate has its own key.
    let other = lab.issue_intermediate("hostctl app2 cert-manager CA")?;
    assert_ne!(other.key_pem.expose(), int.key_pem.expose());
    Ok(())
}

#[test]
fn a_csr_made_elsewhere_is_signed_as_an_intermediate_and_an_altered_one_is_refused() -> TestResult {
    let (_home, pki) = init()?;
    let lab = pki.lab_root().ok_or("no lab root")?;
    let dir = tempfile::tempdir()?;
    let key = ec_key()?;
    let key_f = write(dir.path(), "vault.key", &key)?;
    // The request asks to be anything; the root decides: CN and pathlen 0.
    let csr = openssl(
        &[
            "req",
            "-new",
            "-key",
            &key_f.to_string_lossy(),
            "-subj",
            "/CN=whatever I like",
        ],
        b"",
    )?;
    let csr = String::from_utf8(csr)?;
    let cert = lab.sign_intermediate_csr(&csr, "hostctl Vault intermediate CA")?;
    let text = x509_text(&cert)?;
    assert!(
        text.contains("Subject: CN = hostctl Vault intermediate CA"),
        "{text}"
    );
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    leaf_chains(lab.cert_pem(), &cert, &key)?;

    let block = pem::parse(&csr)?;
    let mut der = block.contents().to_vec();
    let at = der.len() / 3;
    der[at] ^= 0x01;
    let altered = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der));
    let err = lab
        .sign_intermediate_csr(&altered, "x")
        .expect_err("altered");
    assert!(err.to_string().contains("request"), "{err}");
    Ok(())
}
