//! The platform repository as Argo CD sees it: a repository Secret, the
//! `platform` AppProject, and one `ApplicationSet` per cluster role whose
//! cluster generator selects the clusters labelled with that role and
//! syncs the repository's directory of the same name (`mgmt/`, `app/`).

use super::NAMESPACE;
use super::clusters::ROLE_LABEL;
use crate::addons::render::RenderContext;
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
