//! The platform repository as Argo CD sees it: a repository Secret, the
//! `platform` AppProject, and one `ApplicationSet` per cluster role whose
//! cluster generator selects the clusters labelled with that role and
//! syncs the repository's directory of the same name (`mgmt/`, `app/`).

use super::NAMESPACE;
use super::clusters::ROLE_LABEL;
use crate::addons::error::AddonError;
use crate::addons::render::{RenderContext, manifest};
use serde_json::{Value, json};

/// The AppProject every platform Application belongs to.
pub const PROJECT: &str = "platform";
/// The branch hostctl publishes to.
pub const BRANCH: &str = "main";

/// The repository Secret, the project and the ApplicationSets.
pub fn objects(ctx: &RenderContext<'_>) -> Vec<Value> {
    let url = &ctx.platform.repo_url;
    let mut out = vec![
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "repo-platform",
                "namespace": NAMESPACE,
                "labels": {"argocd.argoproj.io/secret-type": "repository"},
            },
            "type": "Opaque",
            "stringData": {"type": "git", "name": "platform", "url": url, "project": PROJECT},
        }),
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AppProject",
            "metadata": {"name": PROJECT, "namespace": NAMESPACE},
            "spec": {
                "description": "Platform components hostctl hands to Argo CD",
                "sourceRepos": [url],
                "destinations": [{"server": "*", "namespace": "*"}],
                "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
            },
        }),
    ];
    for role in ["mgmt", "app"] {
        out.push(application_set(url, role));
    }
    out
}

fn application_set(url: &str, role: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": format!("platform-{role}"), "namespace": NAMESPACE},
        "spec": {
            "goTemplate": true,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [{"clusters": {"selector": {"matchLabels": {ROLE_LABEL: role}}}}],
            "template": {
                "metadata": {"name": "platform-{{.name}}"},
                "spec": {
                    "project": PROJECT,
                    "source": {"repoURL": url, "targetRevision": BRANCH, "path": role,
                               "directory": {"recurse": true}},
                    "destination": {"server": "{{.server}}"},
                    "syncPolicy": {
                        "automated": {"prune": true, "selfHeal": true},
                        "syncOptions": ["ServerSideApply=true", "CreateNamespace=true"],
                    },
                },
            },
        },
    })
}

/// The platform repository's content as hostctl publishes it (and
/// `render` writes it under `DIR/platform/`): one directory per cluster
/// role, which that role's ApplicationSet syncs to every cluster of the
/// role. Components hostctl hands to Argo CD add their manifests here;
/// today each directory holds the `hostctl-platform` ConfigMap that says
/// what the clusters of the role are and proves the sync path end to end.
pub fn tree(resolved: &topology::Resolved) -> Result<Vec<(String, Vec<u8>)>, AddonError> {
    let topology = resolved.topology();
    let mut files = Vec::new();
    for (role, is_role) in [
        ("mgmt", topology::ClusterRole::Mgmt),
        ("app", topology::ClusterRole::App),
    ] {
        let clusters: Vec<&str> = topology
            .clusters()
            .iter()
            .filter(|c| c.role == is_role)
            .map(|c| c.name.as_str())
            .collect();
        let config_map = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "hostctl-platform", "namespace": "kube-public",
                         "labels": {"app.kubernetes.io/managed-by": "argocd"}},
            "data": {
                "role": role,
                "clusters": clusters.join(","),
                "source": "published by hostctl; Argo CD on mgmt syncs this directory",
            },
        });
        let m = manifest(
            "hostctl-platform.yaml",
            &format!("Synced by Argo CD's ApplicationSet platform-{role} to every {role} cluster."),
            &[config_map],
        )?;
        files.push((format!("{role}/{}", m.file), m.yaml.into_bytes()));
    }
    Ok(files)
}
