//! The spec's four policies (C4) as `ValidatingPolicy` objects: three
//! enforced (`[Deny]`) and one audited (`[Audit]`). Each matches Pods and,
//! through `spec.autogen`, the pod controllers, so a bad Deployment is
//! refused at the Deployment rather than at its ReplicaSet's pods.
//! docs/policy.md has the why of each choice.

use super::super::catalogue::{Addon, Available, Manifest, Placement};
use super::super::error::AddonError;
use super::super::render::{RenderContext, manifest, no_values};
use super::{KYVERNO, NAMESPACE};
use serde_json::{Value, json};
use topology::ClusterRole;

/// The registries containerd mirrors when the topology has
/// `mirrors.registryMirror` (node-agent's `hosts.toml` files): a Pod that
/// names one of them is pulled through the mirror.
pub const MIRRORED_REGISTRIES: &[&str] = &["docker.io", "registry.k8s.io"];

/// Namespaces of components hostctl installs outside the catalogue
/// (bootstrap: the CNI in kube-system, MetalLB, local-path) or that the
/// other helpers' add-ons add (Falco); the catalogue's own app-cluster
/// namespaces are added by [`excluded_namespaces`].
const SYSTEM_NAMESPACES: &[&str] = &[
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "cilium-secrets",
    "metallb-system",
    "local-path-storage",
    "falco",
];

/// The enforced policies' names.
pub const ENFORCED: &[&str] = &[
    "restrict-image-registries",
    "require-requests-limits",
    "disallow-privileged",
];
/// The audited policy's name.
pub const AUDITED: &str = "require-app-version-labels";

/// The policies, once Kyverno's CRDs and webhooks are up.
pub const POLICIES: Addon = Addon {
    name: "kyverno-policies",
    summary: "the spec's four ValidatingPolicies: registry, requests/limits, privileged (enforce), labels (audit)",
    chart: None,
    namespace: NAMESPACE,
    placement: Placement::App,
    depends_on: &["kyverno"],
    after_mgmt: &[],
    needs_backup_target: false,
    values: no_values,
    objects,
    readiness: &[],
    workloads: &[],
    hook: None,
};

/// Every namespace the policies (and Kyverno's webhooks) skip: the system
/// ones plus the namespace of every add-on of an app cluster, read from
/// the catalogue so a new add-on cannot be forgotten; sorted, unique.
pub fn excluded_namespaces() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = SYSTEM_NAMESPACES.to_vec();
    out.extend(Addon::for_role(ClusterRole::App, Available::EVERYTHING).map(|a| a.namespace));
    out.push(KYVERNO.namespace);
    out.retain(|n| *n != "default");
    out.sort_unstable();
    out.dedup();
    out
}

/// The registries an image may come from on this cluster: the mirrored
/// upstreams, plus the mirror's own `host[:port]` when there is one.
pub fn allowed_registries(ctx: &RenderContext<'_>) -> Vec<String> {
    if ctx.resolved.topology().managed_mirrors() {
        // Managed mirrors: every upstream has a Harbor proxy-cache project
        // (docs/mirrors.md), and Harbor itself serves hostctl's artifacts.
        let mut out: Vec<String> = crate::mirrors::upstreams::UPSTREAMS
            .iter()
            .map(|u| u.registry.to_owned())
            .collect();
        out.push(format!(
            "{}:{}",
            ctx.resolved.host_agent_address(),
            crate::mirrors::HARBOR_PORT
        ));
        return out;
    }
    let mut out: Vec<String> = MIRRORED_REGISTRIES.iter().map(|r| r.to_string()).collect();
    let mirror = ctx
        .resolved
        .topology()
        .mirrors
        .as_ref()
        .and_then(|m| m.registry_mirror.as_ref());
    if let Some(url) = mirror {
        let host = url
            .as_str()
            .split_once("://")
            .map_or(url.as_str(), |(_, rest)| rest);
        let host = host.split('/').next().unwrap_or(host);
        out.push(host.to_owned());
    }
    out
}

/// Containers, init containers and ephemeral containers of the object.
const CONTAINERS: &str = "object.spec.containers \
    + (has(object.spec.initContainers) ? object.spec.initContainers : []) \
    + (has(object.spec.ephemeralContainers) ? object.spec.ephemeralContainers : [])";

