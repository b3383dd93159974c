//! The `etcd:` section of the node agent's configuration.
//!
//! Everything has a default that matches a kubeadm control plane, so a
//! configuration written before snapshots existed keeps working; tests
//! point `endpoint` at their own etcd and shorten the interval.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where etcd listens and how scheduled snapshots are taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EtcdSettings {
    /// etcd's client URL on this node (kubeadm: https://127.0.0.1:2379).
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// Scheduled snapshots (control-plane nodes only).
    #[serde(default)]
    pub snapshot: ScheduleSettings,
}

/// The autonomous snapshot schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleSettings {
    /// Seconds between scheduled snapshots; 0 turns the schedule off.
    #[serde(default = "default_interval")]
    pub interval_seconds: u64,
    /// Snapshots kept on the node (shipped or not); older ones are deleted.
    #[serde(default = "default_keep")]
    pub keep_local: usize,
    /// Where they are kept; default `<stateDir>/snapshots`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
}

impl Default for EtcdSettings {
    fn default() -> Self {
        EtcdSettings {
            endpoint: default_endpoint(),
            snapshot: ScheduleSettings::default(),
        }
    }
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        ScheduleSettings {
            interval_seconds: default_interval(),
            keep_local: default_keep(),
            dir: None,
        }
    }
}

fn default_endpoint() -> String {
    "https://127.0.0.1:2379".to_owned()
}

/// 24 hours.
fn default_interval() -> u64 {
    24 * 3600
}

fn default_keep() -> usize {
    3
}
