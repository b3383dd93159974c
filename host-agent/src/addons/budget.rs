//! What each add-on's workloads ask of a node: CPU and memory requests
//! and limits, one table per add-on. The same numbers go into the chart
//! values (`resources:` blocks) and into the fit report
//! ([`super::fit`]), so what `render` warns about is what `up` installs.

use serde_json::{Value, json};

/// CPU in millicores and memory in MiB: the two quantities the scheduler
/// and the fit report add up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    pub cpu_millis: u32,
    pub memory_mib: u32,
}

impl Resources {
    pub const fn new(cpu_millis: u32, memory_mib: u32) -> Resources {
        Resources {
            cpu_millis,
            memory_mib,
        }
    }

    /// The Kubernetes quantities, e.g. `{cpu: 100m, memory: 384Mi}`; a zero
    /// CPU is left out (a CPU limit of nothing means "not throttled", as the
    /// reference sizes for Argo CD recommend).
    pub fn to_value(self) -> Value {
        let mut map = serde_json::Map::new();
        if self.cpu_millis > 0 {
            map.insert("cpu".into(), json!(format!("{}m", self.cpu_millis)));
        }
        map.insert("memory".into(), json!(format!("{}Mi", self.memory_mib)));
        Value::Object(map)
    }

    /// Both summed (the fit report's per-node totals).
    pub fn plus(self, other: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_add(other.cpu_millis),
            memory_mib: self.memory_mib.saturating_add(other.memory_mib),
        }
    }

    /// Both reduced by `other`, never below zero (allocatable from capacity).
    pub fn minus(self, other: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_sub(other.cpu_millis),
            memory_mib: self.memory_mib.saturating_sub(other.memory_mib),
        }
    }

    /// Whether `self` fits inside `room` in both quantities.
    pub fn fits_in(self, room: Resources) -> bool {
        self.cpu_millis <= room.cpu_millis && self.memory_mib <= room.memory_mib
    }
}

/// How many copies of a workload run, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replicas {
    /// One pod, placed by the scheduler (Deployments, StatefulSets).
    One,
    /// One pod on every node (DaemonSets that tolerate every taint).
    EveryNode,
    /// One pod on every node without the control-plane taint (DaemonSets
    /// that tolerate none, as charts make them by default).
    EveryUntaintedNode,
}

/// One workload of an add-on: a Deployment, StatefulSet or DaemonSet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    /// The workload's name in the cluster (e.g. `argocd-server`).
    pub name: &'static str,
    pub replicas: Replicas,
    pub requests: Resources,
    /// A zero `cpu_millis` here means "no CPU limit".
    pub limits: Resources,
    /// Its idle working set in the lab, in MiB (platform-addons §6, with
    /// sources there): what the fit report adds up as expected use.
    pub expected_mib: u32,
}

impl Workload {
    /// A workload of one pod placed by the scheduler (a Deployment or
    /// StatefulSet of one replica): the catalogue's usual shape.
    pub const fn one(
        name: &'static str,
        requests: Resources,
        limits: Resources,
        expected_mib: u32,
    ) -> Workload {
        Workload {
            name,
            replicas: Replicas::One,
            requests,
            limits,
            expected_mib,
        }
    }

    /// The chart's `resources:` block for this workload.
    pub fn resources_value(&self) -> Value {
        json!({"requests": self.requests.to_value(), "limits": self.limits.to_value()})
    }
}

/// The `resources:` block of the workload called `name` in `workloads`
/// (null when absent, which a unit test of each entry rules out).
pub fn resources_of(workloads: &[Workload], name: &str) -> Value {
    workloads
        .iter()
        .find(|w| w.name == name)
        .map(Workload::resources_value)
        .unwrap_or(Value::Null)
}
