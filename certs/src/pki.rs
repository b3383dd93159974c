//! The whole PKI under `<home>/pki/`: which material exists, where it lives,
//! and the create-or-load policy that ties it together.
//!
//! ```text
//! pki/                          0700
//!   agent/                      0700  agent plane (host <-> node agents)
//!     ca.crt ca.key                   agent CA, CN "hostctl agent CA"
//!     host.crt host.key               CN hostctl-host, O hostctl:host, server+client
//!     admin.crt admin.key             CN admin, O hostctl:admin, client
//!     metrics-scraper.crt .key        CN metrics-scraper, O hostctl:metrics, client
//!                                     (made on first use: mgmt's Prometheus)
//!     tokens.json                     enrolment tokens (SHA-256 only), 0600
//!     nodes/<node>.crt                every node certificate issued (audit)
//!   clusters/<cluster>/         0700  kubeadm names, shippable as /etc/kubernetes/pki
//!     ca.crt ca.key front-proxy-ca.crt front-proxy-ca.key
//!     etcd/ca.crt etcd/ca.key sa.key sa.pub
//!   clustermesh/ca.crt ca.key         one Cilium Cluster Mesh CA for all clusters
//!   lab/ca.crt ca.key                 the lab root: signs the platform's CAs (crate::lab)
//! ```
//! Keys are 0600, certificates 0644, directories 0700.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::csr::{self, NodeIdentitySpec};
use crate::error::{PkiError, io_err};
use crate::identity::Identity;
use crate::inspect::{self, ROLE_ADMIN, ROLE_HOST, ROLE_METRICS};
use crate::inventory::{self, CertInfo};
use crate::kubeadm::{ClusterPki, Mode, obtain_ca};
use crate::lab::LabRoot;
use crate::material::{self, KeyedCert, PairPaths};
use crate::params::{LEAF_VALIDITY, LeafSpec};
use crate::store;
use crate::tokens::TokenStore;

/// What `open_or_init` must make sure exists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PkiSpec {
    /// Clusters that need a kubeadm CA set (e.g. `mgmt`, `app1`, `app2`).
    pub clusters: Vec<String>,
    /// SANs of the host's agent-plane server certificate: IP addresses or DNS
    /// names the node agents dial (bridge IP, `127.0.0.1`, `localhost`).
    pub host_sans: Vec<String>,
}

/// The loaded PKI. Cheap to query; holds the CA keys in memory so the daemon
/// can sign node CSRs. Share it behind an `Arc`.
pub struct Pki {
    root: PathBuf,
    agent_ca: KeyedCert,
    host: KeyedCert,
    /// Set when this open re-issued the host certificate for new names.
    host_reissued: Option<HostSanChange>,
    admin: KeyedCert,
    clusters: BTreeMap<String, ClusterPki>,
    clustermesh: KeyedCert,
    /// `None` only when loading a home made before the lab root existed.
    lab: Option<LabRoot>,
}

/// The host certificate was re-issued because the names nodes dial changed
/// (the provider's subnet moved): what it carried and what it carries now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSanChange {
    /// The host certificate that was replaced (`pki/agent/host.crt`).
    pub path: PathBuf,
    /// The SANs the old certificate carried (IP addresses and DNS names),
    /// sorted as text and deduplicated.
    pub before: Vec<String>,
    /// The SANs of the new certificate: [`PkiSpec::host_sans`] with DNS
    /// names lowercased, in the same form, so the two lists compare directly.
    pub after: Vec<String>,
}

