//! Tests of the status view and table.
use super::*;
use proto::v1::{Check, HealthReport, NodeMeta};
use std::time::UNIX_EPOCH;

/// A control-plane node of app1 that reported (it runs `etcd-health`).
pub(super) fn reported_control_plane() -> StatusResponse {
    StatusResponse {
        nodes: vec![NodeStatus {
            meta: Some(NodeMeta {
                node: "app1-cp".into(),
                cluster: "app1".into(),
            }),
            connected: true,
            last_report: Some(HealthReport {
                checks: vec![Check {
                    name: CONTROL_PLANE_CHECK.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Stores a snapshot's metadata and file as the store would.
fn store_snapshot(store: &SnapshotStore, taken: SystemTime) {
    let unix = taken.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let file = proto::snapshot::file_name(taken, 9);
    let dir = store.cluster_dir("app1").unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    let info = crate::snapshots::SnapshotInfo {
        cluster: "app1".into(),
        file: file.clone(),
        node: "app1-cp".into(),
        revision: 9,
        revision_exact: true,
        etcd_version: "3.5.21".into(),
        taken_at: proto::snapshot::utc_stamp(unix),
        taken_at_unix: unix as i64,
        sha256: "00".repeat(32),
        size: 32,
        origin: "scheduled".into(),
    };
    std::fs::write(dir.join(&file), b"db").unwrap();
    std::fs::write(
        dir.join(&file).with_extension("json"),
        serde_json::to_vec(&info).unwrap(),
    )
    .unwrap();
}

fn status_with(store: &SnapshotStore, now: SystemTime) -> (StatusView, serde_json::Value) {
    let status = reported_control_plane();
    let v = with_snapshots(view(&status, &BTreeMap::new(), now), &status, store, now);
    let json = serde_json::to_value(&v).unwrap();
    (v, json)
}

#[test]
fn an_old_snapshot_is_an_rpo_breach_in_table_and_json() {
    let home = tempfile::tempdir().unwrap();
    let store = SnapshotStore::new(home.path());
    let now = SystemTime::now();
    store_snapshot(&store, now - Duration::from_secs(3 * 86_400));
    let (v, json) = status_with(&store, now);
    let s = &json["clusters"][0]["snapshot"];
    assert_eq!(s["rpo_breach"], true, "{json:#}");
    assert_eq!(s["rpo_seconds"], 86_400);
    assert_eq!(s["age_seconds"], 3 * 86_400);
    assert!(
        s["latest"]
            .as_str()
            .is_some_and(|f| f.ends_with("-rev9.db"))
    );
    let text = table(&v).to_string();
    assert!(text.contains("SNAPSHOT"), "{text}");
    assert!(text.contains("3d,RPO-BREACH"), "{text}");
}

#[test]
fn a_node_refused_before_it_ever_reported_says_so() {
    let now = SystemTime::now();
    let mut status = reported_control_plane();
    let node = &mut status.nodes[0];
    node.connected = false;
    node.last_report = None;
    node.last_enrolment_refusal = Some(proto::v1::EnrolmentRefusal {
        at: Some(proto::timestamp(now)),
        reason: "enrolment refused: unknown enrolment token".into(),
        peer: "10.0.0.5:40000".into(),
        current_token: true,
    });
    let v = view(&status, &BTreeMap::new(), now);
    let n = &v.clusters[0].nodes[0];
    assert_eq!(agent_cell(n), "disconnected,refused");
    let json = serde_json::to_value(&v).unwrap();
    let refused = &json["clusters"][0]["nodes"][0]["enrolment_refused"];
    assert_eq!(
        refused["reason"],
        "enrolment refused: unknown enrolment token"
    );
    assert_eq!(refused["peer"], "10.0.0.5:40000");
    assert_eq!(refused["current"], true);
    // Reported after the refusal (e.g. a new token worked): history only.
    status.nodes[0].last_report = Some(HealthReport::default());
    status.nodes[0].last_report_received_at = Some(proto::timestamp(now + Duration::from_secs(1)));
    let v = view(&status, &BTreeMap::new(), now);
    assert_eq!(agent_cell(&v.clusters[0].nodes[0]), "disconnected");
    status.nodes[0].last_report = None;
    status.nodes[0].last_report_received_at = None;
    status.nodes[0].last_enrolment_refusal = None;
    let v = view(&status, &BTreeMap::new(), now);
    assert_eq!(
        agent_cell(&v.clusters[0].nodes[0]),
        "disconnected,no-reports"
    );
}

#[test]
fn a_fresh_snapshot_is_not_a_breach_and_none_is() {
    let home = tempfile::tempdir().unwrap();
    let store = SnapshotStore::new(home.path());
    let now = SystemTime::now();
    let (v, json) = status_with(&store, now);
    assert_eq!(json["clusters"][0]["snapshot"]["rpo_breach"], true);
    assert!(json["clusters"][0]["snapshot"]["latest"].is_null());
    assert!(table(&v).to_string().contains("none,RPO-BREACH"));

    store_snapshot(&store, now - Duration::from_secs(2 * 3600));
    let (v, json) = status_with(&store, now);
    assert_eq!(json["clusters"][0]["snapshot"]["rpo_breach"], false);
    let text = table(&v).to_string();
    assert!(!text.contains("RPO-BREACH"), "{text}");
    assert!(text.contains("2h"), "{text}");
}

#[test]
fn host_wide_figures_are_labelled_as_the_hosts() {
    let now = SystemTime::now();
    let mut v = view(&reported_control_plane(), &BTreeMap::new(), now);
    assert!(table(&v).to_string().starts_with("CLUSTER"));
    assert!(!table(&v).to_string().contains("HOST CPU"));
    v.host_wide_figures = true;
    let text = table(&v).to_string();
    assert!(
        text.contains("HOST CPU") && text.contains("HOST MEMORY"),
        "{text}"
    );
    assert_eq!(serde_json::to_value(&v).unwrap()["host_wide_figures"], true);
}

#[test]
fn a_control_plane_without_etcd_misses_no_snapshot() {
    let home = tempfile::tempdir().unwrap();
    let store = SnapshotStore::new(home.path());
    let now = SystemTime::now();
    let mut status = reported_control_plane();
    if let Some(r) = status.nodes[0].last_report.as_mut() {
        r.checks[0].status = proto::v1::CheckStatus::NotApplicable as i32;
    }
    let v = with_snapshots(view(&status, &BTreeMap::new(), now), &status, &store, now);
    let text = table(&v).to_string();
    assert!(!text.contains("RPO-BREACH"), "{text}");
}

#[test]
fn a_skewed_clock_is_a_warning_under_the_table_and_a_field_in_json() {
    let mut status = reported_control_plane();
    status.nodes[0].clock_skew_seconds = 3600;
    status.nodes[0].clock_warning =
        crate::daemon::staleness::skew_warning(3600).expect("beyond the threshold");
    let v = view(&status, &BTreeMap::new(), SystemTime::now());
    let node = &v.clusters[0].nodes[0];
    assert_eq!(node.clock_skew_seconds, Some(3600));
    let warnings = node_warnings(&v);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("warning: app1-cp: the node's clock is about 3600 s ahead"),
        "{warnings:?}"
    );
    let json = serde_json::to_value(node).unwrap();
    assert_eq!(json["clock_skew_seconds"], 3600);

    // Within the threshold the daemon sends nothing, and nothing is shown.
    let v = view(
        &reported_control_plane(),
        &BTreeMap::new(),
        SystemTime::now(),
    );
    assert!(node_warnings(&v).is_empty());
    assert_eq!(v.clusters[0].nodes[0].clock_skew_seconds, None);
}

#[test]
fn an_agent_certificate_warning_is_a_line_under_the_table_and_fields_in_json() {
    let mut status = reported_control_plane();
    let not_after = SystemTime::now() + Duration::from_secs(86_400);
    status.nodes[0].agent_cert_not_after = Some(proto::timestamp(not_after));
    status.nodes[0].agent_cert_warning = "agent certificate expires in 1 days".into();
    let v = view(&status, &BTreeMap::new(), SystemTime::now());
    let warnings = node_warnings(&v);
    assert_eq!(
        warnings,
        vec!["warning: app1-cp: agent certificate expires in 1 days".to_owned()]
    );
    let json = serde_json::to_value(&v.clusters[0].nodes[0]).unwrap();
    assert!(json["agent_cert_not_after"].is_string(), "{json}");
    assert_eq!(
        json["agent_cert_warning"],
        "agent certificate expires in 1 days"
    );
}
