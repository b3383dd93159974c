use super::*;
use crate::addons::budget::{Replicas, Workload};
use crate::addons::catalogue::Placement;

fn default() -> Topology {
    topology::default_topology()
}

/// The default topology with one node's memory changed.
fn with_memory(node: &str, memory: &str) -> Topology {
    let yaml = topology::default_yaml();
    let at = yaml
        .find(&format!("name: {node}\n"))
        .expect("node in default");
    let (head, tail) = yaml.split_at(at);
    let line = tail.find("memory: ").expect("memory field");
    let end = line + tail[line..].find('\n').expect("line end");
    let edited = format!("{head}{}memory: {memory}{}", &tail[..line], &tail[end..]);
    topology::parse(&edited, "t.yaml").expect("parses").topology
}

/// The installed scenario with `addons` in place of the catalogue.
fn with_addons(topology: &Topology, addons: &[Addon]) -> FitReport {
    report_for(
        topology,
        Scenario {
            addons,
            ..Scenario::installed()
        },
    )
}

fn node<'a>(report: &'a FitReport, name: &str) -> &'a NodeFit {
    report.nodes.iter().find(|n| n.node == name).expect("node")
}

/// A component that is not in the catalogue, for what-if projections.
const fn heavy(name: &'static str, workloads: &'static [Workload]) -> Addon {
    let mut addon = crate::addons::argocd::ARGOCD;
    addon.name = name;
    addon.placement = Placement::Mgmt;
    addon.workloads = workloads;
    addon
}

const BIG_REQUEST: &[Workload] = &[Workload {
    name: "big-database",
    replicas: Replicas::One,
    requests: Resources::new(100, 5500),
    limits: Resources::new(0, 6000),
    expected_mib: 4000,
}];

const HUNGRY: &[Workload] = &[Workload {
    name: "hungry-cache",
    replicas: Replicas::One,
    requests: Resources::new(10, 64),
    limits: Resources::new(0, 6000),
    expected_mib: 3000,
}];

#[test]
fn the_default_topology_fits_without_warnings_and_every_pod_is_placed() {
    let report = report(&default());
    assert_eq!(report.warnings().count(), 0, "{}", report.text());
    assert_eq!(report.nodes.len(), 6);
    for n in &report.nodes {
        assert!(n.requests.fits_in(n.allocatable), "{n:?}");
        assert!(n.expected_mib <= n.capacity.memory_mib, "{n:?}");
    }
    // Every Argo CD workload landed somewhere on mgmt, nowhere else.
    for w in crate::addons::argocd::WORKLOADS {
        let on: Vec<&str> = report
            .nodes
            .iter()
            .filter(|n| n.pods.iter().any(|p| p == w.name))
            .map(|n| n.cluster.as_str())
            .collect();
        assert_eq!(on, ["mgmt"], "{}", w.name);
    }
}

#[test]
fn allocatable_is_the_vm_less_the_kernel_the_kubelet_reservations_and_eviction() {
    let report = report(&default());
    let cp = node(&report, "mgmt-cp");
    // 4096 MiB less 3% (122) = 3974; less 256 + 256 + 100 = 3362.
    assert_eq!(cp.capacity, Resources::new(2000, 3974));
    assert_eq!(cp.allocatable, Resources::new(1800, 3362));
}

#[test]
fn static_pods_run_on_the_control_plane_daemonsets_on_every_node() {
    let report = report(&default());
    for n in &report.nodes {
        assert_eq!(
            n.pods.iter().any(|p| p == "etcd"),
            n.control_plane,
            "{}",
            n.node
        );
        assert!(n.pods.iter().any(|p| p == "cilium"), "{}", n.node);
    }
}

#[test]
fn only_mgmts_control_plane_is_untainted_so_app_control_planes_get_no_deployment() {
    let report = report(&default());
    assert!(!node(&report, "mgmt-cp").tainted);
    for cp in ["app1-cp", "app2-cp"] {
        let n = node(&report, cp);
        assert!(n.tainted);
        for p in [
            "hubble-relay",
            "metallb-controller",
            "local-path-provisioner",
        ] {
            assert!(!n.pods.iter().any(|x| x == p), "{p} on tainted {cp}");
        }
        // CoreDNS and the operator tolerate the taint: one replica each.
        assert!(n.pods.iter().any(|x| x == "coredns"), "{cp}: {:?}", n.pods);
    }
    // Untainted, mgmt's control plane takes a share of the replicas.
    let mgmt_cp = node(&report, "mgmt-cp");
    assert!(
        mgmt_cp.pods.iter().any(|p| p.starts_with("argocd-")),
        "{:?}",
        mgmt_cp.pods
    );
}

