//! The managed mirrors' preconditions (`mirrors: { managed: true }`):
//! Docker installed and running, Harbor's and Nexus's ports free (or held
//! by the mirrors themselves), room for their 6 GB beside the nodes, and
//! what an arm64 host means for Harbor's amd64-only images. Pure over its
//! inputs except the port probe, so each verdict is unit-tested.

use super::Check;
use crate::mirrors::compose::{self, HostArch};
use crate::mirrors::docker::Availability;
use crate::mirrors::{HARBOR_PORT, NEXUS_PORT};

const GIB: f64 = (1u64 << 30) as f64;

/// Docker as `mirrors up` needs it.
pub fn docker(availability: &Availability) -> Check {
    match availability {
        Availability::Running(v) => Check::ok("mirrors docker", format!("Docker engine {v}")),
        Availability::Missing => Check::fail(
            "mirrors docker",
            "the docker CLI is not installed; install Docker Desktop (the mirrors run in it)",
        ),
        Availability::Stopped(why) => Check::fail(
            "mirrors docker",
            format!("Docker does not answer ({why}); start Docker Desktop"),
        ),
    }
}

/// A port the mirrors publish: free, or held by the running mirror.
pub fn port(name: &str, port: u16, free: bool, ours_running: bool) -> Check {
    let what = format!("mirrors {name} port");
    match (free, ours_running) {
        (true, _) => Check::ok(&what, format!(":{port} is free")),
        (false, true) => Check::ok(&what, format!(":{port} is the running {name}")),
        (false, false) => Check::fail(
            &what,
            format!(
                ":{port} is in use by another program; stop it (the spec places {name} on :{port})"
            ),
        ),
    }
}

/// Whether nothing listens on `port` on any address.
pub fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, port)).is_ok()
}

/// Available memory against the nodes plus the mirrors' limits.
pub fn memory(available: u64, nodes: u64) -> Check {
    let mirrors = compose::total_memory_mib() << 20;
    let text = format!(
        "{:.1} GiB available; nodes {:.1} GiB + mirrors {:.1} GiB",
        available as f64 / GIB,
        nodes as f64 / GIB,
        mirrors as f64 / GIB
    );
    if available < nodes.saturating_add(mirrors) {
        Check::fail(
            "mirrors memory",
            format!("{text}: too little; shrink the nodes or give Docker Desktop less elsewhere"),
        )
    } else {
        Check::ok("mirrors memory", text)
    }
}

/// Harbor under emulation on arm64; Nexus's heap cap on both.
pub fn arch(arch: HostArch) -> Check {
    match arch {
        HostArch::Arm64 => Check::warn(
            "mirrors images",
            format!(
                "Harbor {} publishes amd64 images only (multi-arch from 2.16): it runs under Docker Desktop's amd64 emulation, slower; enable Rosetta for x86_64 emulation in Docker Desktop. Nexus's heap is capped ({})",
                compose::HARBOR_VERSION,
                compose::NEXUS_JVM
            ),
        ),
        HostArch::Amd64 => Check::ok(
            "mirrors images",
            format!(
                "Harbor {} native; Nexus heap capped ({})",
                compose::HARBOR_VERSION,
                compose::NEXUS_JVM
            ),
        ),
    }
}

/// Every check, for a topology that asks for managed mirrors.
pub async fn checks(
    engine: &dyn crate::mirrors::docker::Docker,
    layout: &crate::mirrors::layout::Layout,
    available_memory: u64,
    nodes_memory: u64,
) -> Vec<Check> {
    let availability = engine.availability().await;
    let mut out = vec![docker(&availability)];
    for (name, port_number, project, dir) in [
        (
            "harbor",
            HARBOR_PORT,
            compose::HARBOR_PROJECT,
            layout.harbor(),
        ),
        ("nexus", NEXUS_PORT, compose::NEXUS_PROJECT, layout.nexus()),
    ] {
        let file = dir.join("compose.yaml");
        let ours = matches!(availability, Availability::Running(_))
            && file.exists()
            && engine
                .compose_ps(project, &file)
                .await
                .is_ok_and(|c| c.iter().any(|c| c.state == "running"));
        out.push(port(name, port_number, port_free(port_number), ours));
    }
    out.push(memory(available_memory, nodes_memory));
    out.push(arch(HostArch::current()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn each_condition_has_its_verdict() {
        assert_eq!(
            docker(&Availability::Running("28".into())).status,
            Status::Ok
        );
        let missing = docker(&Availability::Missing);
        assert_eq!(missing.status, Status::Fail);
        assert!(missing.message.contains("install Docker"));
        assert!(
            docker(&Availability::Stopped("no socket".into()))
                .message
                .contains("start Docker")
        );
        assert_eq!(port("harbor", 8443, false, false).status, Status::Fail);
        assert_eq!(port("harbor", 8443, false, true).status, Status::Ok);
        assert_eq!(port("harbor", 8443, true, false).status, Status::Ok);
        let gib = 1u64 << 30;
        assert_eq!(memory(20 * gib, 10 * gib).status, Status::Ok);
        let short = memory(12 * gib, 10 * gib);
        assert_eq!(short.status, Status::Fail, "{}", short.message);
        assert_eq!(arch(HostArch::Arm64).status, Status::Warn);
        assert!(arch(HostArch::Arm64).message.contains("amd64"));
    }
}
