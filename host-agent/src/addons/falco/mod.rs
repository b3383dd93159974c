//! Falco on every node of the app clusters (SPEC §8 L5, runtime): the
//! modern eBPF probe, which is embedded in Falco and needs only BTF (the
//! Multipass Ubuntu 24.04 kernels have `/sys/kernel/btf/vmlinux`), so no
//! kernel headers, driver download or build on the node.
//!
//! Alerts reach mgmt's Loki as JSON lines on Falco's stdout, which Alloy
//! already ships from every pod's log with the `cluster`, `namespace`,
//! `pod` and `container` labels — not through falcosidekick, because the
//! log path survives a mgmt outage (Alloy's positions and retries, see
//! [`crate::addons::observability::alloy`]) while sidekick's Loki output
//! drops what it cannot send, and it would be one more Deployment on a
//! 4 GiB worker. Each line carries `priority`, `rule`, `output` and the
//! output fields (`docs/policy-runtime.md` has the LogQL).

use super::budget::{Replicas, Resources, Workload, resources_of};
use super::catalogue::{Addon, Chart, ChartRepo, Placement, Readiness};
use super::error::AddonError;
use super::render::{RenderContext, no_objects};
use serde_json::{Value, json};

/// Falco's namespace (PSA `privileged`: its hostPath mounts exceed baseline).
pub const NAMESPACE: &str = "falco";

/// The Falco chart (Falco 0.44.1).
pub const CHART: Chart = Chart {
    repo: ChartRepo::Http("https://falcosecurity.github.io/charts"),
    name: "falco",
    version: "9.1.0",
    digest: None,
};

/// The lowest priority that is reported: `notice` is the chart's default
/// rule set's floor and keeps the log volume small.
pub const MIN_PRIORITY: &str = "notice";

/// Sized for a 4 GiB app worker (platform-addons §2.10): the chart's
/// defaults are 100m/512Mi requests and 1000m/1Gi limits.
const WORKLOADS: &[Workload] = &[Workload {
    name: "falco",
    replicas: Replicas::EveryNode,
    requests: Resources::new(50, 256),
    limits: Resources::new(500, 512),
    expected_mib: 300,
}];

pub const FALCO: Addon = Addon {
    name: "falco",
    summary: "Falco (modern eBPF) on every app node: runtime alerts as JSON logs, shipped to mgmt's Loki",
    chart: Some(CHART),
    namespace: NAMESPACE,
    placement: Placement::App,
    depends_on: &[],
    // Its alerts are only seen once mgmt's Loki takes them.
    after_mgmt: &["loki"],
    needs_backup_target: false,
    values,
    objects: no_objects,
    readiness: &[Readiness::DaemonSet("falco")],
    workloads: WORKLOADS,
    hook: None,
};

/// The chart's values: keys as in falco 9.1.0's `values.yaml`. Offline:
/// no falcoctl (the rules come from the image), no k8s-metacollector and
/// no falcosidekick.
fn values(_ctx: &RenderContext<'_>) -> Result<Value, AddonError> {
    Ok(json!({
        "driver": {
            "kind": "modern_ebpf",
            "modernEbpf": {"leastPrivileged": true},
        },
        "falcoctl": {"artifact": {"install": {"enabled": false}, "follow": {"enabled": false}}},
        "collectors": {"kubernetes": {"enabled": false}},
        "falcosidekick": {"enabled": false},
        "falco": {
            "json_output": true,
            "json_include_output_property": true,
            "json_include_tags_property": true,
            "priority": MIN_PRIORITY,
            "stdout_output": {"enabled": true},
        },
        "resources": resources_of(WORKLOADS, "falco"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_is_modern_ebpf_and_alerts_are_json_on_stdout() {
        let resolved = topology::default_topology().resolve(None).unwrap();
        let platform = crate::addons::render::PlatformSource::served_by_host(&resolved, None);
        let ctx = RenderContext {
            resolved: &resolved,
            cluster: "app1",
            credentials: crate::addons::render::Credentials::Placeholder,
            platform: &platform,
            backup: None,
        };
        let v = values(&ctx).unwrap();
        assert_eq!(v["driver"]["kind"], "modern_ebpf");
        assert_eq!(v["falco"]["json_output"], true);
        assert_eq!(v["falco"]["stdout_output"]["enabled"], true);
        assert_eq!(v["falcosidekick"]["enabled"], false);
        assert_eq!(v["resources"]["limits"]["memory"], "512Mi");
    }
}