/// The registry part of an image reference as containerd resolves it: the
/// first path segment when it has a `.` or `:` or is `localhost`, else
/// the implicit `docker.io` (`nginx`, `library/nginx`). A digest
/// (`@sha256:`) or tag never sits in the first segment of a multi-segment
/// reference, and a single-segment one (`nginx@sha256:…`) is docker.io.
pub const REGISTRY_RULE: &str = "variables.containers.all(c, \
    (c.image.contains('/') && (c.image.split('/')[0].contains('.') \
      || c.image.split('/')[0].contains(':') || c.image.split('/')[0] == 'localhost')) \
    ? c.image.split('/')[0] in variables.allowed \
    : 'docker.io' in variables.allowed)";

/// Requests and limits for both CPU and memory on every container.
pub const RESOURCES_RULE: &str = "variables.containers.all(c, has(c.resources) \
    && has(c.resources.requests) && has(c.resources.limits) \
    && 'cpu' in c.resources.requests && 'memory' in c.resources.requests \
    && 'cpu' in c.resources.limits && 'memory' in c.resources.limits)";

/// No container with `securityContext.privileged: true`.
pub const PRIVILEGED_RULE: &str = "variables.containers.all(c, !has(c.securityContext) \
    || !has(c.securityContext.privileged) || c.securityContext.privileged == false)";

/// Labels `app` and `version` on the object (the Pod, or with autogen the
/// controller's pod template, which is what Kyverno binds as `object`).
pub const LABELS_RULE: &str = "has(object.metadata.labels) \
    && 'app' in object.metadata.labels && 'version' in object.metadata.labels";

fn policy(
    name: &str,
    action: &str,
    variables: Vec<Value>,
    expression: &str,
    message: &str,
) -> Value {
    let mut vars = vec![json!({"name": "containers", "expression": CONTAINERS})];
    vars.extend(variables);
    json!({
        "apiVersion": "policies.kyverno.io/v1",
        "kind": "ValidatingPolicy",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "hostctl"}},
        "spec": {
            "validationActions": [action],
            "autogen": {"podControllers": {"controllers":
                ["deployments", "statefulsets", "daemonsets", "jobs", "cronjobs"]}},
            "matchConstraints": {
                "resourceRules": [{
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": ["pods", "pods/ephemeralcontainers"],
                }],
                "namespaceSelector": {"matchExpressions": [{
                    "key": "kubernetes.io/metadata.name",
                    "operator": "NotIn",
                    "values": excluded_namespaces(),
                }]},
            },
            "variables": vars,
            "validations": [{"expression": expression, "message": message}],
        },
    })
}

/// The four policies for one app cluster.
pub fn render(ctx: &RenderContext<'_>) -> Vec<Value> {
    render_for(&allowed_registries(ctx))
}

/// The four policies, images allowed from `allowed` registries.
pub fn render_for(allowed: &[String]) -> Vec<Value> {
    let list = allowed
        .iter()
        .map(|r| format!("'{r}'"))
        .collect::<Vec<_>>()
        .join(", ");
    vec![
        policy(
            ENFORCED[0],
            "Deny",
            vec![json!({"name": "allowed", "expression": format!("[{list}]")})],
            REGISTRY_RULE,
            &format!(
                "images must come from a mirrored registry: {}",
                allowed.join(", ")
            ),
        ),
        policy(
            ENFORCED[1],
            "Deny",
            Vec::new(),
            RESOURCES_RULE,
            "every container needs cpu and memory requests and limits",
        ),
        policy(
            ENFORCED[2],
            "Deny",
            Vec::new(),
            PRIVILEGED_RULE,
            "privileged containers are not allowed",
        ),
        policy(
            AUDITED,
            "Audit",
            Vec::new(),
            LABELS_RULE,
            "workloads should carry the labels app and version",
        ),
    ]
}

fn objects(ctx: &RenderContext<'_>) -> Result<Vec<Manifest>, AddonError> {
    Ok(vec![manifest(
        "10-policies.yaml",
        "# the spec's four policies (C4), rendered by hostctl",
        &render(ctx),
    )?])
}

#[cfg(test)]
#[path = "cel_tests.rs"]
mod cel_tests;
