//! `hostctl doctor`: everything that would make `up` fail or misbehave,
//! checked before anything is created (anchors §4: Multipass's invisible
//! failures, a host too small, a subnet that moved, names already taken).
//! Each check has a name, ok/warn/fail and one message a person can act on.
//!
//! - [`host`]: memory and disk against the topology, the host agent's ports,
//!   the local provider's root and `ip`.
//! - [`network`]: the provider's subnet against node addresses and pools
//!   (pure, unit-tested).
//! - [`linux`]: the node subnet against this host's routes; what QEMU needs.
//! - [`leases`]: DHCP leases (macOS bootpd) on addresses the topology pins.
//! - [`mirrors`]: Docker, ports, memory and image architecture for managed mirrors.
//! - [`storage`]: the object store's server and ports for managed backups.
//! - [`machines`]: Multipass version and driver, machines that already carry
//!   the topology's names or its addresses.

pub mod host;
pub mod leases;
pub mod linux;
pub mod machines;
pub mod mirrors;
pub mod network;
pub mod storage;

use serde::Serialize;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub message: String,
}

impl Check {
    pub fn new(name: &str, status: Status, message: impl Into<String>) -> Check {
        Check {
            name: name.to_owned(),
            status,
            message: message.into(),
        }
    }

    pub fn ok(name: &str, message: impl Into<String>) -> Check {
        Check::new(name, Status::Ok, message)
    }

    pub fn warn(name: &str, message: impl Into<String>) -> Check {
        Check::new(name, Status::Warn, message)
    }

    pub fn fail(name: &str, message: impl Into<String>) -> Check {
        Check::new(name, Status::Fail, message)
    }
}

/// Bytes as GiB with one decimal, for messages.
pub fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}
