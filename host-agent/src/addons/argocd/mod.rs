//! Argo CD on mgmt (spec §1.3, ADR-001), sized for the lab: no Dex, no
//! notifications, no HA Redis, one application controller. The app
//! clusters are registered declaratively as cluster Secrets whose client
//! certificates hostctl mints from each cluster's CA ([`clusters`]), and
//! one `ApplicationSet` per cluster role syncs that role's directory of
//! the platform repository hostctl serves ([`platform`]).
//! `docs/platform.md` says what hostctl installs itself and what it hands
//! to Argo CD, and why.

pub mod clusters;
pub mod platform;

use super::budget::{Resources, Workload, resources_of};
use super::catalogue::{Addon, Chart, ChartRepo, Manifest, Placement, Readiness};
use super::error::AddonError;
use super::render::{RenderContext, manifest, no_objects, no_values};
use serde_json::{Value, json};

/// Where Argo CD and its objects live.
pub const NAMESPACE: &str = "argocd";

/// The argo-cd chart (Argo CD v3.4.4).
pub const CHART: Chart = Chart {
    repo: ChartRepo::Http("https://argoproj.github.io/argo-helm"),
    name: "argo-cd",
    version: "10.1.1",
    digest: None,
};

/// The reference's lab sizes (platform-addons §2.1): memory limits at
/// twice to four times the observed working sets, no CPU limits; the
/// expected use is §6's 600–1300 MiB for the five, toward the middle.
pub const WORKLOADS: &[Workload] = &[
    Workload::one(
        "argocd-application-controller",
        Resources::new(100, 384),
        Resources::new(0, 1024),
        450,
    ),
    Workload::one(
        "argocd-repo-server",
        Resources::new(50, 128),
        Resources::new(0, 512),
        250,
    ),
    Workload::one(
        "argocd-server",
        Resources::new(50, 64),
        Resources::new(0, 256),
        100,
    ),
    Workload::one(
        "argocd-applicationset-controller",
        Resources::new(20, 64),
        Resources::new(0, 256),
        60,
    ),
    Workload::one(
        "argocd-redis",
        Resources::new(20, 32),
        Resources::new(0, 128),
        40,
    ),
];

/// The catalogue entry for Argo CD itself.
pub const ARGOCD: Addon = Addon {
    name: "argocd",
    summary: "Argo CD: GitOps for every cluster, from mgmt",
    chart: Some(CHART),
    namespace: NAMESPACE,
    placement: Placement::Mgmt,
    depends_on: &[],
    after_mgmt: &[],
    needs_backup_target: false,
    values,
    objects: no_objects,
    readiness: &[
        Readiness::Crd("applications.argoproj.io"),
        Readiness::Crd("applicationsets.argoproj.io"),
        Readiness::Crd("appprojects.argoproj.io"),
        Readiness::Deployment("argocd-server"),
        Readiness::Deployment("argocd-repo-server"),
        Readiness::Deployment("argocd-applicationset-controller"),
        Readiness::Deployment("argocd-redis"),
        Readiness::StatefulSet("argocd-application-controller"),
    ],
    workloads: WORKLOADS,
    hook: None,
};

/// What Argo CD manages, registered declaratively once it runs: the
/// clusters, the platform repository, the project and the ApplicationSets.
/// An entry of its own so that a rerun re-mints and re-applies the
/// registration without touching Argo CD's release.
pub const PLATFORM: Addon = Addon {
    name: "argocd-platform",
    summary: "Argo CD's clusters, platform repository and ApplicationSets",
    chart: None,
    namespace: NAMESPACE,
    placement: Placement::Mgmt,
    depends_on: &["argocd"],
    after_mgmt: &[],
    needs_backup_target: false,
    values: no_values,
    objects,
    readiness: &[],
    workloads: &[],
    hook: None,
};

/// The app clusters' side of the registration: the binding that gives
/// Argo CD's client identity its rights there.
pub const ACCESS: Addon = Addon {
    name: "argocd-access",
    summary: "the binding that lets mgmt's Argo CD manage this cluster",
    chart: None,
    namespace: "kube-system",
    placement: Placement::App,
    depends_on: &[],
    after_mgmt: &[],
    needs_backup_target: false,
    values: no_values,
    objects: access_objects,
    readiness: &[],
    workloads: &[],
    hook: None,
};

fn workload(name: &str) -> Value {
    resources_of(WORKLOADS, name)
}

/// The chart's values: keys as in argo-cd 10.1.1's `values.yaml`.
fn values(ctx: &RenderContext<'_>) -> Result<Value, AddonError> {
    let mut certificates = serde_json::Map::new();
    if let Some(pem) = &ctx.platform.server_cert_pem {
        certificates.insert(ctx.platform.server_name.clone(), json!(pem));
    }
    Ok(json!({
        "crds": {"install": true, "keep": true},
        "dex": {"enabled": false},
        "notifications": {"enabled": false},
        "redis-ha": {"enabled": false},
        "configs": {
            "cm": {"admin.enabled": true, "timeout.reconciliation": "120s"},
            "tls": {"certificates": certificates},
        },
        "controller": {"replicas": 1, "resources": workload("argocd-application-controller")},
        "repoServer": {"replicas": 1, "resources": workload("argocd-repo-server")},
        "server": {"replicas": 1, "resources": workload("argocd-server")},
        "applicationSet": {"replicas": 1, "resources": workload("argocd-applicationset-controller")},
        "redis": {"resources": workload("argocd-redis")},
    }))
}

/// The clusters, the platform repository, the project and the
/// ApplicationSets.
fn objects(ctx: &RenderContext<'_>) -> Result<Vec<Manifest>, AddonError> {
    Ok(vec![
        manifest(
            "10-clusters.yaml",
            "Argo CD cluster Secrets: mgmt in-cluster, each app cluster with a client\n\
             certificate minted from that cluster's CA (group hostctl:argocd, never\n\
             system:masters). Applied server-side, so no key lands in an annotation.",
            &clusters::cluster_secrets(ctx)?,
        )?,
        manifest(
            "20-platform.yaml",
            "The platform repository (served by hostctl), its AppProject, and one\n\
             ApplicationSet per cluster role (cluster generator, label hostctl.dev/role).",
            &platform::objects(ctx),
        )?,
    ])
}

fn access_objects(_: &RenderContext<'_>) -> Result<Vec<Manifest>, AddonError> {
    Ok(vec![manifest(
        "10-argocd-access.yaml",
        "Argo CD's client identity on this cluster: the certificate in mgmt's cluster\n\
         Secret carries this group. Deleting the binding revokes Argo CD here.",
        &[clusters::access_binding()],
    )?])
}