impl std::fmt::Display for HostSanChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "re-issued the host certificate {} for {} (it named {}); the agent CA is unchanged, so enrolled nodes keep trusting the host",
            self.path.display(),
            self.after.join(", "),
            self.before.join(", ")
        )
    }
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("root", &self.root)
            .field("clusters", &self.clusters.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Names become file names, CNs and token-store keys, so they are limited
/// to DNS labels (what Kubernetes node names and Multipass VM names allow).
pub(crate) fn validate_name(what: &'static str, name: &str) -> Result<(), PkiError> {
    let bad = |reason| {
        Err(PkiError::InvalidName {
            what,
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 63 {
        return bad("must be 1 to 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return bad("only lowercase letters, digits and '-' are allowed");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return bad("must not start or end with '-'");
    }
    Ok(())
}

/// Splits host SANs into IPs and DNS names, refusing anything else.
fn split_sans(sans: &[String]) -> Result<(Vec<IpAddr>, Vec<String>), PkiError> {
    let mut ips = Vec::new();
    let mut dns = Vec::new();
    for san in sans {
        if let Ok(ip) = san.parse::<IpAddr>() {
            ips.push(ip);
        } else if !san.is_empty()
            && san.len() <= 253
            && san
                .split('.')
                .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            dns.push(san.to_ascii_lowercase());
        } else {
            return Err(PkiError::InvalidSan { value: san.clone() });
        }
    }
    Ok((ips, dns))
}

/// What `open_or_init` was asked to guarantee, already validated.
struct Wanted<'a> {
    clusters: &'a [String],
    host_ips: Vec<IpAddr>,
    host_dns: Vec<String>,
}

/// The SANs of a certificate as sorted strings, for comparing with a request.
fn san_strings(ips: &[IpAddr], dns: &[String]) -> Vec<String> {
    let mut all: Vec<String> = ips
        .iter()
        .map(IpAddr::to_string)
        .chain(dns.iter().cloned())
        .collect();
    all.sort();
    all.dedup();
    all
}

/// CN of the identity mgmt's Prometheus scrapes the agents with.
pub const METRICS_SCRAPER_CN: &str = "metrics-scraper";

const AGENT_CA_FIX: &str = "restore it from a backup, or remove the whole pki/agent directory to create a new agent CA (every node must then enrol again)";
const LEAF_FIX: &str =
    "remove this .crt and its .key; the next `hostctl up` issues a new one from the agent CA";
const MESH_FIX: &str = "restore it from a backup, or remove pki/clustermesh to create a new Cluster Mesh CA (Cilium must then be reinstalled on every cluster)";

impl Pki {
    /// Creates whatever `spec` needs that is missing and loads and checks
    /// everything that exists. Existing material is never regenerated, so
    /// calling this on every `hostctl up` is safe and byte-for-byte stable;
    /// a cluster added to `spec` later gets only its own CAs.
    pub fn open_or_init(home: &Path, spec: &PkiSpec) -> Result<Pki, PkiError> {
        for cluster in &spec.clusters {
            validate_name("cluster name", cluster)?;
        }
        let (host_ips, host_dns) = split_sans(&spec.host_sans)?;
        let want = Wanted {
            clusters: &spec.clusters,
            host_ips,
            host_dns,
        };
        Self::obtain(home, Mode::Create, Some(want))
    }

    /// Loads an existing PKI without creating anything: for commands such as
    /// `hostctl certs list` that must not mint a CA as a side effect.
    pub fn open(home: &Path) -> Result<Pki, PkiError> {
        let root = home.join("pki");
        if !store::exists(&root.join("agent"))? {
            return Err(PkiError::NotInitialised { path: root });
        }
        Self::obtain(home, Mode::LoadOnly, None)
    }

    fn obtain(home: &Path, mode: Mode, want: Option<Wanted<'_>>) -> Result<Pki, PkiError> {
        let root = home.join("pki");
        let agent = root.join("agent");
        let dirs = [
            &root,
            &agent,
            &agent.join("nodes"),
            &root.join("clusters"),
            &root.join("clustermesh"),
        ];
        for dir in dirs {
            match mode {
                Mode::Create => store::ensure_private_dir(dir)?,
                Mode::LoadOnly => store::check_private_dir(dir)?,
            }
        }

        let agent_ca = obtain_ca(
            &PairPaths::new(&agent, "ca", AGENT_CA_FIX),
            "hostctl agent CA",
            mode,
        )?;
        let (host_ips, host_dns) = match &want {
            Some(w) => (w.host_ips.clone(), w.host_dns.clone()),
            None => (Vec::new(), Vec::new()),
        };
        let host_roles = [ROLE_HOST.to_owned()];
        let host_spec = LeafSpec {
            common_name: "hostctl-host",
            organizations: &host_roles,
            ips: &host_ips,
            dns_names: &host_dns,
            server_auth: true,
            client_auth: true,
            validity: LEAF_VALIDITY,
            not_before_at_least: None,
        };
        let host_paths = PairPaths::new(&agent, "host", LEAF_FIX);
        let host_reissued = match mode {
            Mode::Create => host_san_change(&host_paths, &agent_ca, &host_ips, &host_dns)?,
            Mode::LoadOnly => None,
        };
        let host = match &host_reissued {
            Some(_) => material::reissue_leaf(&host_paths, &agent_ca, &host_spec)?,
            None => obtain_leaf(&host_paths, &agent_ca, &host_spec, mode)?,
        };

        let admin_roles = [ROLE_ADMIN.to_owned()];
        let admin_spec = LeafSpec {
            common_name: "admin",
            organizations: &admin_roles,
            ips: &[],
            dns_names: &[],
            server_auth: false,
            client_auth: true,
            validity: LEAF_VALIDITY,
            not_before_at_least: None,
        };
        let admin = obtain_leaf(
            &PairPaths::new(&agent, "admin", LEAF_FIX),
            &agent_ca,
            &admin_spec,
            mode,
        )?;

        let clustermesh = obtain_ca(
            &PairPaths::new(&root.join("clustermesh"), "ca", MESH_FIX),
            "hostctl Cluster Mesh CA",
            mode,
        )?;

        let lab = LabRoot::obtain(&root.join("lab"), mode)?;

        let clusters_dir = root.join("clusters");
        let mut names: BTreeSet<String> = existing_clusters(&clusters_dir)?.into_iter().collect();
        if let Some(w) = &want {
            names.extend(w.clusters.iter().cloned());
        }
        let mut clusters = BTreeMap::new();
        for name in names {
            let cluster = ClusterPki::obtain(&clusters_dir.join(&name), &name, mode)?;
            clusters.insert(name, cluster);
        }

        Ok(Pki {
            root,
            agent_ca,
            host,
            host_reissued,
            admin,
            clusters,
            clustermesh,
            lab,
        })
    }

    /// The lab root (see [`crate::lab`]); `None` for a home opened
    /// read-only that predates it (`hostctl up` creates it).
    pub fn lab_root(&self) -> Option<&LabRoot> {
        self.lab.as_ref()
    }

    /// `<home>/pki`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The agent CA certificate: the pin placed in every VM's user-data and
    /// the client-CA of the host's mTLS server.
    pub fn agent_ca_pem(&self) -> &str {
        &self.agent_ca.cert_pem
    }

    /// Whether opening re-issued the host certificate (see [`HostSanChange`]).
    pub fn host_reissued(&self) -> Option<&HostSanChange> {
        self.host_reissued.as_ref()
    }

    /// The host agent's server-and-client identity on the agent plane.
    pub fn host_identity(&self) -> Identity {
        self.host.identity()
    }

    /// The CLI's client identity (role `hostctl:admin`).
    pub fn admin_identity(&self) -> Identity {
        self.admin.identity()
    }

    /// The client identity mgmt's Prometheus scrapes the agents' `/metrics`
    /// with (CN [`METRICS_SCRAPER_CN`], role `hostctl:metrics`, clientAuth
    /// only). Made on first use and kept like the admin identity, so every
    /// install of the scrape configuration hands Prometheus the same one; a
    /// home opened before it existed gets it here, not at `open`.
    pub fn metrics_scraper_identity(&self) -> Result<Identity, PkiError> {
        let roles = [ROLE_METRICS.to_owned()];
        let spec = LeafSpec {
            common_name: METRICS_SCRAPER_CN,
            organizations: &roles,
            ips: &[],
            dns_names: &[],
            server_auth: false,
            client_auth: true,
            validity: LEAF_VALIDITY,
            not_before_at_least: None,
        };
        let paths = PairPaths::new(&self.root.join("agent"), "metrics-scraper", LEAF_FIX);
        Ok(material::load_or_create_leaf(&paths, &self.agent_ca, &spec)?.identity())
    }

    /// The Cilium Cluster Mesh CA shared by every cluster (Cilium wants its
    /// key too: `tls.ca.key`).
    pub fn clustermesh_ca(&self) -> Identity {
        self.clustermesh.identity()
    }

    /// The kubeadm CA set of `name`.
    pub fn cluster(&self, name: &str) -> Result<&ClusterPki, PkiError> {
        self.clusters
            .get(name)
            .ok_or_else(|| PkiError::UnknownCluster {
                name: name.to_owned(),
                known: self.clusters.keys().cloned().collect(),
            })
    }

    /// Names of all clusters the PKI holds.
    pub fn cluster_names(&self) -> Vec<String> {
        self.clusters.keys().cloned().collect()
    }

    /// The enrolment-token store (`pki/agent/tokens.json`), real clock.
    pub fn token_store(&self) -> TokenStore {
        TokenStore::new(self.root.join("agent").join("tokens.json"))
    }

    /// The node certificates' revocation floors
    /// (`pki/agent/cert-floors.json`).
    pub fn cert_floors(&self) -> Result<crate::CertFloors, PkiError> {
        crate::CertFloors::open(self.root.join("agent").join("cert-floors.json"))
    }

    /// Issues a node certificate for a CSR whose token the caller has already
    /// consumed. Identity comes from `node`, never from the CSR; the
    /// certificate is also kept as `pki/agent/nodes/<name>.crt`.
    pub fn sign_node_csr(
        &self,
        csr_pem: &str,
        node: &NodeIdentitySpec,
    ) -> Result<String, PkiError> {
        self.sign_node_csr_dated(csr_pem, node, None)
    }

    /// [`Pki::sign_node_csr`], dated no earlier than `not_before_at_least`
    /// (the node's revocation floor, [`crate::CertFloors`]).
    pub fn sign_node_csr_dated(
        &self,
        csr_pem: &str,
        node: &NodeIdentitySpec,
        not_before_at_least: Option<std::time::SystemTime>,
    ) -> Result<String, PkiError> {
        validate_name("node name", &node.name)?;
        let cert_pem = csr::sign(&self.agent_ca, csr_pem, node, not_before_at_least)?;
        let path = self
            .root
            .join("agent")
            .join("nodes")
            .join(format!("{}.crt", node.name));
        store::write_atomic(&path, cert_pem.as_bytes(), store::CERT_MODE)?;
        Ok(cert_pem)
    }

    /// Every certificate under `pki/`, for `hostctl certs list`.
    pub fn inventory(&self) -> Result<Vec<CertInfo>, PkiError> {
        inventory::scan(&self.root)
    }
}

/// Fetches a leaf in the given mode; in `LoadOnly` an absent leaf is an error.
fn obtain_leaf(
    paths: &PairPaths,
    ca: &KeyedCert,
    spec: &LeafSpec<'_>,
    mode: Mode,
) -> Result<KeyedCert, PkiError> {
    match mode {
        Mode::Create => material::load_or_create_leaf(paths, ca, spec),
        Mode::LoadOnly => material::load_leaf(paths, ca)?.ok_or_else(|| PkiError::NotInitialised {
            path: paths.cert.clone(),
        }),
    }
}

/// The change of names when an existing host certificate was issued for
/// other addresses than `ips`/`dns`. Nodes pin the agent CA, not this leaf,
/// so a new leaf for the new names is all that is needed; keeping the old
/// one would leave every node failing TLS with a name mismatch.
fn host_san_change(
    paths: &PairPaths,
    ca: &KeyedCert,
    ips: &[IpAddr],
    dns: &[String],
) -> Result<Option<HostSanChange>, PkiError> {
    let Some(existing) = material::load_leaf(paths, ca)? else {
        return Ok(None);
    };
    let (have_ips, have_dns) = inspect::sans_of(&existing.cert_der)?;
    let before = san_strings(&have_ips, &have_dns);
    let after = san_strings(ips, dns);
    Ok((before != after).then(|| HostSanChange {
        path: paths.cert.clone(),
        before,
        after,
    }))
}

/// Cluster directories already on disk (skipping hidden/temporary entries).
fn existing_clusters(dir: &Path) -> Result<Vec<String>, PkiError> {
    let mut names = Vec::new();
    if !store::exists(dir)? {
        return Ok(names);
    }
    for entry in std::fs::read_dir(dir).map_err(io_err("listing", dir))? {
        let entry = entry.map_err(io_err("listing", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.path().is_dir() {
            continue;
        }
        validate_name("cluster directory", &name)?;
        names.push(name);
    }
    Ok(names)
}