#[test]
fn a_pod_no_node_has_room_for_is_a_pending_warning_with_the_fix() {
    let addons = [heavy("big", BIG_REQUEST)];
    let report = with_addons(&default(), &addons);
    let w: Vec<String> = report.warnings().map(ToString::to_string).collect();
    assert!(
        w.iter().any(|w| w.contains("cluster mgmt")
            && w.contains("big-database requests 100m CPU and 5500Mi")
            && w.contains("Pending")
            && w.contains("more `memory:`")),
        "{w:?}"
    );
    // With an 8 GiB worker it schedules.
    let report = with_addons(&with_memory("mgmt-worker-0", "8GiB"), &addons);
    assert!(
        !report.warnings().any(|w| w.message.contains("Pending")),
        "{}",
        report.text()
    );
}

#[test]
fn expected_use_past_the_eviction_threshold_warns_with_a_memory_to_set() {
    let addons = [heavy("hungry", HUNGRY)];
    let report = with_addons(&with_memory("mgmt-worker-0", "3GiB"), &addons);
    let w: Vec<&Finding> = report.warnings().collect();
    let evict = w
        .iter()
        .find(|f| f.message.contains("headroom"))
        .unwrap_or_else(|| panic!("{}", report.text()));
    assert!(evict.fix.contains("set `memory: "), "{evict}");
    assert!(evict.fix.contains("in the topology"), "{evict}");
    // The memory it suggests clears the warning on that node.
    let gib = evict
        .fix
        .split("memory: ")
        .nth(1)
        .and_then(|s| s.split("GiB").next())
        .expect("a GiB figure");
    let fixed = with_addons(&with_memory(&evict.subject, &format!("{gib}GiB")), &addons);
    assert!(
        !fixed
            .warnings()
            .any(|f| f.subject == evict.subject && f.message.contains("headroom")),
        "{}",
        fixed.text()
    );
}

#[test]
fn limits_beyond_allocatable_are_a_note_not_a_warning() {
    let addons = [heavy("hungry", HUNGRY)];
    let report = with_addons(&default(), &addons);
    let notes: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Note)
        .collect();
    assert!(
        notes.iter().any(|f| f.message.contains("overcommitted")),
        "{}",
        report.text()
    );
}

#[test]
fn the_text_has_a_row_per_node_and_says_when_there_is_nothing_to_find() {
    // The whole catalogue overcommits limits by design (a note); the
    // cluster baseline alone has nothing to say.
    let text = with_addons(&default(), &[]).text();
    for n in [
        "mgmt-cp",
        "mgmt-worker-0",
        "app1-cp (tainted)",
        "app2-worker-0",
    ] {
        assert!(text.contains(n), "{n}: {text}");
    }
    assert!(text.contains("no findings"), "{text}");
}

/// The spec's mgmt set (SPEC §12 requests and limits where it gives them,
/// platform-addons §6 for the rest and for expected use), beside Argo CD.
const SPEC_MGMT: &[Workload] = &[
    spec("vault", (100, 256), (500, 512), 200),
    spec("prometheus", (200, 512), (1000, 2048), 1100),
    spec("thanos", (100, 256), (500, 1024), 600),
    spec("loki", (100, 256), (500, 1024), 450),
    spec("grafana", (100, 128), (500, 512), 220),
    spec("alertmanager-and-ruler", (50, 64), (0, 256), 140),
    spec("eso-and-cert-manager", (50, 128), (0, 256), 275),
    spec("velero", (50, 128), (0, 256), 115),
    spec("k8sgpt", (50, 64), (0, 256), 150),
];

const fn spec(name: &'static str, r: (u32, u32), l: (u32, u32), expected_mib: u32) -> Workload {
    Workload {
        name,
        replicas: Replicas::One,
        requests: Resources::new(r.0, r.1),
        limits: Resources::new(l.0, l.1),
        expected_mib,
    }
}

