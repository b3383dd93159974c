//! Keeping every report within the host's size limit (issue 13, item 12).
//!
//! The host refuses a report whose encoding is over
//! [`proto::limits::MAX_REPORT_BYTES`]. The agent used to queue whatever it
//! measured: one report over the transport's limit ended the stream without
//! an acknowledgement, and since the unacknowledged backlog is sent first
//! on every reconnection, that report was re-sent forever and nothing after
//! it arrived. So every report is measured before it is queued:
//!
//! - within the limit, it is sent as taken;
//! - over it, the parts that can grow without bound (check messages, the
//!   address list, free-text fields) are cut to fixed sizes, each cut text
//!   ending in a marker, and a WARN check [`SIZE_CHECK`] says what was cut;
//! - still over it (what identifies the node, the report or a check is
//!   never cut), it is not queued at all; the buffer counts it as dropped.
//!
//! A realistic report is about 1–2 KiB (see the tests), so the caps only
//! ever apply to a report that something has gone wrong with.

use prost::Message as _;
use proto::v1::{Check, CheckStatus, HealthReport};

/// A check message over the limit is cut to this many bytes, marker
/// included. Messages are short status lines (HTTP bodies are already cut
/// to 200 characters); the long ones are joined lists (cloud-init errors,
/// CNI files), where the first 2 KiB say what is wrong.
pub const MAX_CHECK_MESSAGE_BYTES: usize = 2 * 1024;

/// Addresses kept of an over-limit report (the list is sorted, so IPv4
/// first). A node has a handful; a Kubernetes node's pod interfaces can
/// add one per pod.
pub const MAX_ADDRESSES: usize = 64;

/// Kernel, OS, boot id, agent version and certificate path of an
/// over-limit report are cut to this many bytes, marker included.
pub const MAX_TEXT_BYTES: usize = 512;

/// The name of the check an over-limit, trimmed report carries.
pub const SIZE_CHECK: &str = "report-size";

/// What [`fit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Within the limit as taken; not changed.
    Unchanged,
    /// Cut from `from` to `to` encoded bytes (`to` ≤ the limit).
    Trimmed { from: usize, to: usize },
    /// Still `size` bytes after cutting, over the limit: do not send it.
    TooLarge { size: usize },
}

/// Makes `report` fit `limit` encoded bytes if it can (see the module
/// documentation). `report` is changed only when it was over the limit.
pub fn fit(report: &mut HealthReport, limit: usize) -> Fit {
    let from = report.encoded_len();
    if from <= limit {
        return Fit::Unchanged;
    }
    let mut messages = 0;
    for check in &mut report.checks {
        messages += usize::from(cut(&mut check.message, MAX_CHECK_MESSAGE_BYTES));
    }
    let mut texts = 0;
    let mut addresses = 0;
    if let Some(system) = &mut report.system {
        for text in [&mut system.kernel, &mut system.os, &mut system.boot_id] {
            texts += usize::from(cut(text, MAX_TEXT_BYTES));
        }
        addresses = system.addresses.len().saturating_sub(MAX_ADDRESSES);
        system.addresses.truncate(MAX_ADDRESSES);
    }
    for text in [&mut report.agent_version, &mut report.nearest_cert_path] {
        texts += usize::from(cut(text, MAX_TEXT_BYTES));
    }
    report.checks.push(Check {
        name: SIZE_CHECK.to_owned(),
        status: CheckStatus::Warn as i32,
        message: format!(
            "report cut from {from} bytes to fit the host's limit of {limit}: \
             {messages} check messages and {texts} other fields truncated, \
             {addresses} addresses left out"
        ),
    });
    let to = report.encoded_len();
    if to <= limit {
        Fit::Trimmed { from, to }
    } else {
        Fit::TooLarge { size: to }
    }
}

