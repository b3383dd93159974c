//! The add-on catalogue as data: one [`Addon`] per platform component,
//! saying which chart (pinned), where (namespace, clusters by role), with
//! which values and objects (rendered from the topology), after what, and
//! how hostctl knows it is ready. Adding a component is adding an entry
//! to [`catalogue`]; render, install, the graph's steps, `addons status`
//! and the fit report all read it.

use super::budget::Workload;
use super::error::AddonError;
use super::render::RenderContext;
use topology::ClusterRole;

/// Where a chart comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartRepo {
    /// A classic Helm repository (`index.yaml` over HTTPS).
    Http(&'static str),
    /// An OCI registry path holding the chart (`oci://…/<name>`).
    Oci(&'static str),
}

/// A chart pinned to one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chart {
    pub repo: ChartRepo,
    /// The chart's name in its repository.
    pub name: &'static str,
    /// Always exact: hostctl never installs "latest".
    pub version: &'static str,
    /// The archive's `sha256:<hex>` when pinned here: `hostctl charts
    /// pull` refuses a download that differs. `None`: trust on first pull
    /// (the digest is recorded in `charts.lock.json` and held to after).
    pub digest: Option<&'static str>,
}

/// Which clusters get an add-on, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Mgmt,
    App,
    All,
}

impl Placement {
    pub fn includes(self, role: ClusterRole) -> bool {
        match self {
            Placement::All => true,
            Placement::Mgmt => role == ClusterRole::Mgmt,
            Placement::App => role == ClusterRole::App,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Mgmt => "mgmt",
            Placement::App => "app",
            Placement::All => "all",
        }
    }
}

/// How hostctl knows an add-on is up, each checked through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// A Deployment in the add-on's namespace has all replicas available.
    Deployment(&'static str),
    /// A StatefulSet in the add-on's namespace has all replicas ready.
    StatefulSet(&'static str),
    /// A DaemonSet in the add-on's namespace is ready on every node.
    DaemonSet(&'static str),
    /// A CustomResourceDefinition is `Established`.
    Crd(&'static str),
    /// A custom resource's status condition is `True` (a ClusterIssuer's
    /// `Ready`, say), read as `kubectl wait --for=condition=…` reads it.
    Condition(CustomCondition),
}

/// Which custom resource and which of its conditions [`Readiness::Condition`]
/// waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomCondition {
    /// `group/version`, e.g. `cert-manager.io/v1`.
    pub api_version: &'static str,
    /// A kind of `cluster_api::resources` (its plural and scope come from
    /// there; namespaced kinds are read in the add-on's namespace).
    pub kind: &'static str,
    pub name: &'static str,
    /// The condition type, e.g. `Ready`.
    pub condition: &'static str,
}

/// One rendered manifest file of an add-on: its file name (ordered by a
/// numeric prefix) and its YAML documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub file: String,
    pub yaml: String,
}

/// Renders an add-on's Helm values for one cluster (a YAML mapping).
pub type ValuesFn = fn(&RenderContext<'_>) -> Result<serde_json::Value, AddonError>;
/// Renders the objects applied after the chart, for one cluster.
pub type ObjectsFn = fn(&RenderContext<'_>) -> Result<Vec<Manifest>, AddonError>;

/// One platform component.
#[derive(Debug, Clone, Copy)]
pub struct Addon {
    /// Unique, DNS-1123: the Helm release, the step id's last part, the
    /// render directory.
    pub name: &'static str,
    /// What it is, for `addons list`.
    pub summary: &'static str,
    /// `None` for an add-on that is only objects (e.g. RBAC on app clusters).
    pub chart: Option<Chart>,
    pub namespace: &'static str,
    pub placement: Placement,
    /// Add-ons of the same cluster that must be ready first.
    pub depends_on: &'static [&'static str],
    /// Add-ons of the mgmt cluster that must be ready first, wherever this
    /// one runs (an app cluster's Vault issuer needs mgmt's Vault); an
    /// edge only when the run builds mgmt too.
    pub after_mgmt: &'static [&'static str],
    /// Whether it needs the cluster's backup target on the host's object
    /// store ([`super::velero::BackupTarget`]): without one (no store, or no
    /// key for the cluster yet) it is left out of that cluster's plan
    /// rather than installed half-configured.
    pub needs_backup_target: bool,
    pub values: ValuesFn,
    pub objects: ObjectsFn,
    pub readiness: &'static [Readiness],
    /// Requests and limits of its workloads (values and fit report).
    pub workloads: &'static [Workload],
    /// What hostctl does once it is installed and ready, beyond applying
    /// objects (`None` for most).
    pub hook: Option<Hook>,
}

/// Work an add-on needs from hostctl after its install, through the
/// component's own API rather than Kubernetes objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Initialise, unseal and configure Vault through its HTTP API
    /// ([`crate::secrets`]); checked and repaired on every run.
    VaultBootstrap,
}

