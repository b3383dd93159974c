//! Vault's PKI as an intermediate CA under the lab root hostctl keeps, so
//! the trust bundles clusters already have stay valid when issuance moves
//! to Vault (C5 phase 2). The root key never enters Vault: Vault makes the
//! key and CSR (`intermediate/generate/internal`), hostctl's [`RootSigner`]
//! signs it, Vault imports the certificate with the root
//! (`intermediate/set-signed`). Skipped when the default issuer already
//! chains to the same root.

use serde_json::{Value, json};

use super::{Table, ensure_fields, ensure_mount};
use crate::client::VaultClient;
use crate::error::VaultError;
use crate::report::{Change, Report};

/// The PKI mount.
pub const PKI_PATH: &str = "pki_int";
/// cert-manager's role on it.
pub const PKI_ROLE: &str = "cert-manager";

/// hostctl's lab root, as the bootstrap needs it.
pub trait RootSigner: Send + Sync {
    /// The root certificate (PEM), to check an installed chain against.
    fn root_pem(&self) -> Result<String, String>;
    /// Signs Vault's intermediate CSR as a CA certificate (path length 0)
    /// and returns it (PEM).
    fn sign_intermediate(&self, csr_pem: &str) -> Result<String, String>;
}

/// What the PKI step configures.
#[derive(Debug, Clone)]
pub struct PkiConfig {
    /// The intermediate's common name.
    pub common_name: String,
    /// The mount's maximum lease (seconds), bounding every certificate.
    pub max_lease_ttl_secs: u64,
    /// Domains cert-manager may request (and their subdomains).
    pub allowed_domains: Vec<String>,
    /// The longest certificate the role issues (seconds).
    pub role_max_ttl_secs: u64,
    /// Vault's externally reachable address, for the AIA/CRL URLs in issued
    /// certificates (`None`: no URLs).
    pub public_address: Option<String>,
}

impl Default for PkiConfig {
    fn default() -> Self {
        PkiConfig {
            common_name: "hostctl lab intermediate (Vault)".into(),
            max_lease_ttl_secs: 365 * 24 * 3600,
            allowed_domains: vec!["lab.local".into(), "svc".into(), "cluster.local".into()],
            role_max_ttl_secs: 30 * 24 * 3600,
            public_address: None,
        }
    }
}

/// The mount, the intermediate, the URLs and cert-manager's role.
pub async fn ensure_pki(
    client: &VaultClient,
    config: &PkiConfig,
    signer: &dyn RootSigner,
    report: &mut Report,
) -> Result<(), VaultError> {
    let mount = json!({"type": "pki", "description": "hostctl: intermediate CA under the lab root",
                       "config": {"max_lease_ttl": format!("{}s", config.max_lease_ttl_secs)}});
    ensure_mount(client, Table::Secrets, PKI_PATH, &mount, report).await?;
    let tune = json!({"max_lease_ttl": config.max_lease_ttl_secs});
    ensure_fields(
        client,
        &format!("/v1/sys/mounts/{PKI_PATH}/tune"),
        &tune,
        report,
    )
    .await?;
    let root = signer.root_pem().map_err(VaultError::Signer)?;
    let root_der = ders(&root)?
        .into_iter()
        .next()
        .ok_or_else(|| VaultError::Signer("the lab root PEM holds no certificate".into()))?;
    if !chains_to(client, &root_der).await? {
        install_intermediate(client, config, signer, &root, &root_der).await?;
        report.push(Change::Intermediate);
    }
    if let Some(address) = &config.public_address {
        let base = address.trim_end_matches('/');
        let urls = json!({
            "issuing_certificates": [format!("{base}/v1/{PKI_PATH}/ca")],
            "crl_distribution_points": [format!("{base}/v1/{PKI_PATH}/crl")],
        });
        ensure_fields(
            client,
            &format!("/v1/{PKI_PATH}/config/urls"),
            &urls,
            report,
        )
        .await?;
    }
    let role = json!({
        "allowed_domains": config.allowed_domains,
        "allow_subdomains": true,
        "allow_bare_domains": true,
        "max_ttl": config.role_max_ttl_secs,
        // cert-manager sends CSRs with RSA keys by default, EC on request.
        "key_type": "any",
        "require_cn": false,
    });
    ensure_fields(
        client,
        &format!("/v1/{PKI_PATH}/roles/{PKI_ROLE}"),
        &role,
        report,
    )
    .await
}

/// Whether the default issuer exists, is not the root itself, and carries
/// the root in its chain.
async fn chains_to(client: &VaultClient, root_der: &[u8]) -> Result<bool, VaultError> {
    let path = format!("/v1/{PKI_PATH}/issuer/default");
    let answer = client.send(hyper::Method::GET, &path, None).await?;
    match answer.status {
        200..300 => {}
        // Vault answers 500 ("no default issuer") as well as 404 before the
        // first import.
        400 | 404 | 500 => return Ok(false),
        _ => {
            return Err(crate::client::api_error(
                &hyper::Method::GET,
                &path,
                &answer,
            ));
        }
    }
    let data = &answer.body["data"];
    let own = ders(data["certificate"].as_str().unwrap_or_default())?;
    if own.first().is_none_or(|c| c == root_der) {
        return Ok(false);
    }
    let mut chain = Vec::new();
    for pem in data["ca_chain"].as_array().into_iter().flatten() {
        chain.extend(ders(pem.as_str().unwrap_or_default())?);
    }
    Ok(chain.iter().any(|c| c == root_der))
}

async fn install_intermediate(
    client: &VaultClient,
    config: &PkiConfig,
    signer: &dyn RootSigner,
    root_pem: &str,
    root_der: &[u8],
) -> Result<(), VaultError> {
    let generate = json!({"common_name": config.common_name, "key_type": "ec", "key_bits": 256});
    let csr = client
        .write(
            &format!("/v1/{PKI_PATH}/intermediate/generate/internal"),
            &generate,
        )
        .await?;
    let csr = csr["data"]["csr"]
        .as_str()
        .ok_or_else(|| VaultError::Decode {
            method: "POST".into(),
            path: format!("/v1/{PKI_PATH}/intermediate/generate/internal"),
            reason: "no data.csr in the answer".into(),
        })?;
    let cert = signer.sign_intermediate(csr).map_err(VaultError::Signer)?;
    let bundle = json!({"certificate": format!("{}\n{}\n", cert.trim(), root_pem.trim())});
    let imported = client
        .write(&format!("/v1/{PKI_PATH}/intermediate/set-signed"), &bundle)
        .await?;
    // set-signed makes the new issuer the default only when there was none;
    // on a re-sign (a new lab root) hostctl points the default at it.
    for id in imported["data"]["imported_issuers"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(id) = id.as_str() else { continue };
        let issuer = client
            .read(&format!("/v1/{PKI_PATH}/issuer/{id}"))
            .await?
            .unwrap_or(Value::Null);
        let der = ders(issuer["data"]["certificate"].as_str().unwrap_or_default())?;
        if der.first().is_some_and(|c| c != root_der) {
            let body = json!({"default": id});
            client
                .write(&format!("/v1/{PKI_PATH}/config/issuers"), &body)
                .await?;
        }
    }
    Ok(())
}

/// The DER of every certificate in `pem_text`.
fn ders(pem_text: &str) -> Result<Vec<Vec<u8>>, VaultError> {
    let blocks = pem::parse_many(pem_text).map_err(|e| VaultError::Decode {
        method: "GET".into(),
        path: format!("/v1/{PKI_PATH}"),
        reason: format!("a certificate is not PEM: {e}"),
    })?;
    Ok(blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.into_contents())
        .collect())
}
