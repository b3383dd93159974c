//! The optional sections of the node agent's configuration, `etcd:` and
//! `kubeadm:`.
//!
//! Everything has a default that matches a kubeadm node, so a
//! configuration written before a section existed keeps working; tests
//! point `etcd.endpoint` at their own etcd and shorten the intervals.
//! Defaulted values are not written back out: the host's rendering names
//! only what it sets, and a rendered file stays as short as the host's
//! intent.

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

/// The `kubeadm:` section: the binary and the join retry policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeadmSettings {
    /// The kubeadm program: a name looked up on PATH or a path.
    #[serde(default = "default_binary")]
    pub binary: PathBuf,
    /// Attempts of `kubeadm join` before giving up on a retryable failure.
    #[serde(
        default = "default_attempts",
        skip_serializing_if = "is_default_attempts"
    )]
    pub join_attempts: u32,
    /// Base delay between join attempts (doubling, jittered, at most 60 s).
    #[serde(
        default = "default_retry_delay",
        skip_serializing_if = "is_default_retry_delay"
    )]
    pub join_retry_delay_millis: u64,
    /// Run `binary` even when `commandRunner` is `record`. A local node
    /// records every other command (it shares the developer's kernel), but
    /// pointed at a kubeadm stand-in it must run it, so that the files and
    /// phases `up` depends on appear; never set on a real machine.
    #[serde(default)]
    pub always_run: bool,
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

impl Default for KubeadmSettings {
    fn default() -> Self {
        KubeadmSettings {
            binary: default_binary(),
            join_attempts: default_attempts(),
            join_retry_delay_millis: default_retry_delay(),
            always_run: false,
        }
    }
}

impl KubeadmSettings {
    /// `binary`, always run (the host's `$HOSTCTL_KUBEADM`: a stand-in for
    /// end-to-end runs, or a pinned binary), with the default retry policy.
    pub fn always_running(binary: PathBuf) -> Self {
        KubeadmSettings {
            binary,
            always_run: true,
            ..KubeadmSettings::default()
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

fn default_binary() -> PathBuf {
    PathBuf::from("kubeadm")
}

/// CABPK's retry script tries each join phase 5 times.
fn default_attempts() -> u32 {
    5
}

fn is_default_attempts(attempts: &u32) -> bool {
    *attempts == default_attempts()
}

/// CABPK's retry script sleeps 15 s between attempts.
fn default_retry_delay() -> u64 {
    15_000
}

fn is_default_retry_delay(millis: &u64) -> bool {
    *millis == default_retry_delay()
}
