//! Admin kubeconfigs minted on the host from the cluster CA it owns, so
//! `hostctl` can talk to a fresh cluster without copying `admin.conf` out of
//! a VM.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rcgen::KeyPair;
use serde::Serialize;

use crate::error::{PkiError, crypto_err};
use crate::identity::{Identity, SecretPem};
use crate::kubeadm::ClusterPki;
use crate::leaf;
use crate::params::{LEAF_VALIDITY, LeafSpec};

/// CN kubeadm puts in `admin.conf`.
pub const ADMIN_USER: &str = "kubernetes-admin";
/// Group kubeadm ≥ 1.29 binds to `cluster-admin` (ClusterRoleBinding
/// `kubeadm:cluster-admins`); unlike `system:masters` it can be revoked.
pub const ADMIN_GROUP: &str = "kubeadm:cluster-admins";

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Kubeconfig<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    clusters: Vec<Named<'a, ClusterEntry>>,
    users: Vec<Named<'a, UserEntry>>,
    contexts: Vec<Named<'a, ContextEntry<'a>>>,
    current_context: &'a str,
}

#[derive(Serialize)]
struct Named<'a, T> {
    name: &'a str,
    #[serde(flatten)]
    entry: T,
}

#[derive(Serialize)]
struct ClusterEntry {
    cluster: ClusterBody,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterBody {
    server: String,
    certificate_authority_data: String,
}

#[derive(Serialize)]
struct UserEntry {
    user: UserBody,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct UserBody {
    client_certificate_data: String,
    client_key_data: String,
}

#[derive(Serialize)]
struct ContextEntry<'a> {
    context: ContextBody<'a>,
}

#[derive(Serialize)]
struct ContextBody<'a> {
    cluster: &'a str,
    user: &'a str,
}

impl ClusterPki {
    /// A client certificate signed by this cluster's CA for `common_name`
    /// in `groups` (clientAuth, one year), with a fresh key: what a
    /// non-admin client of the cluster's API presents (Argo CD on mgmt
    /// managing an app cluster). The API server maps CN to the user and O
    /// to groups; the caller binds the groups, so never pass
    /// `system:masters`.
    pub fn mint_client_certificate(
        &self,
        common_name: &str,
        groups: &[String],
    ) -> Result<Identity, PkiError> {
        if groups.iter().any(|g| g == "system:masters") {
            return Err(PkiError::InvalidName {
                what: "client certificate group",
                name: "system:masters".into(),
                reason: "a minted client certificate never carries it: it cannot be revoked",
            });
        }
        let spec = LeafSpec {
            common_name,
            organizations: groups,
            ips: &[],
            dns_names: &[],
            server_auth: false,
            client_auth: true,
            validity: LEAF_VALIDITY,
            not_before_at_least: None,
        };
        let key = KeyPair::generate().map_err(crypto_err("generate a client key"))?;
        let (cert_pem, _) = leaf::issue(&spec, &key, &self.ca)?;
        Ok(Identity {
            cert_pem,
            key_pem: SecretPem::new(key.serialize_pem()),
        })
    }

    /// A standard `kind: Config` kubeconfig for `server_url`, with a fresh
    /// client certificate signed by this cluster's CA (CN `kubernetes-admin`,
    /// O `kubeadm:cluster-admins`, clientAuth, one year) and everything
    /// embedded as base64 data. The cluster entry is named `cluster_name`,
    /// the user `<cluster_name>-admin`, so kubeconfigs of several clusters
    /// can be merged. The result contains a private key: write it 0600.
    pub fn mint_admin_kubeconfig(
        &self,
        cluster_name: &str,
        server_url: &str,
        context_name: &str,
    ) -> Result<String, PkiError> {
        let client = self.mint_client_certificate(ADMIN_USER, &[ADMIN_GROUP.to_owned()])?;
        EmbeddedKubeconfig {
            cluster_name,
            server_url,
            user_name: &format!("{cluster_name}-admin"),
            context_name,
            ca_data: &B64.encode(self.ca_cert_pem()),
            cert_data: &B64.encode(&client.cert_pem),
            key_data: &B64.encode(client.key_pem.expose()),
        }
        .to_yaml()
    }
}

