//! The intermediate Vault holds chains to the lab root, and cert-manager's
//! role (through its own JWT login) issues certificates that verify with
//! `openssl verify` against that root.

use std::path::Path;
use std::process::Command;

use hyper::Method;
use serde_json::json;
use vault::Secret;

use crate::lab::Fixture;

fn openssl_verify(dir: &Path, root: &str, intermediate: &str, leaf: Option<&str>) -> String {
    std::fs::write(dir.join("root.pem"), root).unwrap();
    std::fs::write(dir.join("int.pem"), intermediate).unwrap();
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir).args(["verify", "-CAfile", "root.pem"]);
    match leaf {
        Some(leaf) => {
            std::fs::write(dir.join("leaf.pem"), leaf).unwrap();
            cmd.args(["-untrusted", "int.pem", "leaf.pem"]);
        }
        None => {
            cmd.arg("int.pem");
        }
    }
    let out = cmd.output().expect("openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openssl verify failed: {text}");
    text
}

#[tokio::test]
async fn the_intermediate_and_issued_certificates_chain_to_the_lab_root() {
    let Some(f) = Fixture::start("the_intermediate_chains_to_the_lab_root", &["app1"]) else {
        return;
    };
    f.bootstrap().await;
    let issuer = f
        .admin()
        .call(Method::GET, "/v1/pki_int/issuer/default", None)
        .await
        .expect("default issuer");
    let intermediate = issuer["data"]["certificate"]
        .as_str()
        .expect("certificate")
        .to_owned();
    let dir = f.bao.dir.join("verify");
    std::fs::create_dir_all(&dir).unwrap();
    openssl_verify(&dir, f.root.pem(), &intermediate, None);

    // cert-manager logs in with its own service account and signs a CSR.
    let client = f.client();
    let jwt = f.clusters[0].token("cert-manager", "cert-manager-vault");
    let login = client
        .write(
            "/v1/auth/jwt-app1/login",
            &json!({"role": "cert-manager", "jwt": jwt}),
        )
        .await
        .expect("cert-manager login");
    let cm = client.with_token(Secret::new(login["auth"]["client_token"].as_str().unwrap()));
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["web.lab.local".to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "web.lab.local");
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let signed = cm
        .write(
            "/v1/pki_int/sign/cert-manager",
            &json!({"csr": csr, "common_name": "web.lab.local", "ttl": "24h"}),
        )
        .await
        .unwrap_or_else(|e| panic!("sign: {e}\n{}", f.bao.log()));
    let leaf = signed["data"]["certificate"].as_str().expect("leaf");
    openssl_verify(&dir, f.root.pem(), &intermediate, Some(leaf));

    // Outside the allowed domains: refused.
    let mut params = rcgen::CertificateParams::new(vec!["evil.example.com".to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let evil = params.serialize_request(&key).unwrap().pem().unwrap();
    let outside = cm
        .send(
            Method::POST,
            "/v1/pki_int/sign/cert-manager",
            Some(&json!({"csr": evil, "common_name": "evil.example.com"})),
        )
        .await
        .unwrap();
    assert_eq!(outside.status, 400, "{:?}", outside.body);
    // cert-manager's token cannot read KV.
    let kv = cm
        .send(Method::GET, "/v1/secret/data/app1/db", None)
        .await
        .unwrap();
    assert_eq!(kv.status, 403);
}

#[tokio::test]
async fn a_new_lab_root_re_signs_the_intermediate_and_makes_it_the_default() {
    let Some(mut f) = Fixture::start("a_new_lab_root_re_signs_the_intermediate", &["app1"]) else {
        return;
    };
    f.bootstrap().await;
    f.root = crate::lab::LabRoot::new("hostctl test lab root, rotated");
    let report = f.bootstrap().await;
    assert_eq!(report.changes, vec![vault::Change::Intermediate]);
    let issuer = f
        .admin()
        .call(Method::GET, "/v1/pki_int/issuer/default", None)
        .await
        .expect("default issuer");
    let intermediate = issuer["data"]["certificate"].as_str().expect("certificate");
    let dir = f.bao.dir.join("verify");
    std::fs::create_dir_all(&dir).unwrap();
    openssl_verify(&dir, f.root.pem(), intermediate, None);
    assert!(f.bootstrap().await.is_empty(), "settled");
}
