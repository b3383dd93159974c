//! `hostctl-metrics`: mgmt's Prometheus scrapes hostctl's own metrics —
//! the host daemon and every node agent (docs/observability.md,
//! "hostctl's own metrics").
//!
//! Two objects in `monitoring` on mgmt:
//! - a `kubernetes.io/tls` Secret with the **metrics-scraper** client
//!   identity (`certs::Pki::metrics_scraper_identity`: role
//!   `hostctl:metrics`, which the agents' metrics endpoints accept and
//!   every other agent-plane method refuses) and the agent CA, which signs
//!   the endpoints' server certificates;
//! - a `monitoring.coreos.com/v1alpha1` **ScrapeConfig** with static
//!   targets: the host daemon on the host's address (port
//!   [`HOST_METRICS_PORT`], labelled `role: host`) and every node on its
//!   address (port [`NODE_METRICS_PORT`], labelled `role: node`,
//!   `cluster` and `node`), over HTTPS with the Secret's certificates.
//!   Static because the targets are the topology's addresses, which
//!   Kubernetes discovery knows nothing of (the host is not in any
//!   cluster; an app cluster's nodes are not mgmt's).
//!
//! The key is minted for install only ([`Credentials::Mint`]); the review
//! rendering carries argocd's marked placeholder, as its cluster Secrets
//! do, so `hostctl render` and the golden files never hold a key.

use serde_json::{Value, json};

use super::NAMESPACE;
use crate::addons::argocd::clusters::PLACEHOLDER;
use crate::addons::catalogue::{Addon, Manifest, Placement};
use crate::addons::error::AddonError;
use crate::addons::render::{Credentials, RenderContext, manifest, no_values};
use crate::agent_plane::{HOST_METRICS_PORT, NODE_METRICS_PORT};

/// The add-on's name (also the ScrapeConfig's `jobName`).
pub const NAME: &str = "hostctl-metrics";
/// The Secret holding the scraper's identity and the agent CA.
pub const SECRET: &str = "hostctl-metrics-scraper";
/// The Helm release whose Prometheus selects this ScrapeConfig
/// (kube-prometheus-stack selects `release: <its release>` by default).
pub const PROMETHEUS_RELEASE: &str = "prometheus-stack";
/// How often Prometheus scrapes the agents.
pub const SCRAPE_INTERVAL: &str = "30s";

/// The catalogue entry.
pub const HOSTCTL_METRICS: Addon = Addon {
    name: NAME,
    summary: "mgmt's Prometheus scrapes the host daemon and every node agent (mutual TLS)",
    chart: None,
    namespace: NAMESPACE,
    placement: Placement::Mgmt,
    // The stack installs the ScrapeConfig CRD and the Prometheus that
    // selects it.
    depends_on: &[super::prometheus::STACK.name],
    after_mgmt: &[],
    needs_backup_target: false,
    values: no_values,
    objects,
    readiness: &[],
    workloads: &[],
    hook: None,
};

fn objects(ctx: &RenderContext<'_>) -> Result<Vec<Manifest>, AddonError> {
    let header = "hostctl's own metrics: mgmt's Prometheus scrapes the host daemon and every \
                  node agent over mutual TLS, as the metrics-scraper identity.";
    Ok(vec![manifest(
        "10-hostctl-metrics.yaml",
        header,
        &[scraper_secret(ctx)?, scrape_config(ctx)],
    )?])
}

fn labels() -> Value {
    json!({"app.kubernetes.io/managed-by": "hostctl", "app.kubernetes.io/part-of": NAME})
}

/// The scraper's certificate, key and the agent CA, or placeholders.
fn scraper_secret(ctx: &RenderContext<'_>) -> Result<Value, AddonError> {
    let (crt, key, ca) = match ctx.credentials {
        Credentials::Placeholder => (
            PLACEHOLDER.to_owned(),
            PLACEHOLDER.to_owned(),
            PLACEHOLDER.to_owned(),
        ),
        Credentials::Mint(pki) => {
            let identity =
                pki.metrics_scraper_identity()
                    .map_err(|source| AddonError::Credentials {
                        addon: NAME.into(),
                        cluster: ctx.cluster.to_owned(),
                        source: Box::new(source),
                    })?;
            (
                identity.cert_pem,
                identity.key_pem.expose().to_owned(),
                pki.agent_ca_pem().to_owned(),
            )
        }
    };
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET, "namespace": NAMESPACE, "labels": labels()},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": crt, "tls.key": key, "ca.crt": ca},
    }))
}

/// Static targets: the daemon, then every node of the topology.
fn static_configs(ctx: &RenderContext<'_>) -> Vec<Value> {
    let host = ctx.resolved.host_agent_address();
    let mut out = vec![json!({
        "targets": [format!("{host}:{HOST_METRICS_PORT}")],
        "labels": {"role": "host"},
    })];
    for node in ctx.resolved.topology().nodes() {
        if let Some(ip) = ctx.resolved.node_ip(&node.name) {
            out.push(json!({
                "targets": [format!("{ip}:{NODE_METRICS_PORT}")],
                "labels": {"role": "node", "cluster": node.cluster, "node": node.name},
            }));
        }
    }
    out
}

fn scrape_config(ctx: &RenderContext<'_>) -> Value {
    let key = |k: &str| json!({"name": SECRET, "key": k});
    let mut labels = labels();
    labels["release"] = json!(PROMETHEUS_RELEASE);
    json!({
        "apiVersion": "monitoring.coreos.com/v1alpha1",
        "kind": "ScrapeConfig",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "jobName": NAME,
            "scheme": "HTTPS",
            "metricsPath": telemetry::metrics::server::METRICS_PATH,
            "scrapeInterval": SCRAPE_INTERVAL,
            // Each target's certificate names its address (host SANs,
            // node IP SANs), so no serverName is needed.
            "tlsConfig": {
                "ca": {"secret": key("ca.crt")},
                "cert": {"secret": key("tls.crt")},
                "keySecret": key("tls.key"),
            },
            "staticConfigs": static_configs(ctx),
        },
    })
}