/// Cuts `text` to at most `max` bytes (on a character boundary), ending
/// in a marker with its original length; whether it was cut.
fn cut(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let marker = format!("… [truncated by node-agent from {} bytes]", text.len());
    let mut keep = max.saturating_sub(marker.len());
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    text.truncate(keep);
    text.push_str(&marker);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::limits::MAX_REPORT_BYTES;
    use proto::v1::{DiskUsage, SystemFigures};

    fn check(name: &str, status: CheckStatus, message: &str) -> Check {
        Check {
            name: name.into(),
            status: status as i32,
            message: message.into(),
        }
    }

    /// A control-plane node's report as the collector takes it, with
    /// realistic values and every check present; `failing` makes each
    /// check fail with a message as long as the checks produce.
    fn realistic(failing: bool) -> HealthReport {
        let body = "x".repeat(200);
        let message = |ok: &str, bad: String| if failing { bad } else { ok.to_owned() };
        let status = if failing {
            CheckStatus::Fail
        } else {
            CheckStatus::Pass
        };
        let mut addresses: Vec<String> = vec![
            "10.244.0.1".into(),
            "10.244.0.176".into(),
            "192.168.64.12".into(),
            "fd00:10:244::1".into(),
            "fe80::5054:ff:fe12:3456".into(),
        ];
        // A Cilium node: a link-local address per pod interface.
        addresses.extend((0..30).map(|i| format!("fe80::a8c1:abff:fe{i:02x}:1c2d")));
        HealthReport {
            agent_instance: "9f3c2a1b7e6d5c4b3a29180706f5e4d3".into(),
            seq: 123_456,
            taken_at: Some(proto::timestamp(std::time::SystemTime::now())),
            node: "app1-cp".into(),
            system: Some(SystemFigures {
                cpu_percent: 37.5,
                load1: 1.25,
                load5: 0.98,
                load15: 0.77,
                memory_total_bytes: 4 << 30,
                memory_used_bytes: 3 << 30,
                disks: ["/", "/var/lib/etcd"]
                    .map(|p| DiskUsage {
                        path: p.into(),
                        present: true,
                        total_bytes: 20 << 30,
                        available_bytes: 11 << 30,
                    })
                    .into(),
                uptime_seconds: 864_000,
                boot_id: "0f5b2a8e-3c4d-4e6f-9a1b-2c3d4e5f6a7b".into(),
                kernel: "6.8.0-45-generic".into(),
                os: "Linux 24.04 Ubuntu".into(),
                cpus: 2,
                addresses,
            }),
            checks: vec![
                check(
                    "containerd",
                    status,
                    &message("active (running)", "failed (failed)".into()),
                ),
                check(
                    "kubelet",
                    status,
                    &message("active (running)", "failed (failed)".into()),
                ),
                check(
                    "kubelet-healthz",
                    status,
                    &message("ok", format!("HTTP 500: {body}…")),
                ),
                check(
                    "apiserver-readyz",
                    status,
                    &message("ok", format!("HTTP 500: {body}…")),
                ),
                check(
                    "etcd-health",
                    status,
                    &message(
                        r#"{"health":"true","reason":""}"#,
                        format!("127.0.0.1:2379/health: {body}"),
                    ),
                ),
                check(
                    "cni",
                    status,
                    &message("05-cilium.conflist", "no CNI yet".into()),
                ),
                check(
                    "certificates",
                    status,
                    &message(
                        "/etc/kubernetes/pki/apiserver-etcd-client.crt expires in 364 days",
                        "/etc/kubernetes/pki/apiserver-etcd-client.crt has expired".into(),
                    ),
                ),
                check(
                    "cloud-init",
                    status,
                    &message("done without errors", format!("('scripts_user', {body})")),
                ),
            ],
            dropped: 3,
            interval_seconds: 10,
            agent_version: "0.1.0".into(),
            nearest_cert_expiry: Some(proto::timestamp(std::time::SystemTime::now())),
            nearest_cert_path: "/etc/kubernetes/pki/apiserver-etcd-client.crt".into(),
            dropped_oversize: 0,
        }
    }

    #[test]
    fn a_realistic_report_is_far_below_the_limit_and_left_alone() {
        for failing in [false, true] {
            let mut report = realistic(failing);
            let size = report.encoded_len();
            println!(
                "realistic control-plane report ({}): {size} bytes encoded, limit {MAX_REPORT_BYTES}",
                if failing {
                    "every check failing"
                } else {
                    "healthy"
                }
            );
            assert!(size * 16 < MAX_REPORT_BYTES, "{size} bytes");
            let before = report.clone();
            assert_eq!(fit(&mut report, MAX_REPORT_BYTES), Fit::Unchanged);
            assert_eq!(report, before);
        }
    }

    #[test]
    fn a_huge_check_output_is_cut_with_a_marker_and_a_warning_check() {
        let mut report = realistic(false);
        report.checks[7].message = "é".repeat(1 << 20);
        let from = report.encoded_len();
        let Fit::Trimmed { to, .. } = fit(&mut report, MAX_REPORT_BYTES) else {
            panic!("not trimmed");
        };
        assert_eq!(to, report.encoded_len());
        assert!(to <= MAX_REPORT_BYTES);
        let cloud_init = &report.checks[7].message;
        assert!(cloud_init.len() <= MAX_CHECK_MESSAGE_BYTES);
        assert!(cloud_init.ends_with(&format!("[truncated by node-agent from {} bytes]", 2 << 20)));
        let size = report.checks.last().cloned().unwrap_or_default();
        assert_eq!(size.name, SIZE_CHECK);
        assert_eq!(size.status, CheckStatus::Warn as i32);
        assert!(
            size.message.contains(&format!("from {from} bytes")),
            "{}",
            size.message
        );
        // What identifies the node and the other checks is untouched.
        assert_eq!(report.node, "app1-cp");
        assert_eq!(report.checks[0].message, "active (running)");
    }

    #[test]
    fn long_lists_and_texts_are_cut_too() {
        let mut report = realistic(false);
        if let Some(s) = report.system.as_mut() {
            s.addresses = (0..5000).map(|i| format!("fe80::{i:x}")).collect();
            s.os = "o".repeat(100_000);
        }
        assert!(matches!(
            fit(&mut report, MAX_REPORT_BYTES),
            Fit::Trimmed { .. }
        ));
        let system = report.system.unwrap_or_default();
        assert_eq!(system.addresses.len(), MAX_ADDRESSES);
        assert!(system.os.len() <= MAX_TEXT_BYTES && system.os.ends_with("bytes]"));
    }

    #[test]
    fn a_report_over_the_limit_in_what_is_never_cut_is_too_large() {
        let mut report = realistic(false);
        report
            .checks
            .extend((0..2000).map(|i| check(&format!("{i:0>60}"), CheckStatus::Pass, "")));
        assert!(matches!(
            fit(&mut report, MAX_REPORT_BYTES),
            Fit::TooLarge { size } if size > MAX_REPORT_BYTES
        ));
    }
}
