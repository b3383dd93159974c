//! The rendered side of `verify`: for each cluster, what `up` would install
//! (the catalogue entries of its role, their values and objects with
//! placeholder credentials, Cilium's values), handed to the contracts.

use super::contracts::{self, Material};
use super::{Check, Report};
use crate::addons::catalogue::Addon;
use crate::addons::error::AddonError;
use crate::addons::render::{Credentials, PlatformSource, RenderContext, addons_for};
use crate::cluster_api::KubeError;
use crate::cluster_api::apply::parse_documents;
use crate::cluster_config::cluster::{ClusterView, MgmtService};
use crate::cluster_config::{K8sError, cilium};
use serde_json::Value;
use std::net::Ipv4Addr;
use topology::{ClusterRole, Resolved};

/// Rendering for `verify` failed (the same failure `render` would report).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("no cluster {0} in the topology")]
    UnknownCluster(String),
    #[error(transparent)]
    Addon(#[from] AddonError),
    #[error(transparent)]
    Objects(#[from] KubeError),
    #[error(transparent)]
    Cluster(#[from] K8sError),
    #[error("{file}: cilium values do not parse: {reason}")]
    Values { file: String, reason: String },
}

/// Every contract over the rendered configuration; `only` limits the
/// per-cluster checks to one cluster (C4, about placement, always looks at
/// them all).
pub fn report(resolved: &Resolved, only: Option<&str>) -> Result<Report, VerifyError> {
    if let Some(name) = only
        && resolved.topology().cluster(name).is_none()
    {
        return Err(VerifyError::UnknownCluster(name.to_owned()));
    }
    let platform = PlatformSource::served_by_host(resolved, None);
    let mgmt = mgmt_addresses(resolved)?;
    let mut placement = Vec::new();
    let mut checks: Vec<Check> = Vec::new();
    for cluster in resolved.topology().clusters() {
        let review_backup = crate::storage::plan::review_target(resolved, &cluster.name);
        let ctx = RenderContext {
            resolved,
            cluster: &cluster.name,
            credentials: Credentials::Placeholder,
            platform: &platform,
            backup: review_backup.as_ref(),
        };
        let addons = addons_for(&ctx);
        let material = material(&ctx, &addons)?;
        if only.is_none_or(|o| o == cluster.name) {
            checks.extend(cluster_checks(
                resolved,
                &cluster.name,
                cluster.role,
                &addons,
                &material,
                &mgmt,
            )?);
        }
        placement.push((cluster.name.clone(), cluster.role, material));
    }
    checks.push(contracts::c4(&placement));
    checks.sort_by_key(|c| c.contract);
    Ok(Report {
        checks,
        not_live: Vec::new(),
    })
}

fn cluster_checks(
    resolved: &Resolved,
    name: &str,
    role: ClusterRole,
    addons: &[&'static Addon],
    material: &[Material],
    mgmt: &[(String, Ipv4Addr)],
) -> Result<Vec<Check>, VerifyError> {
    let objects: Vec<Value> = material.iter().flat_map(|m| m.objects.clone()).collect();
    let agent = material
        .iter()
        .find(|m| m.addon == crate::addons::observability::prometheus::AGENT.name)
        .and_then(|m| m.values.as_ref());
    let cilium_yaml = cilium::values(resolved, name, None)?;
    let cilium: Value = serde_saphyr::from_str(&cilium_yaml).map_err(|e| VerifyError::Values {
        file: format!("clusters/{name}/cilium-values.yaml"),
        reason: e.to_string(),
    })?;
    let mut checks = Vec::new();
    if role != ClusterRole::Mgmt {
        checks.push(contracts::c1(name, material, mgmt));
        checks.push(contracts::c2(name, agent));
    }
    checks.push(contracts::c3(name, &objects));
    checks.push(contracts::c5(name, addons));
    checks.push(contracts::c6(name, &cilium));
    Ok(checks)
}

/// Each add-on's values and objects as JSON.
fn material(
    ctx: &RenderContext<'_>,
    addons: &[&'static Addon],
) -> Result<Vec<Material>, VerifyError> {
    addons
        .iter()
        .map(|addon| {
            let values = match addon.chart {
                Some(_) => Some((addon.values)(ctx)?),
                None => None,
            };
            let mut objects = Vec::new();
            for m in (addon.objects)(ctx)? {
                for doc in parse_documents(&m.file, &m.yaml)? {
                    objects.push(serde_json::to_value(&doc.object).unwrap_or_default());
                }
            }
            Ok(Material {
                addon: addon.name,
                values,
                objects,
            })
        })
        .collect()
}

/// mgmt's node and service addresses, named (empty without mgmt).
fn mgmt_addresses(resolved: &Resolved) -> Result<Vec<(String, Ipv4Addr)>, VerifyError> {
    let Some(mgmt) = resolved.topology().mgmt_cluster() else {
        return Ok(Vec::new());
    };
    let mut out: Vec<(String, Ipv4Addr)> = resolved
        .topology()
        .nodes_of(&mgmt.name)
        .filter_map(|n| {
            resolved
                .node_ip(&n.name)
                .map(|ip| (format!("node {}", n.name), ip))
        })
        .collect();
    let view = ClusterView::new(resolved, &mgmt.name)?;
    out.extend(MgmtService::ALL.iter().filter_map(|s| {
        view.service_address(*s)
            .map(|ip| (s.as_str().to_owned(), ip))
    }));
    Ok(out)
}
