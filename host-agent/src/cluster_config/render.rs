//! `hostctl render`'s Kubernetes part: every kubeadm config, Cilium values
//! file and manifest, written under the documented layout so the exact
//! bytes the nodes will get can be reviewed and checked by outside tools.
//!
//! ```text
//! DIR/nodes/<node>/kubeadm.yaml                  init (control plane) or join (worker)
//! DIR/clusters/<cluster>/admission-config.yaml   PSA defaults for the API server
//! DIR/clusters/<cluster>/cilium-values.yaml      Helm values
//! DIR/clusters/<cluster>/install-plan.yaml       add-on order and pinned URLs
//! DIR/clusters/<cluster>/manifests/*.yaml        applied after the CNI
//! DIR/clusters/<cluster>/addons/<name>/…          the catalogue's add-ons (crate::addons::render)
//! DIR/platform/<role>/*.yaml                      the Git tree Argo CD syncs (crate::gitops)
//! DIR/fit.txt                                    will it fit? per node (crate::addons::fit)
//! ```

use super::cilium;
use super::cluster::{ClusterView, is_control_plane};
use super::error::{RenderError, Result};
use super::install_plan;
use super::kubeadm::{self, PLACEHOLDER_CA_HASH, PLACEHOLDER_TOKEN};
use super::manifests;
use crate::addons::{
    self,
    render::{Credentials, PlatformSource, RenderContext},
};
use crate::fsutil::write_atomic;
use certs::Pki;
use std::path::{Path, PathBuf};
use topology::Resolved;

/// Mode of files that may hold a private key (the Cilium values with the mesh CA).
const PRIVATE: u32 = 0o600;
/// Mode of everything else.
const PUBLIC: u32 = 0o644;

/// Writes every file of the layout above into `out_dir` and returns their
/// paths. With `pki`, join configs carry each cluster's real CA pin and
/// the Cilium values the shared Cluster Mesh CA; without, both are
/// documented placeholders. Tokens are always placeholders (minted at join time),
/// and so are the add-ons' credentials (minted at install, never written here).
pub fn render_all(
    resolved: &Resolved,
    pki: Option<&Pki>,
    platform: &PlatformSource,
    out_dir: &Path,
) -> Result<Vec<PathBuf>, RenderError> {
    let mut written = Vec::new();
    let mut write = |path: PathBuf, text: &str, mode: u32| -> Result<()> {
        write_atomic(&path, text.as_bytes(), mode)?;
        written.push(path);
        Ok(())
    };
    let mesh_ca = pki.map(Pki::clustermesh_ca);
    for view in ClusterView::all(resolved)? {
        let name = view.name();
        let ca_hash = match pki {
            Some(pki) => pki.cluster(name)?.ca_cert_hash(),
            None => PLACEHOLDER_CA_HASH.to_owned(),
        };
        for node in resolved.topology().nodes_of(name) {
            let text = if is_control_plane(node) {
                kubeadm::init_config(resolved, name)?
            } else {
                kubeadm::join_config(resolved, &node.name, PLACEHOLDER_TOKEN, &ca_hash)?
            };
            write(
                out_dir.join("nodes").join(&node.name).join("kubeadm.yaml"),
                &text,
                PUBLIC,
            )?;
        }
        let dir = out_dir.join("clusters").join(name);
        write(
            dir.join("admission-config.yaml"),
            &manifests::admission_config()?,
            PUBLIC,
        )?;
        let values = cilium::values(resolved, name, mesh_ca.as_ref())?;
        let mode = if mesh_ca.is_some() { PRIVATE } else { PUBLIC };
        write(dir.join("cilium-values.yaml"), &values, mode)?;
        let files = manifests::for_cluster(resolved, name)?;
        let names: Vec<String> = files.iter().map(|(f, _)| f.clone()).collect();
        let review_backup = crate::storage::plan::review_target(resolved, name);
        let addons = addons::render::render_cluster(&RenderContext {
            resolved,
            cluster: name,
            credentials: Credentials::Placeholder,
            platform,
            backup: review_backup.as_ref(),
        })?;
        for r in &addons {
            for (rel, text) in r.files() {
                write(dir.join(rel), &text, PUBLIC)?;
            }
        }
        write(
            dir.join("install-plan.yaml"),
            &install_plan::plan_yaml(name, &names, addons::plan::steps(&addons))?,
            PUBLIC,
        )?;
        for (file, text) in &files {
            write(dir.join("manifests").join(file), text, PUBLIC)?;
        }
    }
    for (rel, bytes) in addons::argocd::platform::tree(resolved)? {
        write(
            out_dir.join("platform").join(rel),
            &String::from_utf8_lossy(&bytes),
            PUBLIC,
        )?;
    }
    write(
        out_dir.join("fit.txt"),
        &addons::fit::report(resolved.topology()).text(),
        PUBLIC,
    )?;
    Ok(written)
}
