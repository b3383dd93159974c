//! The objects k8sgpt needs once the topology chooses a backend: on mgmt
//! the API key's ExternalSecret, one kubeconfig Secret and one `K8sGPT`
//! object per cluster ([`analysers`]); on every cluster the read-only
//! ClusterRole and its binding ([`access`]). Without a backend both are
//! empty: nothing is analysed and no identity exists.

use super::{
    ANALYSER, K8SGPT_VERSION, KEY_PATH, KEY_PROPERTY, NAMESPACE, READER_GROUP, READER_USER,
};
use crate::addons::catalogue::Manifest;
use crate::addons::error::AddonError;
use crate::addons::external_secrets::external_secret;
use crate::addons::remote::{ClientIdentity, RemoteAccess, group_binding};
use crate::addons::render::{RenderContext, manifest};
use serde_json::{Value, json};
use topology::K8sgpt;

/// The Secret (made by External Secrets) holding the backend's API key.
pub const KEY_SECRET: &str = "k8sgpt-llm";
/// The read-only ClusterRole every cluster grants [`READER_GROUP`].
pub const READER_ROLE: &str = "hostctl-k8sgpt-reader";
/// The key of each kubeconfig Secret.
pub const KUBECONFIG_KEY: &str = "kubeconfig";

const IDENTITY: ClientIdentity = ClientIdentity {
    addon: "k8sgpt",
    user: READER_USER,
    group: READER_GROUP,
};

/// The `K8sGPT` object of `cluster` (and its Deployment) is named so.
pub fn analyser_name(cluster: &str) -> String {
    format!("k8sgpt-{cluster}")
}

/// The Secret holding the analyser of `cluster`'s kubeconfig.
pub fn kubeconfig_secret(cluster: &str) -> String {
    format!("k8sgpt-kubeconfig-{cluster}")
}

/// mgmt's objects: the key's ExternalSecret (backends with a key), then
/// per cluster a kubeconfig Secret and a `K8sGPT` object.
pub fn analysers(ctx: &RenderContext<'_>) -> Result<Vec<Manifest>, AddonError> {
    let Some(k8sgpt) = ctx.resolved.topology().k8sgpt() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    if k8sgpt.backend.needs_key() {
        out.push(manifest(
            "10-llm-key.yaml",
            &format!(
                "The {} API key, from mgmt's Vault (secret/{KEY_PATH}, property {KEY_PROPERTY})\n\
                 through External Secrets: the key is never in a rendered file. Until it is\n\
                 in Vault the analysers wait (the operator needs the Secret).",
                k8sgpt.backend
            ),
            &[external_secret(
                KEY_SECRET,
                NAMESPACE,
                &[(KEY_PROPERTY, KEY_PATH, KEY_PROPERTY)],
            )],
        )?);
    }
    let mut secrets = Vec::new();
    let mut analysers = Vec::new();
    for cluster in ctx.resolved.topology().clusters() {
        let access = RemoteAccess::of(ctx, &cluster.name, IDENTITY)?;
        secrets.push(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": kubeconfig_secret(&cluster.name), "namespace": NAMESPACE,
                         "labels": {"app.kubernetes.io/managed-by": "hostctl",
                                    "hostctl.dev/cluster": cluster.name}},
            "type": "Opaque",
            "stringData": {KUBECONFIG_KEY: access.kubeconfig(&cluster.name, IDENTITY)?},
        }));
        analysers.push(analyser(k8sgpt, &cluster.name));
    }
    out.push(manifest(
        "20-kubeconfigs.yaml",
        "One kubeconfig per cluster for its analyser: a client certificate minted from\n\
         that cluster's CA (group hostctl:k8sgpt, bound read-only there; never\n\
         system:masters). Applied server-side, so no key lands in an annotation.",
        &secrets,
    )?);
    out.push(manifest(
        "30-k8sgpt.yaml",
        &format!(
            "One analyser per cluster, backend {} model {}; results are Result objects\n\
             in this namespace, one per finding.",
            k8sgpt.backend, k8sgpt.model
        ),
        &analysers,
    )?);
    Ok(out)
}

/// The `K8sGPT` object analysing `cluster` through its kubeconfig Secret.
fn analyser(k8sgpt: &K8sgpt, cluster: &str) -> Value {
    let mut ai = json!({
        "enabled": true,
        "backend": k8sgpt.backend.as_str(),
        "model": k8sgpt.model,
        // Object names are masked before anything is sent to the backend.
        "anonymized": true,
    });
    if let Some(url) = &k8sgpt.base_url {
        ai["baseUrl"] = json!(url.as_str());
    }
    if k8sgpt.backend.needs_key() {
        ai["secret"] = json!({"name": KEY_SECRET, "key": KEY_PROPERTY});
    }
    json!({
        "apiVersion": "core.k8sgpt.ai/v1alpha1",
        "kind": "K8sGPT",
        "metadata": {"name": analyser_name(cluster), "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/managed-by": "hostctl",
                                "hostctl.dev/cluster": cluster}},
        "spec": {
            "ai": ai,
            "repository": "ghcr.io/k8sgpt-ai/k8sgpt",
            "version": K8SGPT_VERSION,
            "noCache": false,
            "kubeconfig": {"name": kubeconfig_secret(cluster), "key": KUBECONFIG_KEY},
            "resources": ANALYSER.resources_value(),
        },
    })
}

/// Every cluster's read-only role for the analysers, and its binding.
pub fn access(ctx: &RenderContext<'_>) -> Result<Vec<Manifest>, AddonError> {
    if ctx.resolved.topology().k8sgpt().is_none() {
        return Ok(Vec::new());
    }
    Ok(vec![manifest(
        "10-k8sgpt-reader.yaml",
        "What k8sgpt's analyser on mgmt may read here: get/list/watch on the kinds its\n\
         analysers inspect, and no Secrets. Deleting the binding revokes it.",
        &[
            reader_role(),
            group_binding(READER_ROLE, READER_ROLE, READER_GROUP),
        ],
    )?])
}

/// get/list/watch on what k8sgpt's default and optional analysers read
/// (pods, workloads, services, ingresses, PVCs, nodes, webhooks, HPAs,
/// PDBs, network policies, Gateway API routes, events) — not Secrets,
/// not ConfigMaps, not pod logs: nothing beyond object state reaches the
/// LLM.
fn reader_role() -> Value {
    let read = |group: &str, resources: &[&str]| json!({"apiGroups": [group], "resources": resources, "verbs": ["get", "list", "watch"]});
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": READER_ROLE, "labels": {"app.kubernetes.io/managed-by": "hostctl"}},
        "rules": [
            read("", &["pods", "services", "endpoints", "events", "nodes", "namespaces",
                       "persistentvolumeclaims", "persistentvolumes", "replicationcontrollers"]),
            read("apps", &["deployments", "replicasets", "statefulsets", "daemonsets"]),
            read("batch", &["cronjobs", "jobs"]),
            read("networking.k8s.io", &["ingresses", "networkpolicies"]),
            read("policy", &["poddisruptionbudgets"]),
            read("autoscaling", &["horizontalpodautoscalers"]),
            read("admissionregistration.k8s.io",
                 &["mutatingwebhookconfigurations", "validatingwebhookconfigurations"]),
            read("storage.k8s.io", &["storageclasses"]),
            read("gateway.networking.k8s.io", &["gatewayclasses", "gateways", "httproutes"]),
            read("events.k8s.io", &["events"]),
        ],
    })
}