/// What a run has beyond a cluster's role that decides which add-ons the
/// cluster gets: some need mgmt's add-ons, some the cluster's backup target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Available {
    /// The topology has a mgmt cluster (what `after_mgmt` entries need:
    /// without one there is no Vault to use).
    pub mgmt: bool,
    /// The cluster has a backup target on the host's object store (what
    /// `needs_backup_target` entries need).
    pub backup_target: bool,
}

impl Available {
    /// Everything an entry can need: for questions about every add-on that
    /// *may* run on a cluster (the namespaces policies leave alone), not
    /// about what one run installs.
    pub const EVERYTHING: Available = Available {
        mgmt: true,
        backup_target: true,
    };

    pub const fn new(mgmt: bool, backup_target: bool) -> Available {
        Available {
            mgmt,
            backup_target,
        }
    }
}

impl Addon {
    /// The add-ons for a cluster of `role`, in catalogue order, given what
    /// is `available` (see [`Addon::applies`]).
    pub fn for_role(
        role: ClusterRole,
        available: Available,
    ) -> impl Iterator<Item = &'static Addon> {
        catalogue()
            .iter()
            .filter(move |a| a.applies(role, available))
    }

    /// Whether this add-on goes on a cluster of `role`: its placement
    /// includes the role, mgmt exists if it waits for mgmt's add-ons, and
    /// the cluster has a backup target if it needs one.
    pub fn applies(&self, role: ClusterRole, available: Available) -> bool {
        self.placement.includes(role)
            && (available.mgmt || self.after_mgmt.is_empty())
            && (available.backup_target || !self.needs_backup_target)
    }

    /// The catalogue entry called `name`.
    pub fn named(name: &str) -> Option<&'static Addon> {
        catalogue().iter().find(|a| a.name == name)
    }
}

/// Every add-on hostctl installs, in install order: an entry's
/// dependencies always come before it (a unit test checks).
pub fn catalogue() -> &'static [Addon] {
    &CATALOGUE
}

