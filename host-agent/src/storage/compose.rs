//! Garage as a container on the host's Docker (Docker Desktop on a Mac,
//! where the spec runs the host's services; docs/backup.md): one compose
//! project with the data bind-mounted from `$HOSTCTL_HOME/storage`, so
//! `storage down` removes the container and keeps everything.
//!
//! Inside the container Garage listens on all its interfaces; what the
//! host exposes is decided by the published ports: S3 on the host's
//! node-network address, the admin API on loopback only, RPC not at all.

use super::config::{Listeners, Paths};
use super::layout::Layout;
use serde_json::{Value, json};
use std::net::SocketAddr;

/// The compose project's name.
pub const PROJECT: &str = "hostctl-storage";
/// Garage's official image, multi-arch (amd64 and arm64, so no emulation
/// on Apple silicon). The tag follows the crate `.ci/run` tests with
/// (2.5.0); UNVERIFIED here that Docker Hub serves this tag (no registry
/// is reachable from this workplace).
pub const IMAGE: &str = "docker.io/dxflrs/garage:v2.5.0";
/// The container's memory limit (Garage with LMDB on one node is small).
pub const MEMORY: &str = "512m";

const CONFIG: &str = "/etc/garage.toml";

/// The paths as the container sees them.
pub fn container_paths() -> Paths {
    Paths {
        meta: "/var/lib/garage/meta".into(),
        data: "/var/lib/garage/data".into(),
        rpc_secret: "/etc/garage/rpc-secret".into(),
        admin_token: "/etc/garage/admin-token".into(),
    }
}

/// Where Garage binds inside the container (the ports are published).
pub fn container_listeners(host: &Listeners) -> Listeners {
    let any = |port: u16| SocketAddr::from(([0, 0, 0, 0], port));
    Listeners {
        s3: any(host.s3.port()),
        admin: any(host.admin.port()),
        rpc: any(host.rpc.port()),
    }
}

/// The compose project: `listeners` are the host's addresses to publish.
pub fn project(layout: &Layout, listeners: &Listeners) -> Value {
    let paths = container_paths();
    let mount = |host: std::path::PathBuf, inside: &str, ro: bool| {
        format!("{}:{inside}{}", host.display(), if ro { ":ro" } else { "" })
    };
    json!({
        "name": PROJECT,
        "services": {
            "garage": {
                "image": IMAGE,
                "command": ["/garage", "-c", CONFIG, "server"],
                "restart": "unless-stopped",
                "mem_limit": MEMORY,
                "ports": [
                    format!("{}:{}:{}", listeners.s3.ip(), listeners.s3.port(), listeners.s3.port()),
                    format!("127.0.0.1:{}:{}", listeners.admin.port(), listeners.admin.port()),
                ],
                "volumes": [
                    mount(layout.container_config(), CONFIG, true),
                    mount(layout.rpc_secret(), &paths.rpc_secret, true),
                    mount(layout.admin_token(), &paths.admin_token, true),
                    mount(layout.meta(), &paths.meta, false),
                    mount(layout.data(), &paths.data, false),
                ],
            }
        }
    })
}
