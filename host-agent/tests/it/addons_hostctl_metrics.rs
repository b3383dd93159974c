//! `hostctl-metrics` (docs/observability.md, "hostctl's own metrics"): the
//! ScrapeConfig names the host daemon and every node of the topology on
//! their metrics ports with `cluster`/`node` labels, reads its TLS material
//! from the scraper Secret, and the Secret carries the minted scraper
//! identity (role `hostctl:metrics`, from the agent CA) at install and only
//! placeholders for review. Its schema check is the upstream-schema suite's.

use host_agent::addons::observability::agent_plane::{NAME, SECRET};
use host_agent::addons::render::{Credentials, PlatformSource, RenderContext, render_cluster};
use host_agent::agent_plane::{HOST_METRICS_PORT, NODE_METRICS_PORT};
use host_agent::cluster_api::apply::parse_documents;
use serde_json::Value;
use topology::Resolved;

fn resolved() -> Resolved {
    topology::default_topology()
        .resolve(None)
        .expect("resolves")
}

/// The add-on's objects on `cluster`, as JSON, by kind.
fn objects(resolved: &Resolved, cluster: &str, credentials: Credentials<'_>) -> Vec<Value> {
    let platform = PlatformSource::served_by_host(resolved, None);
    let ctx = RenderContext {
        resolved,
        cluster,
        credentials,
        platform: &platform,
        backup: None,
    };
    let rendered = render_cluster(&ctx).expect("renders");
    let Some(addon) = rendered.iter().find(|r| r.addon.name == NAME) else {
        return Vec::new();
    };
    addon
        .manifests
        .iter()
        .flat_map(|m| parse_documents(&m.file, &m.yaml).expect("parses"))
        .map(|d| serde_json::to_value(&d.object).expect("json"))
        .collect()
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {objects:?}"))
}

#[test]
fn the_scrape_config_targets_the_daemon_and_every_node_with_their_labels() {
    let resolved = resolved();
    let objects = objects(&resolved, "mgmt", Credentials::Placeholder);
    let scrape = of_kind(&objects, "ScrapeConfig");
    assert_eq!(scrape["metadata"]["namespace"], "monitoring");
    let spec = &scrape["spec"];
    assert_eq!(spec["scheme"], "HTTPS");
    assert_eq!(spec["metricsPath"], "/metrics");
    assert_eq!(spec["tlsConfig"]["keySecret"]["name"], SECRET);
    assert_eq!(spec["tlsConfig"]["cert"]["secret"]["name"], SECRET);
    assert_eq!(spec["tlsConfig"]["ca"]["secret"]["name"], SECRET);
    let groups = spec["staticConfigs"].as_array().expect("staticConfigs");
    let host = format!("{}:{HOST_METRICS_PORT}", resolved.host_agent_address());
    assert_eq!(groups[0]["targets"][0], host.as_str());
    assert_eq!(groups[0]["labels"]["role"], "host");
    let nodes = resolved.topology().nodes();
    assert_eq!(groups.len(), nodes.len() + 1, "{groups:?}");
    for node in nodes {
        let ip = resolved.node_ip(&node.name).expect("node address");
        let group = groups
            .iter()
            .find(|g| g["labels"]["node"] == node.name.as_str())
            .unwrap_or_else(|| panic!("no target for {}", node.name));
        assert_eq!(
            group["targets"][0],
            format!("{ip}:{NODE_METRICS_PORT}").as_str()
        );
        assert_eq!(group["labels"]["cluster"], node.cluster.as_str());
    }
    // Only mgmt's Prometheus scrapes the agents.
    for cluster in ["app1", "app2"] {
        assert!(objects_on(&resolved, cluster).is_empty(), "{cluster}");
    }
}

fn objects_on(resolved: &Resolved, cluster: &str) -> Vec<Value> {
    objects(resolved, cluster, Credentials::Placeholder)
}

#[test]
fn the_secret_holds_the_minted_scraper_identity_at_install_and_no_key_for_review() {
    let resolved = resolved();
    let review = objects(&resolved, "mgmt", Credentials::Placeholder);
    let text = serde_json::to_string(&review).expect("json");
    assert!(
        !text.contains("BEGIN"),
        "a key or certificate in the review rendering"
    );

    let home = tempfile::tempdir().expect("home");
    let spec = certs::PkiSpec {
        // Every add-on of mgmt mints, Argo CD for each cluster.
        clusters: resolved
            .topology()
            .clusters()
            .iter()
            .map(|c| c.name.clone())
            .collect(),
        host_sans: vec!["192.168.64.1".into()],
    };
    let pki = certs::Pki::open_or_init(home.path(), &spec).expect("pki");
    let installed = objects(&resolved, "mgmt", Credentials::Mint(&pki));
    let secret = of_kind(&installed, "Secret");
    assert_eq!(secret["metadata"]["name"], SECRET);
    assert_eq!(secret["type"], "kubernetes.io/tls");
    let data = &secret["stringData"];
    let pem = |k: &str| data[k].as_str().unwrap_or_else(|| panic!("{k}")).to_owned();
    assert_eq!(pem("ca.crt"), pki.agent_ca_pem());
    let der = certs::cert_der_from_pem(&pem("tls.crt")).expect("certificate");
    assert_eq!(
        certs::roles_of(&der).expect("roles"),
        vec![certs::ROLE_METRICS.to_owned()]
    );
    assert!(pem("tls.key").contains("PRIVATE KEY"));
    // The same identity as the one kept under the home: installs agree.
    let kept = pki.metrics_scraper_identity().expect("identity");
    assert_eq!(pem("tls.crt"), kept.cert_pem);
}