static CATALOGUE: [Addon; 24] = [
    super::cert_manager::CERT_MANAGER,
    super::cert_manager::LAB_CA,
    super::vault::VAULT,
    super::vault::issuer::ISSUER,
    super::external_secrets::EXTERNAL_SECRETS,
    super::external_secrets::SECRET_STORE,
    super::argocd::ARGOCD,
    super::argocd::PLATFORM,
    super::argocd::ACCESS,
    super::observability::prometheus::STACK,
    super::observability::agent_plane::HOSTCTL_METRICS,
    super::observability::loki::LOKI,
    super::observability::tempo::TEMPO,
    super::observability::thanos::THANOS,
    super::observability::grafana::GRAFANA,
    super::observability::prometheus::AGENT,
    super::observability::alloy::ALLOY,
    super::k8sgpt::K8SGPT,
    super::k8sgpt::K8SGPT_ACCESS,
    super::kyverno::KYVERNO,
    super::kyverno::policies::POLICIES,
    super::falco::FALCO,
    super::velero::CREDENTIALS,
    super::velero::VELERO,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_labels_and_dependencies_come_first_on_the_same_clusters() {
        let all = catalogue();
        for (i, addon) in all.iter().enumerate() {
            assert!(
                !addon.name.is_empty()
                    && addon.name.len() <= 53
                    && addon
                        .name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{}: not a Helm release name",
                addon.name
            );
            assert_eq!(
                all.iter().filter(|a| a.name == addon.name).count(),
                1,
                "{} twice",
                addon.name
            );
            for dep in addon.after_mgmt {
                let pos = all.iter().position(|a| a.name == *dep);
                assert!(
                    pos.is_some_and(|p| p < i && all[p].placement.includes(ClusterRole::Mgmt)),
                    "{} waits for mgmt's {dep}, which is not an earlier mgmt add-on",
                    addon.name
                );
            }
            for dep in addon.depends_on {
                let pos = all.iter().position(|a| a.name == *dep);
                assert!(
                    pos.is_some_and(|p| p < i),
                    "{} depends on {dep}, which is not earlier in the catalogue",
                    addon.name
                );
                let dep = &all[pos.unwrap_or_default()];
                for role in [ClusterRole::Mgmt, ClusterRole::App] {
                    assert!(
                        !addon.placement.includes(role) || dep.placement.includes(role),
                        "{} runs on {role:?} clusters, its dependency {} does not",
                        addon.name,
                        dep.name
                    );
                }
            }
        }
    }

    #[test]
    fn placement_selects_by_role() {
        // Without backup targets: Velero's entries are tested in velero::tests.
        let with_mgmt = Available::new(true, false);
        let mgmt: Vec<&str> = Addon::for_role(ClusterRole::Mgmt, with_mgmt)
            .map(|a| a.name)
            .collect();
        let app: Vec<&str> = Addon::for_role(ClusterRole::App, with_mgmt)
            .map(|a| a.name)
            .collect();
        let alone: Vec<&str> = Addon::for_role(ClusterRole::App, Available::new(false, false))
            .map(|a| a.name)
            .collect();
        assert!(
            !alone.contains(&"secret-store") && !alone.contains(&"vault-issuer"),
            "{alone:?}: nothing to reach without mgmt"
        );
        assert!(alone.contains(&"cert-manager"));
        let everywhere = [
            "cert-manager",
            "lab-ca",
            "vault-issuer",
            "external-secrets",
            "secret-store",
            "alloy",
            "k8sgpt-access",
        ];
        let mgmt_only = [
            "vault",
            "argocd",
            "argocd-platform",
            "prometheus-stack",
            "loki",
            "tempo",
            "thanos",
            "grafana",
            "hostctl-metrics",
            "k8sgpt",
        ];
        for name in everywhere {
            assert!(mgmt.contains(&name) && app.contains(&name), "{name}");
        }
        for name in mgmt_only {
            assert!(mgmt.contains(&name) && !app.contains(&name), "{name}");
        }
        assert_eq!(mgmt.len(), everywhere.len() + mgmt_only.len());
        assert_eq!(app.len(), everywhere.len() + 5);
        assert!(app.contains(&"argocd-access") && app.contains(&"prometheus-agent"));
        for name in ["kyverno", "kyverno-policies"] {
            assert!(app.contains(&name) && !mgmt.contains(&name), "{name}: C4");
            assert_eq!(
                Addon::named(name).map(|a| a.placement),
                Some(Placement::App)
            );
        }
        assert!(
            app.contains(&"falco") && !mgmt.contains(&"falco"),
            "Falco on app clusters only"
        );
        assert!(
            !alone.contains(&"prometheus-agent")
                && !alone.contains(&"alloy")
                && !alone.contains(&"falco"),
            "{alone:?}: nowhere to ship without mgmt"
        );
        assert!(Addon::named("argocd").is_some_and(|a| a.chart.is_some()));
        assert!(Addon::named("nope").is_none());
    }
}
