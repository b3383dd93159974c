//! The host's side of Vault (issue 17, `docs/secrets.md`): where hostctl
//! reaches mgmt's Vault, what it trusts there (the lab root: Vault's
//! serving certificate comes from phase 1 of the PKI), what the bootstrap
//! is configured with (every cluster's service-account key for its JWT
//! mount, the lab root as the signer of Vault's intermediate) and where
//! the unseal key and tokens live (`$HOSTCTL_HOME/pki/vault/`, 0700/0600).
//! The `vault` crate does the talking.

use crate::cluster_config::cluster::MgmtService;
use certs::{LabRoot, Pki};
use std::path::{Path, PathBuf};
use topology::Resolved;
use vault::{BootstrapConfig, ClusterAuth, PkiConfig, RootSigner, VaultClient, WaitPolicy};

/// The issuer kubeadm gives every cluster's service-account tokens.
pub const SA_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// What can stop hostctl from reaching or configuring Vault.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The topology has no mgmt cluster or no address for Vault.
    #[error("Vault: {0}")]
    Topology(String),
    /// The PKI lacks what the bootstrap needs.
    #[error("Vault: the PKI at {path} has no {what}: run `hostctl up`, which creates it")]
    Pki { path: PathBuf, what: &'static str },
    #[error("Vault: the PKI")]
    Certs(#[from] certs::PkiError),
    #[error(transparent)]
    Vault(#[from] vault::VaultError),
}

/// `$HOSTCTL_VAULT_ADDRESS` when set and not empty: where the user points
/// hostctl instead of Vault's reserved address.
pub fn address_override() -> Option<String> {
    crate::environment::VAULT_ADDRESS
        .string()
        .filter(|a| !a.is_empty())
}

/// Where the unseal key, root token and admin token live.
pub fn key_dir(home: &Path) -> PathBuf {
    home.join("pki").join("vault")
}

/// mgmt's Vault as hostctl reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultTarget {
    /// `https://<reserved address>:8200`, or `$HOSTCTL_VAULT_ADDRESS`.
    pub address: String,
    /// The lab root, which Vault's certificate chains to.
    pub ca_pem: String,
}

impl VaultTarget {
    /// The target for `resolved`'s mgmt cluster with `pki`'s lab root;
    /// `address` overrides the reserved address.
    pub fn locate(
        resolved: &Resolved,
        pki: &Pki,
        address: Option<String>,
    ) -> Result<VaultTarget, SecretsError> {
        let address = match address {
            Some(a) => a,
            None => format!(
                "https://{}:{}",
                reserved_address(resolved)?,
                crate::addons::vault::PORT
            ),
        };
        Ok(VaultTarget {
            address,
            ca_pem: lab_root(pki)?.cert_pem().to_owned(),
        })
    }

    /// Where the user points hostctl (`HOSTCTL_VAULT_ADDRESS`), else the
    /// reserved address.
    pub fn from_env(resolved: &Resolved, pki: &Pki) -> Result<VaultTarget, SecretsError> {
        Self::locate(resolved, pki, address_override())
    }

    /// A client without a token.
    pub fn client(&self) -> Result<VaultClient, SecretsError> {
        Ok(VaultClient::new(&self.address, &self.ca_pem)?)
    }
}

/// Vault's URL as every cluster's issuer and secret store name it (the
/// mgmt cluster's reserved address).
pub fn vault_url(resolved: &Resolved) -> Result<String, SecretsError> {
    Ok(format!(
        "https://{}:{}",
        reserved_address(resolved)?,
        crate::addons::vault::PORT
    ))
}

/// The mgmt cluster's reserved Vault address.
pub fn reserved_address(resolved: &Resolved) -> Result<std::net::Ipv4Addr, SecretsError> {
    crate::cluster_config::cluster::mgmt_service_address(resolved, MgmtService::Vault)
        .map_err(SecretsError::Topology)
}

fn lab_root(pki: &Pki) -> Result<&LabRoot, SecretsError> {
    pki.lab_root().ok_or_else(|| SecretsError::Pki {
        path: pki.root().join("lab"),
        what: "lab root",
    })
}

/// The bootstrap's configuration: every cluster of the topology gets a JWT
/// mount on its own service-account key; Vault's issued certificates name
/// its address.
pub fn config(
    resolved: &Resolved,
    pki: &Pki,
    home: &Path,
    target: &VaultTarget,
    wait: WaitPolicy,
) -> Result<BootstrapConfig, SecretsError> {
    let mut clusters = Vec::new();
    for c in resolved.topology().clusters() {
        clusters.push(ClusterAuth {
            name: c.name.clone(),
            sa_public_key_pem: pki.cluster(&c.name)?.sa_pub_pem().to_owned(),
            issuer: SA_ISSUER.to_owned(),
        });
    }
    Ok(BootstrapConfig {
        key_dir: key_dir(home),
        clusters,
        pki: PkiConfig {
            public_address: Some(target.address.clone()),
            ..PkiConfig::default()
        },
        wait,
    })
}

/// The lab root as the signer of Vault's intermediate.
pub struct LabSigner<'a>(pub &'a LabRoot);

/// The common name of Vault's intermediate under the lab root.
pub const INTERMEDIATE_CN: &str = "hostctl lab intermediate (Vault)";

impl RootSigner for LabSigner<'_> {
    fn root_pem(&self) -> Result<String, String> {
        Ok(self.0.cert_pem().to_owned())
    }

    fn sign_intermediate(&self, csr_pem: &str) -> Result<String, String> {
        self.0
            .sign_intermediate_csr(csr_pem, INTERMEDIATE_CN)
            .map_err(|e| e.to_string())
    }
}

/// Bootstraps (or checks and repairs) Vault, then seeds each cluster's
/// sample secret (what its sample ExternalSecret reads); returns what
/// changed.
pub async fn bootstrap(
    resolved: &Resolved,
    pki: &Pki,
    home: &Path,
    target: &VaultTarget,
    wait: WaitPolicy,
) -> Result<vault::Report, SecretsError> {
    let config = config(resolved, pki, home, target, wait)?;
    let client = target.client()?;
    let mut report = vault::bootstrap(&client, &config, &LabSigner(lab_root(pki)?)).await?;
    let keys = vault::KeyDir::new(&config.key_dir);
    let admin = keys
        .read(vault::ADMIN_TOKEN)?
        .ok_or_else(|| SecretsError::Pki {
            path: config.key_dir.join(vault::ADMIN_TOKEN),
            what: "Vault admin token after the bootstrap",
        })?;
    let admin = client.with_token(admin);
    for cluster in resolved.topology().clusters() {
        let path = format!("/v1/secret/data/{}/sample", cluster.name);
        if admin.read(&path).await?.is_none() {
            let body =
                serde_json::json!({"data": {"greeting": format!("hello, {}", cluster.name)}});
            admin.write(&path, &body).await?;
            report.push(vault::Change::Config(path));
        }
    }
    Ok(report)
}