/// A one-cluster, one-user kubeconfig whose CA, certificate and key are
/// embedded as `*-data` fields, each given already base64-encoded — or as
/// a review placeholder, so a rendering for review has the same shape as
/// the one installed. Holds a private key when the data are real: write
/// it 0600 or into a Secret, never to a reviewable file.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedKubeconfig<'a> {
    /// The cluster entry's name.
    pub cluster_name: &'a str,
    /// The API server's URL.
    pub server_url: &'a str,
    /// The user entry's name.
    pub user_name: &'a str,
    /// The (current) context's name.
    pub context_name: &'a str,
    /// The cluster CA, PEM in base64.
    pub ca_data: &'a str,
    /// The client certificate, PEM in base64.
    pub cert_data: &'a str,
    /// The client key, PEM in base64.
    pub key_data: &'a str,
}

impl EmbeddedKubeconfig<'_> {
    /// The `kind: Config` YAML, its current context set.
    pub fn to_yaml(&self) -> Result<String, PkiError> {
        let doc = Kubeconfig {
            api_version: "v1",
            kind: "Config",
            clusters: vec![Named {
                name: self.cluster_name,
                entry: ClusterEntry {
                    cluster: ClusterBody {
                        server: self.server_url.to_owned(),
                        certificate_authority_data: self.ca_data.to_owned(),
                    },
                },
            }],
            users: vec![Named {
                name: self.user_name,
                entry: UserEntry {
                    user: UserBody {
                        client_certificate_data: self.cert_data.to_owned(),
                        client_key_data: self.key_data.to_owned(),
                    },
                },
            }],
            contexts: vec![Named {
                name: self.context_name,
                entry: ContextEntry {
                    context: ContextBody {
                        cluster: self.cluster_name,
                        user: self.user_name,
                    },
                },
            }],
            current_context: self.context_name,
        };
        serde_saphyr::to_string(&doc).map_err(|e| PkiError::Encode {
            what: "kubeconfig",
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::{self, common_name_of, parse_der, roles_of};
    use crate::kubeadm::Mode;
    use rcgen::PublicKeyData as _;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn cluster_pki() -> Result<(tempfile::TempDir, ClusterPki), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let cp = ClusterPki::obtain(&dir.path().join("app1"), "app1", Mode::Create)?;
        Ok((dir, cp))
    }

    fn groups(g: &[&str]) -> Vec<String> {
        g.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_client_certificate_never_carries_system_masters() -> TestResult {
        let (_dir, cp) = cluster_pki()?;
        for asked in [
            groups(&["system:masters"]),
            groups(&["hostctl:argocd", "system:masters"]),
        ] {
            let err = cp
                .mint_client_certificate("hostctl:argocd-manager", &asked)
                .expect_err("system:masters is refused");
            assert!(
                matches!(&err, PkiError::InvalidName { name, .. } if name == "system:masters"),
                "{asked:?}: {err:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn a_client_certificate_has_the_asked_name_groups_and_client_auth_only() -> TestResult {
        let (_dir, cp) = cluster_pki()?;
        let asked = groups(&["hostctl:argocd", "team:b"]);
        let id = cp.mint_client_certificate("hostctl:argocd-manager", &asked)?;
        let der = inspect::cert_der_from_pem(&id.cert_pem)?;
        assert_eq!(
            common_name_of(&der)?.as_deref(),
            Some("hostctl:argocd-manager")
        );
        assert_eq!(roles_of(&der)?, asked);

        let cert = parse_der(&der)?;
        let eku = cert.extended_key_usage()?.ok_or("no extendedKeyUsage")?;
        assert!(eku.value.client_auth, "clientAuth");
        assert!(!eku.value.server_auth, "no serverAuth");
        assert!(!inspect::is_ca(&cert), "not a CA");
        let ca = parse_der(&cp.ca.cert_der)?;
        assert!(
            inspect::is_issued_by(&cert, &ca),
            "signed by the cluster CA"
        );

        // The key is the certificate's, and fresh for every certificate.
        let key = KeyPair::from_pem(id.key_pem.expose())?;
        assert_eq!(key.subject_public_key_info(), cert.public_key().raw);
        let again = cp.mint_client_certificate("hostctl:argocd-manager", &asked)?;
        assert_ne!(again.key_pem, id.key_pem);
        Ok(())
    }
}
