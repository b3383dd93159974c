//! Rendering add-ons for one cluster: each entry's Helm values and
//! objects, from the topology, as the files `hostctl render` writes for
//! review and `up` installs:
//!
//! ```text
//! DIR/clusters/<cluster>/addons/<name>/values.yaml       Helm values (charted add-ons)
//! DIR/clusters/<cluster>/addons/<name>/manifests/*.yaml  applied after the chart
//! ```
//!
//! Credentials inside objects (Argo CD's cluster Secrets) are minted only
//! for install ([`Credentials::Mint`]); the review rendering carries
//! marked placeholders, so golden files are stable and `render` never
//! writes a private key next to reviewable files.

use super::catalogue::{Addon, Available, Manifest};
use super::error::AddonError;
use super::velero::BackupTarget;
use crate::cluster_config::yaml;
use certs::Pki;
use serde_json::Value;
use topology::{ClusterRole, Resolved};

/// What credentials inside rendered objects are.
#[derive(Debug, Clone, Copy)]
pub enum Credentials<'a> {
    /// Marked placeholders (review, golden files).
    Placeholder,
    /// Minted now from the clusters' CAs (install).
    Mint(&'a Pki),
}

/// Where Argo CD reads the platform's desired state: the Git repository
/// hostctl serves (see [`crate::gitops`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSource {
    /// The clone URL, e.g. `https://192.168.64.1:7447/platform.git`.
    pub repo_url: String,
    /// The host part of that URL (Argo CD's TLS trust is keyed by it).
    pub server_name: String,
    /// The Git server's certificate (PEM) that Argo CD pins; `None` before
    /// the server's key exists (review without a home).
    pub server_cert_pem: Option<String>,
}

impl PlatformSource {
    /// The repository hostctl serves on the host's address in `resolved`
    /// ([`crate::gitops::GIT_PORT`]), pinned to `server_cert_pem` when its
    /// certificate exists ([`crate::gitops::platform_source`] reads it).
    pub fn served_by_host(resolved: &Resolved, server_cert_pem: Option<String>) -> PlatformSource {
        let server_name = resolved.host_agent_address().to_string();
        PlatformSource {
            repo_url: format!(
                "https://{server_name}:{}/{}",
                crate::gitops::GIT_PORT,
                crate::gitops::REPO_NAME
            ),
            server_name,
            server_cert_pem,
        }
    }
}

/// Everything an add-on's values and objects are rendered from.
#[derive(Debug, Clone, Copy)]
pub struct RenderContext<'a> {
    pub resolved: &'a Resolved,
    /// The cluster being rendered for.
    pub cluster: &'a str,
    pub credentials: Credentials<'a>,
    pub platform: &'a PlatformSource,
    /// Where this cluster's backups go (its prefix and key on the host's
    /// object store). `None` while the store has no key for the cluster:
    /// then the add-ons that need one (Velero) are not in its plan.
    pub backup: Option<&'a BackupTarget>,
}

impl RenderContext<'_> {
    /// The role of the cluster being rendered for.
    pub fn role(&self) -> Option<ClusterRole> {
        self.resolved
            .topology()
            .cluster(self.cluster)
            .map(|c| c.role)
    }

    /// What the cluster being rendered for has that add-ons may need.
    pub fn available(&self) -> Available {
        Available::new(
            self.resolved.topology().mgmt_cluster().is_some(),
            self.backup.is_some(),
        )
    }
}

/// One add-on rendered for one cluster.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub addon: &'static Addon,
    /// The values file (YAML), for charted add-ons.
    pub values: Option<String>,
    pub manifests: Vec<Manifest>,
}

impl Rendered {
    /// The values file's path relative to the cluster's render directory.
    pub fn values_path(&self) -> Option<String> {
        self.values
            .as_ref()
            .map(|_| format!("addons/{}/values.yaml", self.addon.name))
    }

    /// Every file of this add-on: (path relative to the cluster's render
    /// directory, contents), values first.
    pub fn files(&self) -> Vec<(String, String)> {
        let values = self.values_path().zip(self.values.clone());
        let manifests = self
            .manifest_paths()
            .into_iter()
            .zip(self.manifests.iter().map(|m| m.yaml.clone()));
        values.into_iter().chain(manifests).collect()
    }

    /// The manifest files' paths relative to the cluster's render directory.
    pub fn manifest_paths(&self) -> Vec<String> {
        self.manifests
            .iter()
            .map(|m| format!("addons/{}/manifests/{}", self.addon.name, m.file))
            .collect()
    }
}

/// The add-ons of `ctx.cluster` (by its role and what is available to
/// it), in catalogue order.
pub fn addons_for(ctx: &RenderContext<'_>) -> Vec<&'static Addon> {
    match ctx.role() {
        Some(role) => Addon::for_role(role, ctx.available()).collect(),
        None => Vec::new(),
    }
}

/// Renders one add-on for `ctx.cluster`.
pub fn render(addon: &'static Addon, ctx: &RenderContext<'_>) -> Result<Rendered, AddonError> {
    let values = match addon.chart {
        Some(_) => Some(values_yaml(addon, &(addon.values)(ctx)?)?),
        None => None,
    };
    Ok(Rendered {
        addon,
        values,
        manifests: (addon.objects)(ctx)?,
    })
}

/// Every add-on of `ctx.cluster`, rendered.
pub fn render_cluster(ctx: &RenderContext<'_>) -> Result<Vec<Rendered>, AddonError> {
    addons_for(ctx)
        .into_iter()
        .map(|a| render(a, ctx))
        .collect()
}

fn values_yaml(addon: &Addon, values: &Value) -> Result<String, AddonError> {
    let chart = addon.chart.map(|c| c.version).unwrap_or_default();
    let header = format!(
        "Helm values of add-on {} (chart version {chart}), rendered by hostctl.\n\
         Every key exists in the pinned chart (tests check it with check-values-keys).",
        addon.name
    );
    let doc = yaml::document(addon.name, values)?;
    Ok(yaml::file(&header, &[doc]))
}

/// Serialises objects as one manifest file with a header comment.
pub fn manifest(file: &str, header: &str, objects: &[Value]) -> Result<Manifest, AddonError> {
    Ok(Manifest {
        file: file.to_owned(),
        yaml: yaml::documents(file, header, objects)?,
    })
}

/// The values of an add-on without a chart.
pub fn no_values(_: &RenderContext<'_>) -> Result<Value, AddonError> {
    Ok(Value::Null)
}

/// The objects of an add-on that has only a chart.
pub fn no_objects(_: &RenderContext<'_>) -> Result<Vec<Manifest>, AddonError> {
    Ok(Vec::new())
}