/// The default's justification (docs/platform.md, "Will it fit?"): with
/// the spec's whole mgmt platform, a tainted control plane leaves the one
/// worker within a tenth of its eviction threshold; untainted, the worker
/// holds its share, and the control plane's warning names the memory that
/// clears it.
#[test]
fn the_specs_mgmt_platform_needs_mgmts_control_plane_untainted() {
    let addons = [crate::addons::argocd::ARGOCD, heavy("spec-mgmt", SPEC_MGMT)];
    let untainted = with_addons(&default(), &addons);
    let warned: Vec<&Finding> = untainted.warnings().collect();
    assert!(
        warned.iter().all(|f| f.subject == "mgmt-cp"),
        "{}",
        untainted.text()
    );
    let roomier = with_addons(&with_memory("mgmt-cp", "5GiB"), &addons);
    assert_eq!(roomier.warnings().count(), 0, "{}", roomier.text());
    let tainted = report_for(
        &default(),
        Scenario {
            addons: &addons,
            backups: true,
            tainted: |_| true,
        },
    );
    let worker = node(&tainted, "mgmt-worker-0");
    assert!(
        tainted
            .warnings()
            .any(|f| f.subject == "mgmt-worker-0" && f.message.contains("headroom")),
        "{}",
        tainted.text()
    );
    assert!(
        worker.expected_mib > worker.capacity.memory_mib * 9 / 10 - 100,
        "{worker:?}"
    );
}

#[test]
fn k8sgpt_analysers_are_counted_on_mgmt_only_once_a_backend_is_chosen() {
    let mgmt_pods = |t: &Topology| -> usize {
        report(t)
            .nodes
            .iter()
            .filter(|n| n.node.starts_with("mgmt-"))
            .map(|n| n.pods.len())
            .sum()
    };
    let src = format!(
        "{}observability:\n  k8sgpt:\n    backend: openai\n    model: gpt-4o-mini\n",
        topology::default_yaml()
    );
    let with_backend = topology::parse(&src, "t.yaml").expect("parses").topology;
    // One analyser per cluster, all on mgmt; the app clusters unchanged.
    assert_eq!(mgmt_pods(&with_backend), mgmt_pods(&default()) + 3);
    let app_pods = |t: &Topology| node(&report(t), "app1-worker-0").pods.len();
    assert_eq!(app_pods(&with_backend), app_pods(&default()));
}

#[test]
fn velero_is_counted_on_every_cluster_once_it_has_backups() {
    let off = report(&default());
    let on = report_for(&default(), Scenario::installed().with_backups());
    let pods = |r: &FitReport, cluster: &str, pod: &str| {
        r.nodes
            .iter()
            .filter(|n| n.cluster == cluster && n.pods.iter().any(|p| p == pod))
            .count()
    };
    for cluster in ["mgmt", "app1", "app2"] {
        let untainted = on
            .nodes
            .iter()
            .filter(|n| n.cluster == cluster && !n.tainted)
            .count();
        assert_eq!(pods(&on, cluster, "node-agent"), untainted, "{cluster}");
        assert_eq!(pods(&on, cluster, "velero"), 1, "{cluster}");
        assert_eq!(pods(&off, cluster, "node-agent"), 0, "{cluster}");
        assert_eq!(pods(&off, cluster, "velero"), 0, "{cluster}");
    }
    // Its requests are added like every add-on's: 128 MiB per node agent
    // (mgmt's two nodes, each app worker) and per server.
    let requested = |r: &FitReport| -> u32 { r.nodes.iter().map(|n| n.requests.memory_mib).sum() };
    assert_eq!(requested(&on), requested(&off) + 128 * (4 + 3));
}

/// With Velero (node agent 100 MiB, server 100 MiB expected, both on the
/// untainted mgmt-cp), mgmt's control plane leaves the tenth of headroom
/// the report wants: the default topology needs `memory: 5GiB` there once
/// backups are wired. The app clusters keep their room.
#[test]
fn with_velero_mgmts_control_plane_wants_more_memory() {
    let on = report_for(&default(), Scenario::installed().with_backups());
    let warned: Vec<&Finding> = on.warnings().collect();
    assert_eq!(warned.len(), 1, "{}", on.text());
    assert_eq!(warned[0].subject, "mgmt-cp", "{}", on.text());
    assert!(warned[0].fix.contains("memory: 5GiB"), "{}", on.text());
    let off = report(&default());
    assert_eq!(
        node(&on, "mgmt-cp").expected_mib,
        node(&off, "mgmt-cp").expected_mib + 200
    );
    let roomier = report_for(
        &with_memory("mgmt-cp", "5GiB"),
        Scenario::installed().with_backups(),
    );
    assert_eq!(roomier.warnings().count(), 0, "{}", roomier.text());
}
