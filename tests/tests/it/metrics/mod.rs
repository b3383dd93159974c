//! hostctl's own metrics, scraped by a real Prometheus (docs/observability.md,
//! "hostctl's own metrics"): an in-process host daemon and a real node agent
//! enrolled with it serve `GET /metrics` over mutual TLS; Prometheus 2.42
//! scrapes both with the metrics-scraper identity hostctl mints, and every
//! documented series is queried back from it. The same endpoints refuse a
//! peer without a client certificate, one from another CA, and agent-CA
//! certificates without the scraper role (a node's, the admin's — the latter
//! through Prometheus itself, as a target that stays down).
//!
//! Skips (a failure under `HOSTCTL_E2E_REQUIRED`) without
//! `/usr/bin/prometheus`.

mod prometheus;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use host_agent::daemon::NodeEntry;
use node_agent::config::{CommandRunnerKind, Config, HostEndpoints, LogSourceKind, Secret};
use prometheus::Prometheus;
use test_support::host_daemon::{self, Home, Mint, NODE_A};
use test_support::metrics::scrape;
use test_support::poll;

/// Every series docs/observability.md documents, as Prometheus must have
/// it after scraping both endpoints (the newest snapshot's age is absent
/// until a snapshot exists, as documented; this node takes none).
const DAEMON_SERIES: &[&str] = &[
    "hostctl_daemon_reports_received_total",
    "hostctl_daemon_reports_acknowledged_total",
    "hostctl_daemon_enrolments_accepted_total",
    "hostctl_daemon_enrolments_refused_total",
    "hostctl_daemon_nodes_connected",
    "hostctl_daemon_node_connected",
    "hostctl_daemon_node_last_report_age_seconds",
    "hostctl_daemon_etcd_snapshots_stored",
];
const NODE_SERIES: &[&str] = &[
    "hostctl_node_reports_sent_total",
    "hostctl_node_reports_acknowledged_total",
    "hostctl_node_report_buffer_depth",
    "hostctl_node_report_buffer_dropped_total",
    "hostctl_node_report_stream_reconnects_total",
    "hostctl_node_etcd_snapshots_taken_total",
    "hostctl_node_etcd_snapshots_failed_total",
    "hostctl_node_etcd_snapshots_shipped_total",
    "hostctl_node_etcd_snapshot_duration_seconds_count",
    "hostctl_node_resident_memory_bytes",
];

/// Generous: Prometheus starts, scrapes every second, and the agent enrols
/// and reports every second; all of it normally takes a few seconds.
const WAIT: Duration = Duration::from_secs(120);

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write a credential");
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod 0600");
}

/// The node agent's configuration: enrol with `token` at the daemon, serve
/// everything on loopback ports it picks.
fn agent_config(
    home: &Home,
    daemon: &host_agent::daemon::Daemon,
    root: &Path,
    token: String,
) -> Config {
    let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    Config {
        node: NODE_A.to_owned(),
        cluster: "app1".into(),
        control_plane: false,
        host: HostEndpoints {
            enrol_endpoint: daemon.enrol_addr().to_string(),
            endpoint: daemon.host_addr().to_string(),
            server_name: "127.0.0.1".into(),
        },
        ca_pem: home.ca_pem(),
        enrolment_token: Some(Secret::new(token)),
        state_dir: root.join("state"),
        listen: any,
        metrics_listen: Some(any),
        report_interval_seconds: 1,
        buffer_capacity: 100,
        root: root.to_path_buf(),
        log_source: LogSourceKind::File,
        etcd: Default::default(),
        command_runner: CommandRunnerKind::Record,
        kubeadm: Default::default(),
    }
}

