//! hostctl's PKI: every CA and identity the host owns, on disk under
//! `$HOSTCTL_HOME/pki`.
//!
//! The host generates and keeps all trust roots (learned from Talos trustd
//! and Cluster API's kubeadm bootstrap provider):
//! - the **agent-plane CA**, the host's server/client identity and the CLI's
//!   admin identity, used for mutual TLS between `hostctl` and node agents;
//! - **node identities**, issued from a CSR the node made itself, with
//!   CN/SANs fixed by the host and roles in the Organization field
//!   ([`Pki::sign_node_csr`]), after the node spent a single-use enrolment
//!   token ([`TokenStore`]);
//! - per cluster, the **kubeadm CA set** (cluster, front-proxy, etcd CA and
//!   the service-account key pair) in kubeadm's file names, plus the
//!   discovery pin, bootstrap tokens and admin kubeconfigs ([`ClusterPki`]);
//! - one **Cilium Cluster Mesh CA** shared by all clusters.
//!
//! This crate knows nothing about topology files or agents: callers pass
//! plain names and addresses. Existing material is always reused, never
//! silently regenerated; a damaged, mismatched or world-readable file is an
//! error that names the file and the fix. Keys never appear in `Debug`.
#![cfg_attr(
    test,
    allow(clippy::disallowed_methods, reason = "unit tests write fixtures")
)]
#![deny(missing_docs)]

mod csr;
mod error;
mod floors;
mod identity;
mod inspect;
mod inventory;
mod kubeadm;
mod kubeconfig;
mod lab;
mod lab_serving;
mod leaf;
mod material;
mod params;
mod pki;
mod store;
mod tokens;

pub use csr::{MAX_NODE_VALIDITY_DAYS, NodeIdentitySpec, generate_node_key_and_csr};
pub use error::{PkiError, TokenError};
pub use floors::{CertFloors, ObserveOutcome, Revoked};
pub use identity::{Identity, SecretPem};
pub use inspect::{
    ROLE_ADMIN, ROLE_HOST, ROLE_METRICS, ROLE_NODE, cert_der_from_pem, common_name_of, ip_sans_of,
    rfc3339, roles_of, spki_sha256_pin,
};
pub use inventory::CertInfo;
pub use kubeadm::{ClusterPki, PlacedFile, bootstrap_token};
pub use kubeconfig::{ADMIN_GROUP, ADMIN_USER, EmbeddedKubeconfig};
pub use lab::{INTERMEDIATE_VALIDITY, LabRoot};
pub use lab_serving::{RENEW_BEFORE, ServingFit, serving_fit};
pub use params::{BACKDATE as NODE_CERT_BACKDATE, CA_VALIDITY, LEAF_VALIDITY};
pub use pki::{HostSanChange, METRICS_SCRAPER_CN, Pki, PkiSpec};
pub use store::{CERT_MODE, DIR_MODE, KEY_MODE};
pub use tokens::{Clock, SystemClock, TokenStore};