#[test]
fn prometheus_scrapes_the_daemon_and_a_node_agent_and_others_are_refused() {
    tests::suite::enter();
    if !Path::new(prometheus::BINARY).exists() {
        test_support::skip(
            "metrics::prometheus_scrapes_the_daemon_and_a_node_agent_and_others_are_refused",
            "no /usr/bin/prometheus (Debian package prometheus)",
        );
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let home = Home::new().expect("home");
    let scratch = tempfile::tempdir().expect("scratch");
    // The node's certificate names loopback, where Prometheus dials it.
    let mut config = home.config();
    config.metrics_port = Some(0);
    config.nodes.insert(
        NODE_A.to_owned(),
        NodeEntry {
            cluster: "app1".into(),
            addresses: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        },
    );
    let daemon = rt
        .block_on(host_agent::daemon::Daemon::start(config, home.pki.clone()))
        .expect("start the daemon");
    let daemon_metrics = daemon.metrics_addr().expect("the daemon serves metrics");
    let token = rt
        .block_on(async {
            let mut control = home.control().await?;
            Ok::<_, host_daemon::BoxError>(
                control
                    .issue_token(NODE_A, Duration::from_secs(600))
                    .await?,
            )
        })
        .expect("issue a token");
    let root = scratch.path().join("node");
    std::fs::create_dir_all(&root).expect("node root");
    let started = rt
        .block_on(node_agent::agent::start(agent_config(
            &home,
            &daemon,
            &root,
            token.token,
        )))
        .expect("start the node agent");
    let node_metrics = started
        .metrics_addr()
        .expect("the node agent serves metrics");
    let agent = rt.spawn(started.run(std::future::pending()));

    // The scraper's credentials as mgmt's Prometheus gets them (the
    // hostctl-metrics Secret), and the admin's, which must not do.
    let scraper = home
        .pki
        .metrics_scraper_identity()
        .expect("scraper identity");
    let admin = home.pki.admin_identity();
    let dir = scratch.path();
    std::fs::write(dir.join("ca.crt"), home.ca_pem()).expect("ca");
    std::fs::write(dir.join("scraper.crt"), &scraper.cert_pem).expect("cert");
    write_private(&dir.join("scraper.key"), scraper.key_pem.expose());
    std::fs::write(dir.join("admin.crt"), &admin.cert_pem).expect("cert");
    write_private(&dir.join("admin.key"), admin.key_pem.expose());
    let tls = |who: &str| {
        format!(
            "{{ca_file: {d}/ca.crt, cert_file: {d}/{who}.crt, key_file: {d}/{who}.key}}",
            d = dir.display()
        )
    };
    let prom_config = format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\n\
         scrape_configs:\n\
         - job_name: hostctl\n  scheme: https\n  tls_config: {scraper}\n  static_configs:\n\
         \x20 - targets: ['{daemon_metrics}']\n    labels: {{role: host}}\n\
         \x20 - targets: ['{node_metrics}']\n    labels: {{cluster: app1, node: {NODE_A}}}\n\
         - job_name: as-admin\n  scheme: https\n  tls_config: {admin}\n  static_configs:\n\
         \x20 - targets: ['{daemon_metrics}']\n",
        scraper = tls("scraper"),
        admin = tls("admin"),
    );
    let prom = Prometheus::start(&dir.join("prometheus"), &prom_config).expect("start prometheus");

    poll::until(
        "Prometheus to scrape both endpoints as healthy",
        WAIT,
        Duration::from_millis(500),
        || {
            let t = prom.targets();
            let up = t
                .iter()
                .filter(|(pool, _, h, _)| pool == "hostctl" && h == "up")
                .count();
            (up == 2).then_some(())
        },
        || format!("targets {:?}\n{}", prom.targets(), prom.log_tail()),
    );
    for series in DAEMON_SERIES {
        let q = format!("{series}{{job=\"hostctl\",role=\"host\"}}");
        poll::until(
            &q,
            WAIT,
            Duration::from_millis(500),
            || (prom.series(&q) > 0).then_some(()),
            || prom.log_tail(),
        );
    }
    for series in NODE_SERIES {
        let q = format!("{series}{{job=\"hostctl\",cluster=\"app1\",node=\"{NODE_A}\"}}");
        poll::until(
            &q,
            WAIT,
            Duration::from_millis(500),
            || (prom.series(&q) > 0).then_some(()),
            || prom.log_tail(),
        );
    }
    // Reports flowed, as both sides count them.
    for q in [
        format!("hostctl_daemon_reports_acknowledged_total{{node=\"{NODE_A}\"}} > 0"),
        format!("hostctl_daemon_enrolments_accepted_total{{node=\"{NODE_A}\"}} > 0"),
        format!("hostctl_daemon_node_connected{{node=\"{NODE_A}\"}} == 1"),
        format!("hostctl_node_reports_acknowledged_total{{node=\"{NODE_A}\"}} > 0"),
    ] {
        poll::until(
            &q,
            WAIT,
            Duration::from_millis(500),
            || (prom.series(&q) > 0).then_some(()),
            || prom.log_tail(),
        );
    }
    // The admin's certificate chains to the same CA, but may not scrape.
    let admin_target = poll::until(
        "the as-admin target to be scraped (and refused)",
        WAIT,
        Duration::from_millis(500),
        || {
            prom.targets()
                .into_iter()
                .find(|(pool, _, h, _)| pool == "as-admin" && h == "down")
        },
        || format!("targets {:?}", prom.targets()),
    );
    assert!(admin_target.3.contains("403"), "{admin_target:?}");

    rt.block_on(async {
        let ca = home.ca_pem();
        for addr in [daemon_metrics, node_metrics] {
            let ok = scrape(
                addr,
                &ca,
                Some((&scraper.cert_pem, scraper.key_pem.expose())),
            )
            .await;
            assert!(
                matches!(&ok, Ok((200, body)) if body.contains("hostctl_")),
                "{addr}: {ok:?}"
            );
            let none = scrape(addr, &ca, None).await;
            assert!(
                none.is_err(),
                "{addr} served a peer without a certificate: {none:?}"
            );
            let node = Mint::node(NODE_A)
                .sign(&home.agent_ca_issuer().expect("issuer"))
                .expect("a node certificate");
            let as_node = scrape(addr, &ca, Some((&node.cert_pem, &node.key_pem))).await;
            assert!(
                matches!(&as_node, Ok((403, _))),
                "{addr} as a node: {as_node:?}"
            );
            let foreign = Mint {
                cn: certs::METRICS_SCRAPER_CN,
                roles: &[certs::ROLE_METRICS],
                ..Mint::node(NODE_A)
            }
            .sign(&host_daemon::foreign_ca().expect("foreign CA"))
            .expect("a foreign certificate");
            let other_ca = scrape(addr, &ca, Some((&foreign.cert_pem, &foreign.key_pem))).await;
            assert!(
                other_ca.is_err(),
                "{addr} served another CA's scraper: {other_ca:?}"
            );
        }
    });
    drop(prom);
    agent.abort();
    rt.block_on(daemon.stop()).expect("stop the daemon");
}
